"""Pairs of neighbouring text for the contrastive objective, drawn from the piece streams.

``adjacent-lines``: x is a corpus line and y the line after it. ``adjacent-windows``: a line is cut
at a random piece, x is up to ``max_len`` pieces before the cut and y up to ``max_len`` after it
(for corpora of long lines: paragraphs, documents). x keeps the end nearest to y when it is cut.

The streams are those of ``data.encode_corpus`` (every line ends with ``[SEP]``; every 20th corpus
line is in the held-out stream). Line ends and the lines that may start a pair are indexed in
chunks into nameless int64 files beside the streams and memory-mapped, so memory does not grow
with the corpus. A training pair never spans a held-out line (those two lines were not
neighbours); a held-out pair is a held-out line (y) with the training line before it (x), so the
pair itself was never trained on.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .data import HOLDOUT_EVERY

KINDS = ("adjacent-lines", "adjacent-windows")
CHUNK = 1 << 20
EVAL_PAIRS = 1024
EVAL_SEED = 4321


def _index(workdir: Path, parts) -> np.ndarray:
    """The int64 arrays of ``parts``, one after the other, in a nameless file in ``workdir``
    (as the piece streams: a killed run leaves nothing behind), memory-mapped."""
    n = 0
    with tempfile.TemporaryFile(dir=workdir) as f:
        for a in parts:
            f.write(np.asarray(a, np.int64).tobytes())
            n += len(a)
        f.flush()
        return np.memmap(f, np.int64, mode="r") if n else np.zeros(0, np.int64)


class Lines:
    """Line spans of a piece stream: ``ends[i]`` is the position of line i's ``[SEP]``."""

    def __init__(self, stream: np.ndarray, sep: int, workdir: Path):
        self.stream = stream

        def ends():
            for lo in range(0, stream.size, CHUNK):
                yield lo + np.flatnonzero(np.asarray(stream[lo:lo + CHUNK]) == sep)
            if stream.size and stream[-1] != sep:
                yield np.array([stream.size])

        self.ends = _index(workdir, ends())

    def __len__(self) -> int:
        return self.ends.size

    def starts(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        prev = np.asarray(self.ends[np.maximum(idx - 1, 0)], np.int64) + 1
        return np.where(idx > 0, prev, 0)

    def lengths(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.ends[idx], np.int64) - self.starts(idx)

    def pieces(self, i: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Pieces lo:hi of line i (without its ``[SEP]``)."""
        s = int(self.starts(np.array([i]))[0])
        e = int(self.ends[i])
        hi = e - s if hi is None else min(hi, e - s)
        return np.asarray(self.stream[s + lo:s + hi])


def _corpus_line(j: np.ndarray) -> np.ndarray:
    """Corpus line number of training line j (every HOLDOUT_EVERY-th corpus line is held out)."""
    return j + j // (HOLDOUT_EVERY - 1)


class PairSource:
    """Training pairs at random (a function of the RNG only, so ``--resume`` is exact) and a
    fixed list of held-out pairs."""

    def __init__(self, streams, sep: int, kind: str, max_len: int, workdir: Path):
        self.kind, self.max_len = kind, max_len
        self.train = Lines(streams.train, sep, workdir)
        self.heldout = Lines(streams.heldout, sep, workdir)
        self.starts = _index(workdir, self._eligible())

    def _eligible(self):
        n = len(self.train)
        for lo in range(0, n, CHUNK):
            j = np.arange(lo, min(lo + CHUNK, n))
            if self.kind == "adjacent-windows":
                yield j[self.train.lengths(j) >= 2]
                continue
            j = j[j + 1 < n]
            ok = (self.train.lengths(j) > 0) & (self.train.lengths(j + 1) > 0)
            ok &= _corpus_line(j) % HOLDOUT_EVERY != HOLDOUT_EVERY - 2
            yield j[ok]

    def __len__(self) -> int:
        return self.starts.size

    def sample(self, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """n pairs (x, y) drawn uniformly from the training pairs."""
        picks = np.asarray(self.starts[rng.integers(0, len(self), n)], np.int64)
        if self.kind == "adjacent-windows":
            cuts = rng.integers(1, self.train.lengths(picks))
            return [self._cut(self.train, int(j), int(c)) for j, c in zip(picks, cuts)]
        return [self._lines(self.train, int(j), self.train, int(j) + 1) for j in picks]

    def heldout_pairs(self, limit: int | None = EVAL_PAIRS) -> list[tuple[np.ndarray, np.ndarray]]:
        """Up to ``limit`` held-out pairs (all when None), spread evenly over the held-out lines,
        in an order shuffled with a fixed seed: held-out lines 20 apart often come from the same
        document, so groups of consecutive pairs would score against far harder distractors
        than the training batches' pairs drawn from the whole corpus (the marginal)."""
        k = np.arange(len(self.heldout), dtype=np.int64)
        if self.kind == "adjacent-windows":
            k = k[self.heldout.lengths(k) >= 2]
        else:
            j = k * (HOLDOUT_EVERY - 1) + HOLDOUT_EVERY - 2   # the training line before line k
            k = k[j < len(self.train)]
            j = j[: k.size]
            k = k[(self.heldout.lengths(k) > 0) & (self.train.lengths(j) > 0)]
        if limit is not None and k.size > limit:
            k = k[np.unique(np.linspace(0, k.size - 1, limit).astype(np.int64))]
        rng = np.random.default_rng(EVAL_SEED)
        k = k[rng.permutation(k.size)]
        if self.kind == "adjacent-windows":
            cuts = rng.integers(1, self.heldout.lengths(k))
            return [self._cut(self.heldout, int(i), int(c)) for i, c in zip(k, cuts)]
        j = k * (HOLDOUT_EVERY - 1) + HOLDOUT_EVERY - 2
        return [self._lines(self.train, int(a), self.heldout, int(b)) for a, b in zip(j, k)]

    def _lines(self, xs: Lines, i: int, ys: Lines, j: int):
        nx = int(xs.lengths(np.array([i]))[0])
        return xs.pieces(i, max(0, nx - self.max_len)), ys.pieces(j, 0, self.max_len)

    def _cut(self, lines: Lines, i: int, c: int):
        n = int(lines.lengths(np.array([i]))[0])
        w = self.max_len
        return lines.pieces(i, max(0, c - w), c), lines.pieces(i, c, min(n, c + w))


def pad_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], pad: int):
    """[(x, y)] * N -> ids [2N, T] (the N x's, then the N y's), keep [2N, T]; T = the longest."""
    return pad_sequences([x for x, _ in pairs] + [y for _, y in pairs], pad)


def pad_sequences(seqs, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Id sequences (each non-empty) -> [B, T] ids padded with ``pad`` and the [B, T] keep mask."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad, np.int64)
    keep = np.zeros((len(seqs), width), bool)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = s
        keep[r, :len(s)] = True
    return ids, keep
