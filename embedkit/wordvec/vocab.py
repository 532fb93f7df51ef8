"""Read the corpus once: count words and spool their ids to a temp file; then pick the vocabulary.

The single pass assigns *provisional* ids in first-seen order (the final, count-sorted vocabulary
is only known at the end) and writes them as int32, with -1 ending each line, to ``ids.i32`` in a
temp folder. Training later maps provisional → vocabulary ids through a small ``remap`` array, so
the id file is never rewritten and memory stays bounded by the number of distinct words. The file
is cut into sentence-aligned chunks of about ``CHUNK_TOKENS`` ids, which threads read one at a time.
Chunks are small because each epoch visits them in a seeded random order: corpora often come sorted
(by source, genre, date), and training on them in file order lets the low-learning-rate end of
every epoch drag the vectors towards the last part of the file. On dev.tok, chunk shuffling raises
skip-gram+subwords WordSim ρ from 0.38 to 0.50 (a full line shuffle gives 0.49).

Tokens are whitespace-separated (``str.split()``; CRLF and a BOM are handled by the reader); the
kernel cuts a sentence longer than ``MAX_SENT`` kept tokens into several, as gensim does.
"""
from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..corpus import check_no_nul, decode, iter_blocks
from ..errors import InputError, UsageError

CHUNK_TOKENS = 1 << 11  # 8 KB of ids: 1,300 chunks in dev.tok, an index of 8 bytes per chunk
_LINE_BATCH = 20_000
_SLICE_CHARS = 1 << 19
_EOL = "\0"
_EOL_SEP = " \0 "


@dataclass
class SpooledCorpus:
    """The corpus as provisional ids on disk plus the counts of every distinct word."""

    path: Path
    words: list[str] = field(default_factory=list)  # provisional id -> word
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # provisional id -> count
    chunks: array = field(default_factory=lambda: array("q", [0]))  # sentence-aligned offsets
    tokens: int = 0
    file: object = None  # the open spool (it has no name: closing it frees the space)

    def add_counts(self, c: np.ndarray) -> None:
        if len(c) > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(max(len(c), 2 * len(self.counts))
                                                                - len(self.counts), np.int64)])
        self.counts[:len(c)] += c

    def read_chunk(self, fd: int, k: int) -> np.ndarray:
        a, b = self.chunks[k], self.chunks[k + 1]
        buf = os.pread(fd, (b - a) * 4, a * 4)
        return np.frombuffer(buf, dtype=np.int32)


@dataclass
class Vocab:
    words: list[str]  # by descending count (ties: first seen first)
    counts: np.ndarray  # int64
    remap: np.ndarray  # int32, provisional id -> vocabulary id or -1
    train_words: int  # corpus tokens that are in the vocabulary


class _Spooler:
    """Turns text into provisional ids: a NUL (never in a corpus, see ``check_no_nul``) marks
    line ends so one ``str.split()`` per block tokenizes it and keeps the sentence boundaries."""

    def __init__(self, out: SpooledCorpus, f, lowercase: bool):
        self.out, self.f, self.lowercase = out, f, lowercase
        self.index: dict[str, int] = {_EOL: 0}  # provisional id + 1; 0 = end of line
        self.written = 0
        self.pending = 0  # ids written since the last chunk boundary

    def add_text(self, text: str) -> None:
        """Add whole lines (the last one need not end with a newline), a slice at a time so
        the token list (≈60 bytes a token) stays small."""
        start = 0
        while len(text) - start > _SLICE_CHARS:
            cut = text.find("\n", start + _SLICE_CHARS)
            if cut < 0:
                break
            self._add(text[start:cut + 1])
            start = cut + 1
        self._add(text[start:] if start else text)

    def _tokens(self, text: str) -> list[str]:
        """The tokens of whole lines, each line ended by ``_EOL``; text not ending in a newline
        (a file's last line) is ended too. Nothing depends on where blocks or files were cut,
        so shards of a corpus spool the ids of the whole."""
        if self.lowercase:
            text = text.lower()
        toks = text.replace("\n", _EOL_SEP).split()
        if text and not text.endswith("\n"):
            toks.append(_EOL)
        return toks

    def _add(self, text: str) -> None:
        toks = self._tokens(text)
        index, words = self.index, self.out.words
        for w in dict.fromkeys(toks):  # first-seen order, so ties sort the same in every run
            if w not in index:
                index[w] = len(index)
                words.append(w)
        ids = np.fromiter(map(index.__getitem__, toks), dtype=np.int32, count=len(toks))
        ids -= 1
        self.out.add_counts(np.bincount(ids + 1, minlength=len(index))[1:])
        ends = np.flatnonzero(ids < 0) + 1
        self.out.tokens += len(ids) - len(ends)
        self._write(ids, ends)

    def _write(self, arr: np.ndarray, sentence_ends: np.ndarray) -> None:
        self.f.write(arr.tobytes())
        # A chunk ends at the first sentence end CHUNK_TOKENS or more ids after the last one
        # ended: cuts follow from the id stream alone, not from how it was handed in.
        last = -self.pending  # where the last chunk ended, relative to arr
        while True:
            i = int(np.searchsorted(sentence_ends, last + CHUNK_TOKENS))
            if i >= len(sentence_ends):
                break
            last = int(sentence_ends[i])
            self.out.chunks.append(self.written + last)
        self.pending = len(arr) - last
        self.written += len(arr)

    def finish(self) -> None:
        if self.out.chunks[-1] != self.written:
            self.out.chunks.append(self.written)


