"""Fused Numba kernels for the encoder's element-wise work: softmax with masks, layer norm, GELU,
the embedding gather and its scatter-add.

Why fused: in a plain NumPy forward, matmuls are only ~60-70% of the time; the rest is passes over
[B, H, T, T] scores and [N, F] activations that NumPy does one ufunc (one memory sweep) at a time.
Each kernel here does one sweep per row. LLVM has no vector ``exp``/``erf`` here (no SVML), so
float32 runs use a vectorisable exp (Cody-Waite + polynomial, ~1e-7 relative) and the rational
erf of Eigen/XLA; ``exact=True`` (float64 gradient checks) uses ``np.exp``/``math.erf`` instead.
All row loops are ``prange`` over independent rows, so results do not depend on thread count.
"""
from __future__ import annotations

import math
import os

# Numba's OpenMP workers spin after each parallel kernel and would fight OpenBLAS's threads for
# the same cores between kernels and matmuls; passive waiting makes the two pools take turns.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

_FM = {"nsz", "arcp", "contract", "reassoc"}
_CHUNK = 32  # rows per parallel task: amortises the scratch buffer of the fast exp
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@njit(fastmath=_FM, cache=True, inline="always")
def _exp_fast(buf, ibuf, n):
    """buf[:n] = exp(buf[:n]) in place; ibuf is int32 scratch of at least n (2**k bit patterns)."""
    fbits = ibuf.view(np.float32)
    for i in range(n):
        y = buf[i] * _LOG2E
        if y < -126.0:
            y = -126.0  # exp underflows to ~1e-38: close enough to 0 for softmax and GELU'
        if y > 127.0:
            y = 127.0
        k = math.floor(y + 0.5)
        f = (y - k) * _LN2
        p = 1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6 + f * (1.0 / 24 + f * (
            1.0 / 120 + f * (1.0 / 720 + f * (1.0 / 5040)))))))
        buf[i] = p
        ibuf[i] = (np.int32(k) + 127) << 23
    for i in range(n):
        buf[i] *= fbits[i]


@njit(fastmath=_FM, cache=True, inline="always")
def _erf_fast(x):
    """Rational erf approximation used by Eigen/XLA for float32 (error ~1 ulp of float32)."""
    x = min(max(x, -4.0), 4.0)
    x2 = x * x
    p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08
    p = x2 * p + -2.10102402082508e-06
    p = x2 * p + -5.69250639462346e-05
    p = x2 * p + -7.34990630326855e-04
    p = x2 * p + -2.95459980854025e-03
    p = x2 * p + -1.60960333262415e-02
    q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04
    q = x2 * q + -1.68282697438203e-03
    q = x2 * q + -7.37332916720468e-03
    q = x2 * q + -1.42647390514189e-02
    return x * p / q


