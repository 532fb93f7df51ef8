"""fastText's quantized matrices (``.ftz``): ``QuantMatrix`` with its ``ProductQuantizer``s.

Layout (``QuantMatrix::save``): ``qnorm`` (bool), ``m`` and ``n`` (int64), ``codesize`` (int32),
``codesize`` uint8 codes (``nsubq`` per row), then the product quantizer: ``dim``, ``nsubq``,
``dsub``, ``lastdsub`` (int32) and ``dim * 256`` float32 centroids; with ``qnorm``, ``m`` uint8
norm codes and a second quantizer of dimension 1 (256 norm values).

Sub-quantizer ``k < nsubq - 1`` keeps its 256 centroids of ``dsub`` values at
``centroids[k*256*dsub:]``; the last one's 256 centroids have ``lastdsub`` values each, from the
same offset. A matrix is kept as fastText keeps it, codes and centroids (the classifier adds a
row's pieces to its hidden vector directly, as ``QuantMatrix::addToVector`` does, so nothing of
rows x dim is allocated); ``decode`` gives float32 rows for the word-vector commands, computed
the way fastText adds them to a vector (``x[j] += norm * c[j]``), so sums of decoded rows are
bit-identical to fastText's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

KSUB = 256
_BLOCK = 1 << 15  # rows decoded at a time


@dataclass
class Quantized:
    """A product-quantized matrix: ``codes`` [m, nsubq] index each part's 256 ``centroids``;
    with qnorm, row i's norm is ``norm_values[norm_codes[i]]``."""

    codes: np.ndarray                # uint8 [m, nsubq]
    centroids: np.ndarray            # float32 [dim * 256], laid out as in the module docstring
    dim: int
    dsub: int
    norm_codes: np.ndarray | None    # uint8 [m]; None without qnorm
    norm_values: np.ndarray | None   # float32 [256]

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape[0], self.dim

    def norms(self) -> np.ndarray | None:
        """float32 [m] per-row norms, None without qnorm."""
        return None if self.norm_codes is None else self.norm_values[self.norm_codes]

    def decode(self, scaled: bool) -> np.ndarray:
        """float32 [m, dim] rows: the centroids, times the norm (as fastText adds a row to a
        vector, ``float32(norm * centroid)``) when ``scaled``."""
        dsub = self.dsub
        m, nsubq = self.codes.shape
        out = np.empty((m, self.dim), np.float32)
        full = (nsubq - 1) * dsub  # all parts but the last have dsub values: one gather for
        tables = self.centroids[:full * KSUB].view(f"V{4 * dsub}")  # them, a centroid moved
        offsets = (np.arange(nsubq - 1, dtype=np.intp) * KSUB)[None, :]  # as one opaque item
        start, last = full * KSUB, self.dim - full
        lasts = self.centroids[start:start + KSUB * last].reshape(KSUB, last)
        norms = self.norms() if scaled else None
        for lo in range(0, m, _BLOCK):  # blocks of rows bound the gathers' temporaries
            codes, rows = self.codes[lo:lo + _BLOCK], out[lo:lo + _BLOCK]
            if full:
                rows[:, :full] = tables[codes[:, :-1] + offsets].view(np.float32).reshape(-1, full)
            rows[:, full:] = lasts[codes[:, -1]]
            if norms is not None:
                rows *= norms[lo:lo + _BLOCK, None]
        return out


def read_quantized(r, rows: int, dim: int, what: str) -> Quantized:
    """Parse a ``QuantMatrix`` at ``r.pos`` (``r`` is fasttext_bin's reader); checks every field.

    The codes stay views of the (memory-mapped) file: only the centroids are copied."""
    (qnorm,) = r.take("B", what)
    if qnorm > 1:
        raise InputError(r.path, f"corrupt fastText {what}: qnorm flag {qnorm}")
    m, n, codesize = r.take("qqi", what)
    if m != rows or n != dim:
        raise InputError(r.path, f"corrupt fastText {what}: {m} x {n}, expected {rows} x {dim}")
    if codesize < 0 or codesize > len(r.buf) - r.pos:
        raise InputError(r.path, f"truncated or corrupt fastText {what} ({codesize} codes)")
    codes = np.frombuffer(r.buf, np.uint8, codesize, r.pos)
    r.pos += codesize
    pq_dim, nsubq, dsub, lastdsub, centroids = _quantizer(r, what)
    if pq_dim != dim or codesize != m * nsubq:
        raise InputError(r.path, f"corrupt fastText {what}: quantizer of dimension {pq_dim} with "
                                 f"{nsubq} parts, {codesize} codes for {m} x {dim}")
    codes = codes.reshape(m, nsubq)
    norm_codes = norm_values = None
    if qnorm:
        if m > len(r.buf) - r.pos:
            raise InputError(r.path, f"truncated fastText file (ends in the {what} norms)")
        norm_codes = np.frombuffer(r.buf, np.uint8, m, r.pos)
        r.pos += m
        ndim, nsub, ndsub, nlast, norm_values = _quantizer(r, what + " norms")
        if (ndim, nsub, ndsub, nlast) != (1, 1, 1, 1):
            raise InputError(r.path, f"corrupt fastText {what}: norm quantizer {ndim}/{nsub}/"
                                     f"{ndsub}/{nlast}, expected 1/1/1/1")
    return Quantized(codes, centroids, dim, dsub, norm_codes, norm_values)


def _quantizer(r, what: str):
    dim, nsubq, dsub, lastdsub = r.take("4i", what)
    if not (0 < dim <= 1 << 20 and 0 < dsub <= dim and nsubq == -(-dim // dsub)
            and lastdsub == dim - (nsubq - 1) * dsub):
        raise InputError(r.path, f"corrupt fastText {what}: product quantizer dim {dim}, "
                                 f"{nsubq} parts of {dsub} (last {lastdsub})")
    n = dim * KSUB
    if 4 * n > len(r.buf) - r.pos:
        raise InputError(r.path, f"truncated fastText file (ends in the {what} centroids)")
    centroids = np.frombuffer(r.buf, "<f4", n, r.pos)
    r.pos += 4 * n
    if not np.isfinite(centroids).all():
        raise InputError(r.path, f"non-finite value (NaN or inf) in the {what} centroids")
    return dim, nsubq, dsub, lastdsub, centroids.astype(np.float32)
