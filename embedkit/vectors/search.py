"""Cosine top-k over a (possibly memory-mapped) matrix: one BLAS product per batch of queries.

The matrix is never copied or normalised in place: scores are ``(Q / |Q|) @ M.T * (1 / |M|)``, so a
memory-mapped native model is only read, and the inverse row norms (one float per word) are the
only thing computed on open. ``argpartition`` picks candidates in O(N); only they are sorted.
"""
from __future__ import annotations

import numpy as np

_NORM_ROWS = 16384          # rows per chunk when computing norms (bounded temporary memory)
_SCORE_FLOATS = 1 << 24     # a batch's score matrix holds at most this many floats (64 MB)


def inverse_norms(matrix: np.ndarray) -> np.ndarray:
    """1/|row| as float32, 0 for all-zero rows (they then score 0 against everything)."""
    out = np.empty(matrix.shape[0], np.float32)
    for lo in range(0, matrix.shape[0], _NORM_ROWS):
        block = np.asarray(matrix[lo:lo + _NORM_ROWS], dtype=np.float32)
        sq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        norms = np.sqrt(sq)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:lo + len(block)] = np.where(norms == 0, 0, 1.0 / norms)  # NaN stays NaN
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
    results = []
    for lo in range(0, len(queries), batch):
        q = queries[lo:lo + batch]
        scores = q @ matrix.T if isinstance(matrix, np.ndarray) else q @ np.asarray(matrix).T
        scores *= inv_norms
        for j in range(len(q)):
            results.append(_best(scores[j], k, exclude[lo + j]))
    return results


def _best(row: np.ndarray, k: int, skip: list[int]) -> list[tuple[int, float]]:
    n = row.shape[0]
    want = min(n, k + len(skip))
    if want < n:
        cand = np.argpartition(-row, want - 1)[:want]
    else:
        cand = np.arange(n)
    order = cand[np.lexsort((cand, -row[cand]))]
    skip_set = set(skip)
    out = [(int(i), float(row[i])) for i in order if int(i) not in skip_set]
    return out[:k]
