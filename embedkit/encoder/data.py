"""Corpus → BPE piece streams on disk, and batches of windows drawn from them.

The corpus is read once, line by line (memory bounded by a chunk of lines, never by the corpus),
encoded in chunks, and its pieces appended to two int32 files: every ``HOLDOUT_EVERY``-th line
goes to the held-out stream, the rest to the training stream; each line ends with ``[SEP]``.
Training batches are windows at random offsets of the memory-mapped training stream (as
nanoGPT), so a batch is a function of the RNG state only and ``--resume`` is exact.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus import iter_lines
from ..errors import InputError
from ..progress import bar

HOLDOUT_EVERY = 20
CHUNK_LINES = 4096
EVAL_WINDOWS = 64


@dataclass
class Streams:
    train: np.ndarray       # [N] int32 pieces (memory-mapped)
    heldout: np.ndarray     # [K] int32 pieces
    counts: np.ndarray      # [V] int64 piece counts of the training stream
    lines: int


def encode_corpus(paths: list[str], vocab, workdir: Path, quiet: bool = True) -> Streams:
    """Encode ``paths`` into two nameless int32 files in ``workdir`` (training, held out)."""
    counts = np.zeros(vocab.size, np.int64)
    # Nameless temp files (O_TMPFILE, or unlinked once open): a killed run leaves no pieces behind.
    files = {"train": tempfile.TemporaryFile(dir=workdir),
             "heldout": tempfile.TemporaryFile(dir=workdir)}
    lines = 0
    try:
        with bar(None, "encoding corpus", "lines", quiet) as progress:
            chunk: list[tuple[str, bool]] = []
            for line in iter_lines(paths):
                chunk.append((line.text, line.end))
                if len(chunk) >= CHUNK_LINES:
                    lines = _flush(chunk, lines, vocab, files, counts)
                    progress.update(len(chunk))
                    chunk = []
            lines = _flush(chunk, lines, vocab, files, counts)
            progress.update(len(chunk))
        train, heldout = _open(files["train"]), _open(files["heldout"])
    finally:
        for f in files.values():
            f.close()  # a memory map keeps its pages; the space is freed when it goes
    if train.size + heldout.size <= lines:  # only [SEP]s: no text at all
        raise InputError(", ".join(map(str, paths)), "empty corpus: no pieces to train on")
    if train.size < 2:
        raise InputError(", ".join(map(str, paths)), "too little text: fewer than 2 pieces to train on")
    return Streams(train, heldout, counts, lines)


def _flush(chunk, lines, vocab, files, counts) -> int:
    if not chunk:
        return lines
    ids = vocab.encode_batch([t for t, _ in chunk])
    parts = {"train": [], "heldout": []}
    for (_, end), piece_ids in zip(chunk, ids):
        target = "heldout" if lines % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else "train"
        parts[target].append(np.asarray(piece_ids, np.int32))
        if end:
            parts[target].append(np.array([vocab.sep], np.int32))
            lines += 1
    for name, arrays in parts.items():
        if arrays:
            a = np.concatenate(arrays)
            files[name].write(a.tobytes())
            if name == "train":
                counts += np.bincount(a, minlength=counts.size)
    return lines


def _open(f) -> np.ndarray:
    f.flush()
    if os.fstat(f.fileno()).st_size == 0:
        return np.zeros(0, np.int32)
    return np.memmap(f, np.int32, mode="r")


def window_length(stream: np.ndarray, max_len: int, extra: int) -> int:
    """Window length: ``max_len`` (+1 for clm's shifted targets), shorter for tiny corpora."""
    return min(max_len + extra, stream.size)


def random_windows(stream: np.ndarray, rng: np.random.Generator, batch: int, width: int) -> np.ndarray:
    """[B, width] windows at uniformly random offsets."""
    starts = rng.integers(0, stream.size - width + 1, batch)
    return stream[starts[:, None] + np.arange(width)]


def eval_windows(stream: np.ndarray, width: int, limit: int = EVAL_WINDOWS) -> np.ndarray:
    """Up to ``limit`` consecutive, non-overlapping [width] windows spread over the stream."""
    n = stream.size // width
    if n == 0:
        return np.zeros((0, width), np.int32)
    picks = np.unique(np.linspace(0, n - 1, min(n, limit)).astype(np.int64))
    return stream[picks[:, None] * width + np.arange(width)]


def unigram_entropy(counts: np.ndarray, regular: np.ndarray) -> float:
    """Entropy (nats) of the training pieces' frequencies, specials excluded: the loss of a
    model that ignores context, the yardstick for the held-out loss."""
    c = counts[regular].astype(np.float64)
    c = c[c > 0]
    if c.size == 0:
        return math.nan
    p = c / c.sum()
    return float(-(p * np.log(p)).sum())
