"""fastText's quantized matrices (``.ftz``): ``QuantMatrix`` with its ``ProductQuantizer``s.

Layout (``QuantMatrix::save``): ``qnorm`` (bool), ``m`` and ``n`` (int64), ``codesize`` (int32),
``codesize`` uint8 codes (``nsubq`` per row), then the product quantizer: ``dim``, ``nsubq``,
``dsub``, ``lastdsub`` (int32) and ``dim * 256`` float32 centroids; with ``qnorm``, ``m`` uint8
norm codes and a second quantizer of dimension 1 (256 norm values).

Sub-quantizer ``k < nsubq - 1`` keeps its 256 centroids of ``dsub`` values at
``centroids[k*256*dsub:]``; the last one's 256 centroids have ``lastdsub`` values each, from the
same offset. Rows are decoded once to float32, the way fastText adds them to a vector
(``x[j] += norm * c[j]``), so sums of decoded rows are bit-identical to fastText's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

KSUB = 256


@dataclass
class Quantized:
    """A decoded quantized matrix: ``rows`` [m, n] (centroids, no norm) and per-row ``norms``."""

    rows: np.ndarray
    norms: np.ndarray | None  # None without qnorm

    def scaled(self) -> np.ndarray:
        """Rows as fastText adds them to a vector, float32(norm * centroid) (in place)."""
        if self.norms is not None:
            self.rows *= self.norms[:, None]
            self.norms = None
        return self.rows


def read_quantized(r, rows: int, dim: int, what: str) -> Quantized:
    """Parse a ``QuantMatrix`` at ``r.pos`` (``r`` is fasttext_bin's reader); checks every field."""
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
    out = np.empty((m, dim), np.float32)
    full = (nsubq - 1) * dsub  # all parts but the last have dsub values: one gather for them,
    if full:                   # a centroid moved as one opaque dsub * 4-byte item
        tables = centroids[:(nsubq - 1) * KSUB * dsub].view(f"V{4 * dsub}")
        at = codes[:, :-1] + (np.arange(nsubq - 1, dtype=np.intp) * KSUB)[None, :]
        out[:, :full] = tables[at].view(np.float32).reshape(m, full)
    start = (nsubq - 1) * KSUB * dsub
    out[:, full:] = centroids[start:start + KSUB * lastdsub].reshape(KSUB, lastdsub)[codes[:, -1]]
    norms = None
    if qnorm:
        if m > len(r.buf) - r.pos:
            raise InputError(r.path, f"truncated fastText file (ends in the {what} norms)")
        norm_codes = np.frombuffer(r.buf, np.uint8, m, r.pos)
        r.pos += m
        ndim, nsub, ndsub, nlast, norm_values = _quantizer(r, what + " norms")
        if (ndim, nsub, ndsub, nlast) != (1, 1, 1, 1):
            raise InputError(r.path, f"corrupt fastText {what}: norm quantizer {ndim}/{nsub}/"
                                     f"{ndsub}/{nlast}, expected 1/1/1/1")
        norms = norm_values[norm_codes]
    return Quantized(out, norms)


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