def _open_spool(folder: Path) -> tuple[SpooledCorpus, object]:
    f = tempfile.TemporaryFile(dir=folder)
    proc = Path(f"/proc/self/fd/{f.fileno()}")
    if not proc.exists():
        f.close()
        f = open(folder / "ids.i32", "w+b")
        proc = folder / "ids.i32"
    out = SpooledCorpus(proc, file=f)
    weakref.finalize(out, f.close)  # the spool lives as long as the object that reads it
    return out, f


def spool_corpus(corpus: Iterable, folder: Path, lowercase: bool = False, bar=None,
                 words: list[str] | None = None) -> SpooledCorpus:
    """Stream ``corpus`` (paths, ``-`` for stdin, or an iterable of str lines) into a temp file.

    ``words``: a vocabulary counted elsewhere (``train --scheduler``); then only its words get
    ids (see ``_KnownSpooler``; train with ``known_vocab``) and nothing is counted here.

    The file has no name from the start (``tempfile.TemporaryFile``: ``O_TMPFILE``, or unlinked
    as soon as it is open), so a run killed by SIGKILL or the OOM killer leaves no spool of 4
    bytes a token behind. ``path`` reopens it while the process lives (``/proc/self/fd``); where
    there is no such folder it is a plain ``folder/ids.i32``, removed with ``folder``.
    """
    out, f = _open_spool(folder)
    try:
        sp = _Spooler(out, f, lowercase) if words is None else \
            _KnownSpooler(out, f, lowercase, words)
        paths = _as_paths(corpus)
        if paths is not None:
            for path in paths:
                _spool_file(sp, path, bar)
        else:
            batch: list[str] = []
            for n, line in enumerate(corpus, 1):
                if not isinstance(line, str):
                    raise UsageError(f"corpus line {n}: expected str, got {type(line).__name__}")
                if "\0" in line:
                    raise InputError("corpus", "NUL byte: this looks like binary data, not text", n)
                batch.append(line)
                if len(batch) >= _LINE_BATCH:
                    sp.add_text("\n".join(batch))
                    batch = []
            if batch:
                sp.add_text("\n".join(batch))
        sp.finish()
        f.flush()
    except BaseException:
        f.close()
        raise
    return out


class _KnownIds(dict):
    """Word → vocabulary id + 1 for a vocabulary known before the pass; any other word gets one
    shared out-of-vocabulary id and is not added, so memory follows the vocabulary."""

    def __missing__(self, word: str) -> int:
        return self.oov


class _KnownSpooler(_Spooler):
    """Spools ids of a vocabulary counted elsewhere (``train --scheduler``): the same token
    stream and chunk cuts as ``_Spooler`` writes, so training gives the same files, without
    holding every distinct word of the corpus."""

    def __init__(self, out: SpooledCorpus, f, lowercase: bool, words: list[str]):
        super().__init__(out, f, lowercase)
        self.index = _KnownIds({w: i + 1 for i, w in enumerate(words)})
        self.index[_EOL] = 0
        self.index.oov = len(words) + 1

    def _add(self, text: str) -> None:
        toks = self._tokens(text)
        ids = np.fromiter(map(self.index.__getitem__, toks), dtype=np.int32, count=len(toks))
        ids -= 1
        self._write(ids, np.flatnonzero(ids < 0) + 1)


def known_vocab(vocab: Vocab) -> Vocab:
    """``vocab`` with the remap a ``words=vocab.words`` spool needs: ids are vocabulary ids
    already, and the one shared out-of-vocabulary id maps to -1."""
    remap = np.append(np.arange(len(vocab.words), dtype=np.int32), np.int32(-1))
    return Vocab(vocab.words, vocab.counts, remap, vocab.train_words)


