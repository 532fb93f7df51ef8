"""Read labelled training text once: count words and labels, spool each line as int32 ids.

Memory stays bounded by the number of distinct words and labels: lines go to ``lines.i32`` in a
temp folder (unlinked with it), and every epoch re-reads that file, so stdin works too. A line is
stored as its labels (``-(label + 2)``), its words (provisional word ids, in first-seen order, with
fastText's ``</s>`` appended) and ``-1``. The file is cut into line-aligned chunks of about
``CHUNK_IDS`` ids, which threads take one at a time, in a fresh seeded order each epoch (training
data often comes sorted by label; fastText reads it in file order).

Token counts follow fastText's ``Dictionary``: every word, label and ``</s>`` is a token (the lr
schedule runs over them), and words under ``min_count`` still hash into word n-grams.
"""
from __future__ import annotations

import os
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..subwords import EOS
from .data import Reader

CHUNK_IDS = 1 << 11
_FLUSH = 1 << 16


@dataclass
class Spool:
    path: Path
    handle: object = None  # the open nameless file behind ``path`` (kept open while training)
    words: list[str] = field(default_factory=list)  # provisional id -> word
    word_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: list[str] = field(default_factory=list)  # provisional label id -> label
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    chunks: array = field(default_factory=lambda: array("q", [0]))  # line-aligned id offsets
    tokens: int = 0  # fastText's ntokens: words + labels + </s>
    lines: int = 0
    longest: int = 0  # most words in one line (buffer size for the kernels)
    style: str = "fasttext"

    def read_chunk(self, fd: int, k: int) -> np.ndarray:
        a, b = self.chunks[k], self.chunks[k + 1]
        return np.frombuffer(os.pread(fd, (b - a) * 4, a * 4), dtype=np.int32)


class _Index(dict):
    """word -> provisional id; a new word gets the next id (and is appended to ``names``)."""

    def __init__(self, names: list[str]):
        super().__init__()
        self.names = names

    def __missing__(self, key: str) -> int:
        i = self[key] = len(self.names)
        self.names.append(key)
        return i


def _grow(counts: np.ndarray, c: np.ndarray) -> np.ndarray:
    if len(c) > len(counts):
        counts = np.concatenate([counts, np.zeros(len(c) - len(counts), np.int64)])
    counts[:len(c)] += c
    return counts


def spool(paths: list[str], folder: Path, reader: Reader, bar=None) -> Spool:
    """Stream the examples of ``paths`` into a nameless temp file in ``folder``; raise if none is
    labelled. Nameless (as ``wordvec.vocab.spool_corpus``) so SIGKILL or the OOM killer leaves no
    spool behind; ``path`` reopens it through ``/proc/self/fd``, or is ``folder/lines.i32``
    where there is no such folder."""
    handle = tempfile.TemporaryFile(dir=folder)
    path = Path(f"/proc/self/fd/{handle.fileno()}")
    if not path.exists():
        handle.close()
        handle, path = None, folder / "lines.i32"
    sp = Spool(path, handle)
    windex = _Index(sp.words)
    windex[EOS] = 0
    sp.words.append(EOS)
    lindex = _Index(sp.labels)
    buf = array("i")
    since = 0  # ids written since the last chunk boundary
    written = 0
    shown = 0

    def flush(f):
        nonlocal buf
        a = np.frombuffer(buf, dtype=np.int32)
        w = a[a >= 0]
        sp.word_counts = _grow(sp.word_counts, np.bincount(w, minlength=len(sp.words)))
        lab = -a[a <= -2] - 2
        sp.label_counts = _grow(sp.label_counts, np.bincount(lab, minlength=len(sp.labels)))
        f.write(a.tobytes())
        buf = array("i")

    with open(sp.path, "wb") as f:
        for ex in reader(paths):
            for lab in ex.labels:
                buf.append(-lindex[lab] - 2)
            buf.extend(map(windex.__getitem__, ex.words))
            buf.append(0)  # </s>
            buf.append(-1)
            n = len(ex.labels) + len(ex.words) + 2
            sp.tokens += n - 1
            sp.lines += 1
            sp.longest = max(sp.longest, len(ex.words) + 1)
            written += n
            since += n
            if since >= CHUNK_IDS:
                sp.chunks.append(written)
                since = 0
            if len(buf) >= _FLUSH:
                flush(f)
                if bar is not None:
                    bar.update(sp.lines - shown)
                    shown = sp.lines
        flush(f)
    if sp.chunks[-1] != written:
        sp.chunks.append(written)
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    if sp.lines == 0:
        what = (f"no labelled lines ({reader.skipped} line(s) without a label)" if reader.skipped
                else "empty: no labelled lines")
        raise InputError(where, f"{what}; expected '__label__LABEL text' or 'LABEL<TAB>text'")
    styles = set(reader.styles.values())
    sp.style = "tsv" if styles == {"tsv"} else "fasttext"
    return sp


@dataclass
class Dictionary:
    """The kept vocabulary and labels, by descending count (ties: first seen first)."""

    words: list[str]
    word_counts: np.ndarray
    word_remap: np.ndarray  # int32: provisional word id -> row, or -1 (under min_count)
    labels: list[str]
    label_counts: np.ndarray
    label_remap: np.ndarray  # int32: provisional label id -> output row, or -1


def _keep(counts: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    kept = np.flatnonzero(counts >= min_count)
    order = kept[np.argsort(-counts[kept], kind="stable")]
    remap = np.full(len(counts), -1, np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return order, remap


def build(sp: Spool, min_count: int, min_count_label: int, where: str) -> Dictionary:
    wc = sp.word_counts[:len(sp.words)]
    lc = sp.label_counts[:len(sp.labels)]
    worder, wremap = _keep(wc, min_count)
    lorder, lremap = _keep(lc, min_count_label)
    if len(lorder) == 0:
        raise InputError(where, f"no label occurs at least --min-count-label {min_count_label} "
                                f"times (the most frequent occurs {int(lc.max())} times)")
    if len(worder) == 0:
        raise InputError(where, f"no word occurs at least --min-count {min_count} times")
    return Dictionary([sp.words[i] for i in worder.tolist()], wc[worder], wremap,
                      [sp.labels[i] for i in lorder.tolist()], lc[lorder], lremap)
