"""Cosine top-k over a (possibly memory-mapped) matrix: one BLAS product per batch of queries.

The matrix is never copied or normalised in place: scores are ``(Q / |Q|) @ M.T * (1 / |M|)``, so a
memory-mapped native model is only read, and the inverse row norms (one float per word) are the
only thing computed on open. ``argpartition`` picks candidates in O(N) (for big batches a Numba
one-pass kernel, ~25x faster); only the candidates are sorted.
"""
from __future__ import annotations

import numpy as np

_NORM_ROWS = 16384          # rows per chunk when computing norms (bounded temporary memory)
_SCORE_FLOATS = 1 << 24     # a batch's score matrix holds at most this many floats (64 MB)
_KERNEL_MIN_QUERIES = 256   # below this, importing Numba costs more than argpartition
_KERNEL_MAX_K = 64          # the kernel's buffer rescans cost O(k) per replacement


def inverse_norms(matrix: np.ndarray) -> np.ndarray:
    """1/|row| as float32, 0 for all-zero rows (they then score 0 against everything).

    Rows shorter than 1e-30 count as zero too: their inverse would overflow float32 and turn a
    finite row into a "non-finite" one.
    """
    out = np.empty(matrix.shape[0], np.float32)
    for lo in range(0, matrix.shape[0], _NORM_ROWS):
        block = np.asarray(matrix[lo:lo + _NORM_ROWS], dtype=np.float32)
        sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        norms = np.sqrt(sq)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:lo + len(block)] = np.where(norms < 1e-30, 0, 1.0 / norms)  # NaN stays NaN
    return out


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); zero rows stay zero."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float32))
    norms = np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1)).astype(np.float32)


def top_k(matrix: np.ndarray, inv_norms: np.ndarray, queries: np.ndarray, k: int,
          exclude: list[list[int]] | None = None) -> list[list[tuple[int, float]]]:
    """For each query row, the ``k`` best ``(row, cosine)`` pairs, best first, skipping ``exclude``.

    Ties are broken by the lower row index (the more frequent word), so results are deterministic.
    """
    queries = unit(queries)
    n = matrix.shape[0]
    exclude = exclude or [[] for _ in range(len(queries))]
    batch = max(1, _SCORE_FLOATS // max(n, 1))
    want = min(n, k + max(map(len, exclude), default=0))
    kernel = None
    if len(queries) >= _KERNEL_MIN_QUERIES and want <= _KERNEL_MAX_K:
        from .kernels import top_candidates as kernel
    results = []
    for lo in range(0, len(queries), batch):
        q = queries[lo:lo + batch]
        scores = q @ matrix.T
        scores *= inv_norms
        cands = None
        if kernel is not None:
            cands = np.empty((len(q), want), np.int64)
            kernel(scores, want, cands)
        for j in range(len(q)):
            results.append(_best(scores[j], k, exclude[lo + j], None if cands is None else cands[j]))
    return results


def _best(row: np.ndarray, k: int, skip: list[int], cand: np.ndarray | None = None
          ) -> list[tuple[int, float]]:
    n = row.shape[0]
    want = min(n, k + len(skip))
    if cand is not None:
        cand = cand[cand >= 0]
    elif want < n:
        cand = np.argpartition(-row, want - 1)[:want]
    else:
        cand = np.arange(n)
    order = cand[np.lexsort((cand, -row[cand]))]
    skip_set = set(skip)
    out = [(int(i), float(row[i])) for i in order if int(i) not in skip_set]
    return out[:k]