def _as_paths(corpus) -> list | None:
    """A path, or a list/tuple of paths ('-' = stdin), else None (an iterable of text lines).

    A list of str counts as paths when one of them exists or is '-', or when none contains
    whitespace (so a mistyped file name is reported as missing rather than trained on as text).
    """
    if isinstance(corpus, (str, os.PathLike)):
        return [corpus]
    if not isinstance(corpus, (list, tuple)) or not corpus:
        return None
    if not all(isinstance(p, (str, os.PathLike)) for p in corpus):
        return None
    if any(not isinstance(p, str) or p == "-" or os.path.exists(p) for p in corpus):
        return list(corpus)
    if not any(any(ch.isspace() for ch in p) for p in corpus):
        return list(corpus)
    return None


def _spool_file(sp: _Spooler, path, bar) -> None:
    for block in iter_blocks(path):
        check_no_nul(block)
        sp.add_text(decode(block))
        if bar is not None:
            bar.update(len(block.data))


def build_vocab(sp: SpooledCorpus, min_count: int, max_vocab: int | None, where: str) -> Vocab:
    """Keep words with count >= min_count, the ``max_vocab`` most frequent, sorted by count."""
    counts = sp.counts[:len(sp.words)]
    if sp.tokens == 0:
        raise InputError(where, "the corpus is empty (no words)")
    kept = np.flatnonzero(counts >= min_count)
    if len(kept) == 0:
        raise InputError(where, f"no word occurs at least --min-count {min_count} times "
                                f"(the most frequent occurs {int(counts.max())} times)")
    order = kept[np.argsort(-counts[kept], kind="stable")]
    if max_vocab is not None:
        order = order[:max_vocab]
    from .kernels import remap_ids

    remap = remap_ids(order.astype(np.int64), len(counts))
    vc = counts[order]
    return Vocab([sp.words[i] for i in order.tolist()], vc, remap, int(vc.sum()))


def keep_thresholds(counts: np.ndarray, sample: float, train_words: int) -> np.ndarray:
    """word2vec's subsampling: keep a word with p = (sqrt(f/(t·N)) + 1)·(t·N)/f, as a 2**32 threshold."""
    if sample <= 0:
        return np.full(len(counts), 1 << 32, np.int64)
    tn = sample * train_words
    f = counts.astype(np.float64)
    p = (np.sqrt(f / tn) + 1.0) * tn / f
    return np.minimum(np.floor(p * 4294967296.0), 4294967296.0).astype(np.int64)


def negative_table(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Walker alias table for sampling word w with probability proportional to count**power.

    Exact (unlike word2vec's 1e8-slot table) and only 8 bytes a word, so it stays in cache: entry
    i packs ``alias << 32 | threshold``; a draw picks a uniform i and keeps it if a 32-bit coin is
    <= threshold, else takes the alias (see ``kernels._negative``).
    """
    from .kernels import alias_table

    p = counts.astype(np.float64) ** power
    return alias_table(p / p.sum())


class _Discard:
    """A spool that keeps nothing: counting alone runs the spooler's own tokenization."""

    @staticmethod
    def write(data) -> None:
        return None


def count_file(path, lowercase: bool = False) -> SpooledCorpus:
    """One file's words (first-seen order), counts and token total, without an id spool: the
    map step of a distributed vocabulary count (``embedkit.cluster``). The same ``_Spooler``
    code as ``spool_corpus``, so the words and counts are those of the single-node pass."""
    out = SpooledCorpus(Path(os.fspath(path)))
    sp = _Spooler(out, _Discard, lowercase)
    _spool_file(sp, path, None)
    out.counts = out.counts[:len(out.words)]
    return out


def merge_counts(a: SpooledCorpus, b: SpooledCorpus) -> SpooledCorpus:
    """The reduce step: exact int64 sums; ``a``'s words first, then ``b``'s new ones in their
    first-seen order, so adjacent shards merged in order give the first-seen order of the whole
    corpus — the order ``build_vocab`` breaks count ties by."""
    index = {w: i for i, w in enumerate(a.words)}
    new = [w for w in b.words if w not in index]
    for w in new:
        index[w] = len(index)
    counts = np.concatenate([a.counts[:len(a.words)], np.zeros(len(new), np.int64)])
    counts[np.fromiter(map(index.__getitem__, b.words), np.int64, len(b.words))] += \
        b.counts[:len(b.words)]  # b's words are distinct: no index repeats
    return SpooledCorpus(a.path, a.words + new, counts, tokens=a.tokens + b.tokens)