@njit(parallel=True, fastmath=_FM, cache=True)
def softmax_forward(s, bias, heads, scale, causal, exact):
    """In place: s[bh, t, :] = softmax_j(s*scale + bias[b, j]), j <= t when causal.

    s [B*H, T, T] scores (C-contiguous), bias [B, T] additive key mask (0 or -inf).
    A row whose keys are all masked becomes all zeros (never NaN).
    """
    bh_n, t_n, k_n = s.shape
    rows = bh_n * t_n
    for c in prange((rows + _CHUNK - 1) // _CHUNK):
        ibuf = np.empty(k_n, np.int32)
        buf = np.empty(k_n, s.dtype)
        for r in range(c * _CHUNK, min(rows, (c + 1) * _CHUNK)):
            bh = r // t_n
            t = r - bh * t_n
            b = bh // heads
            row = s[bh, t]
            lim = t + 1 if causal else k_n
            m = -np.inf
            for j in range(lim):
                v = row[j] * scale + bias[b, j]
                buf[j] = v
                m = max(m, v)
            if m == -np.inf:
                row[:] = 0.0
                continue
            for j in range(lim):
                buf[j] -= m
            if exact:
                for j in range(lim):
                    buf[j] = np.exp(buf[j])
            else:
                _exp_fast(buf, ibuf, lim)
            total = 0.0
            for j in range(lim):
                total += buf[j]
            inv = 1.0 / total
            for j in range(lim):
                row[j] = buf[j] * inv
            for j in range(lim, k_n):
                row[j] = 0.0


@njit(parallel=True, fastmath=_FM, cache=True)
def softmax_backward(p, dp, scale):
    """In place: dp = scale * p * (dp - sum_j dp*p), the gradient w.r.t. the unscaled scores.

    p, dp [R, T, T] (probabilities and their gradient).
    """
    n, t_n, k_n = p.shape
    for r in prange(n * t_n):
        a = r // t_n
        t = r - a * t_n
        pr = p[a, t]
        dr = dp[a, t]
        dot = 0.0
        for j in range(k_n):
            dot += pr[j] * dr[j]
        for j in range(k_n):
            dr[j] = scale * pr[j] * (dr[j] - dot)


@njit(parallel=True, fastmath=_FM, cache=True)
def add_layernorm_forward(x, r, g, b, eps, y, xhat, rstd):
    """y = LN(x + r) * g + b row-wise; keeps xhat [N, D] and rstd [N] for the backward pass.

    x, r, y, xhat [N, D]; g, b [D]; y may alias x or r.
    """
    n, d = x.shape
    for i in prange(n):
        mean = 0.0
        for j in range(d):
            v = x[i, j] + r[i, j]
            xhat[i, j] = v
            mean += v
        mean /= d
        var = 0.0
        for j in range(d):
            v = xhat[i, j] - mean
            var += v * v
        inv = 1.0 / math.sqrt(var / d + eps)
        rstd[i] = inv
        for j in range(d):
            h = (xhat[i, j] - mean) * inv
            xhat[i, j] = h
            y[i, j] = h * g[j] + b[j]


@njit(parallel=True, fastmath=_FM, cache=True)
def layernorm_backward(dy, xhat, rstd, g, dx):
    """dx = rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat)), dxh = dy * g.

    dy, xhat, dx [N, D]; rstd [N]; g [D]. dx may alias dy. dg, db are column sums done by NumPy.
    """
    n, d = dy.shape
    for i in prange(n):
        s1 = 0.0
        s2 = 0.0
        for j in range(d):
            v = dy[i, j] * g[j]
            s1 += v
            s2 += v * xhat[i, j]
        s1 /= d
        s2 /= d
        inv = rstd[i]
        for j in range(d):
            dx[i, j] = inv * (dy[i, j] * g[j] - s1 - xhat[i, j] * s2)


@njit(parallel=True, fastmath=_FM, cache=True)
def bias_gelu_forward(h, bias, out, exact):
    """h += bias (kept as the pre-activation), out = h * Phi(h) (exact erf GELU, as torch).

    h, out [N, F]; bias [F]. out may alias h when the pre-activation is not needed.
    """
    n, f = h.shape
    for i in prange(n):
        if exact:
            for j in range(f):
                v = h[i, j] + bias[j]
                h[i, j] = v
                out[i, j] = 0.5 * v * (1.0 + math.erf(v * _SQRT1_2))
        else:
            for j in range(f):
                v = h[i, j] + bias[j]
                h[i, j] = v
                out[i, j] = 0.5 * v * (1.0 + _erf_fast(v * _SQRT1_2))


@njit(parallel=True, fastmath=_FM, cache=True)
def gelu_backward(h, dout, dh, exact):
    """dh = dout * (Phi(h) + h * phi(h)) for the pre-activation h [N, F]; dh may alias dout."""
    n, f = h.shape
    rows_per = _CHUNK
    for c in prange((n + rows_per - 1) // rows_per):
        ibuf = np.empty(f, np.int32)
        buf = np.empty(f, h.dtype)
        for i in range(c * rows_per, min(n, (c + 1) * rows_per)):
            for j in range(f):
                buf[j] = -0.5 * h[i, j] * h[i, j]
            if exact:
                for j in range(f):
                    v = h[i, j]
                    cdf = 0.5 * (1.0 + math.erf(v * _SQRT1_2))
                    dh[i, j] = dout[i, j] * (cdf + v * _INV_SQRT_2PI * np.exp(buf[j]))
            else:
                _exp_fast(buf, ibuf, f)
                for j in range(f):
                    v = h[i, j]
                    cdf = 0.5 * (1.0 + _erf_fast(v * _SQRT1_2))
                    dh[i, j] = dout[i, j] * (cdf + v * _INV_SQRT_2PI * buf[j])


@njit(parallel=True, fastmath=_FM, cache=True)
def embed_forward(ids, wte, pos, scale, out):
    """out[b, t] = wte[ids[b, t]] * scale + pos[t]; ids [B, T], wte [V, D], pos [>=T, D]."""
    bn, tn = ids.shape
    d = wte.shape[1]
    for r in prange(bn * tn):
        b = r // tn
        t = r - b * tn
        w = wte[ids[b, t]]
        for j in range(d):
            out[b, t, j] = w[j] * scale + pos[t, j]


@njit(cache=True)
def scatter_add_rows(dw, ids, dx, scale):
    """dw[ids[i]] += dx[i] * scale for flat ids [N] and dx [N, D]; serial, so order is fixed."""
    d = dx.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for j in range(d):
            dw[row, j] += dx[i, j] * scale


@njit(parallel=True, fastmath=_FM, cache=True)
def adamw_update(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gscale):
    """One AdamW step on flat float32 arrays, in place: g is scaled by ``gscale`` (clipping),
    moments are bias-corrected by bc1 = 1 - b1**t, bc2 = 1 - b2**t, decay is decoupled."""
    for i in prange(p.shape[0]):
        gi = g[i] * gscale
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= lr * ((mi / bc1) / (math.sqrt(vi / bc2) + eps) + wd * p[i])
