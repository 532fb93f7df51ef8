"""Fused Numba kernels for the encoder's element-wise work: softmax with masks, layer norm, GELU,
the embedding gather and its scatter-add.

Why fused: in a plain NumPy forward, matmuls are only ~60-70% of the time; the rest is passes over
[B, H, T, T] scores and [N, F] activations that NumPy does one ufunc (one memory sweep) at a time.
Each kernel here does one sweep per row. LLVM has no vector ``exp``/``erf`` here (no SVML), so
float32 runs use a vectorisable exp (Cody-Waite + polynomial, ~1e-7 relative) and the rational
erf of Eigen/XLA; ``exact=True`` (float64 gradient checks) uses ``np.exp``/``math.erf`` instead.
All row loops are ``prange`` over independent rows, so results do not depend on thread count; all
kernels release the GIL, so the batch chunks of ``threads.map_chunks`` run them side by side.
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
_f = np.float32
# float32 constants keep the fast paths in float32 lanes (a float64 literal would widen them)
_EXP_C = (_f(_LOG2E), _f(_LN2), _f(1.0), _f(0.5), _f(1 / 6), _f(1 / 24), _f(1 / 120),
          _f(1 / 720), _f(1 / 5040), _f(-126.0), _f(127.0))
_ERF_P = (_f(-2.72614225801306e-10), _f(2.77068142495902e-08), _f(-2.10102402082508e-06),
          _f(-5.69250639462346e-05), _f(-7.34990630326855e-04), _f(-2.95459980854025e-03),
          _f(-1.60960333262415e-02))
_ERF_Q = (_f(-1.45660718464996e-05), _f(-2.13374055278905e-04), _f(-1.68282697438203e-03),
          _f(-7.37332916720468e-03), _f(-1.42647390514189e-02))
_F4 = _f(4.0)
_HALF = _f(0.5)
_ONE = _f(1.0)
_ZERO = _f(0.0)
_SQRT1_2F = _f(_SQRT1_2)
_INV_SQRT_2PIF = _f(_INV_SQRT_2PI)


@njit(fastmath=_FM, error_model="numpy", cache=True, inline="always")
def _exp_fast(buf, ibuf, n):
    """buf[:n] = exp(buf[:n]) in place (float32); ibuf is int32 scratch (2**k bit patterns)."""
    log2e, ln2, c0, c2, c3, c4, c5, c6, c7, lo, hi = _EXP_C
    fbits = ibuf.view(np.float32)
    for i in range(n):
        y = buf[i] * log2e
        y = lo if y < lo else y  # exp underflows to ~1e-38: as good as 0 for softmax and GELU'
        y = hi if y > hi else y
        k = np.int32(y + c2 + _f(126.0)) - np.int32(126)  # floor(y + 0.5) for y >= -126.5
        f = (y - _f(k)) * ln2
        p = c0 + f * (c0 + f * (c2 + f * (c3 + f * (c4 + f * (c5 + f * (c6 + f * c7))))))
        buf[i] = p if y > lo else _ZERO  # exp(-inf) (a masked key) is exactly 0
        ibuf[i] = (k + np.int32(127)) << np.int32(23)
    for i in range(n):
        buf[i] *= fbits[i]


@njit(fastmath=_FM, error_model="numpy", cache=True, inline="always")
def _erf_fast(x):
    """Rational erf approximation used by Eigen/XLA for float32 (error ~1 ulp of float32)."""
    a13, a11, a9, a7, a5, a3, a1 = _ERF_P
    b8, b6, b4, b2, b0 = _ERF_Q
    x = _F4 if x > _F4 else x
    x = -_F4 if x < -_F4 else x
    x2 = x * x
    p = x2 * a13 + a11
    p = x2 * p + a9
    p = x2 * p + a7
    p = x2 * p + a5
    p = x2 * p + a3
    p = x2 * p + a1
    q = x2 * b8 + b6
    q = x2 * q + b4
    q = x2 * q + b2
    q = x2 * q + b0
    return x * p / q


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def softmax_forward(s, bias, heads, scale, causal, exact):
    """In place: s[bh, t, :] = softmax_j(s*scale + bias[b, j]), j <= t when causal.

    s [B*H, T, T] scores (C-contiguous), bias [B, T] additive key mask (0 or -inf).
    A row whose keys are all masked becomes all zeros (never NaN). The float32 path shifts by
    the row's first allowed score instead of its maximum (a max reduction does not vectorise
    here) and falls back to the maximum only if the sum overflows.
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
            first = -1
            for j in range(lim):
                if bias[b, j] == 0:
                    first = j
                    break
            if first < 0:
                row[:] = 0
                continue
            shift = row[first] * scale
            if exact:
                for j in range(lim):
                    shift = max(shift, row[j] * scale + bias[b, j])
            total = _softmax_row(row, bias[b], buf, ibuf, lim, scale, shift, exact)
            if not total < np.inf:
                for j in range(lim):
                    shift = max(shift, row[j] * scale + bias[b, j])
                total = _softmax_row(row, bias[b], buf, ibuf, lim, scale, shift, exact)
            inv = 1 / total
            for j in range(lim):
                row[j] = buf[j] * inv
            for j in range(lim, k_n):
                row[j] = 0


@njit(fastmath=_FM, error_model="numpy", cache=True, inline="always")
def _softmax_row(row, bias, buf, ibuf, lim, scale, shift, exact):
    """buf[:lim] = exp(row*scale + bias - shift); returns the sum."""
    for j in range(lim):
        buf[j] = row[j] * scale + bias[j] - shift
    return _exp_sum(buf, ibuf, lim, exact)


@njit(fastmath=_FM, error_model="numpy", cache=True, inline="always")
def _exp_sum(buf, ibuf, n, exact):
    """buf[:n] = exp(buf[:n]) in place; returns the sum."""
    if exact:
        for j in range(n):
            buf[j] = np.exp(buf[j])
    else:
        _exp_fast(buf, ibuf, n)
    total = buf[0] * 0
    for j in range(n):
        total += buf[j]
    return total


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
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
        dot = pr[0] * 0
        for j in range(k_n):
            dot += pr[j] * dr[j]
        for j in range(k_n):
            dr[j] = scale * pr[j] * (dr[j] - dot)


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def add_layernorm_forward(x, r, g, b, eps, y, xhat, rstd):
    """y = LN(x + r) * g + b row-wise; keeps xhat [N, D] and rstd [N] for the backward pass.

    x, r, y, xhat [N, D]; g, b [D]; y may alias x or r.
    """
    n, d = x.shape
    for i in prange(n):
        mean = x[i, 0] * 0
        for j in range(d):
            v = x[i, j] + r[i, j]
            xhat[i, j] = v
            mean += v
        mean /= d
        var = x[i, 0] * 0
        for j in range(d):
            v = xhat[i, j] - mean
            var += v * v
        inv = 1 / np.sqrt(var / d + eps)
        rstd[i] = inv
        for j in range(d):
            h = (xhat[i, j] - mean) * inv
            xhat[i, j] = h
            y[i, j] = h * g[j] + b[j]


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def layernorm_backward(dy, xhat, rstd, g, dx):
    """dx = rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat)), dxh = dy * g.

    dy, xhat, dx [N, D]; rstd [N]; g [D]. dx may alias dy. dg, db are column sums done by NumPy.
    """
    n, d = dy.shape
    for i in prange(n):
        s1 = dy[i, 0] * 0
        s2 = dy[i, 0] * 0
        for j in range(d):
            v = dy[i, j] * g[j]
            s1 += v
            s2 += v * xhat[i, j]
        s1 /= d
        s2 /= d
        inv = rstd[i]
        for j in range(d):
            dx[i, j] = inv * (dy[i, j] * g[j] - s1 - xhat[i, j] * s2)


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
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
                out[i, j] = _HALF * v * (_ONE + _erf_fast(v * _SQRT1_2F))


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def gelu_backward(h, dout, dh, exact):
    """dh = dout * (Phi(h) + h * phi(h)) for the pre-activation h [N, F]; dh may alias dout."""
    n, f = h.shape
    rows_per = _CHUNK
    for c in prange((n + rows_per - 1) // rows_per):
        ibuf = np.empty(f, np.int32)
        buf = np.empty(f, h.dtype)
        for i in range(c * rows_per, min(n, (c + 1) * rows_per)):
            for j in range(f):
                buf[j] = -_HALF * h[i, j] * h[i, j]
            if exact:
                for j in range(f):
                    v = h[i, j]
                    cdf = 0.5 * (1.0 + math.erf(v * _SQRT1_2))
                    dh[i, j] = dout[i, j] * (cdf + v * _INV_SQRT_2PI * np.exp(buf[j]))
            else:
                _exp_fast(buf, ibuf, f)
                for j in range(f):
                    v = h[i, j]
                    cdf = _HALF * (_ONE + _erf_fast(v * _SQRT1_2F))
                    dh[i, j] = dout[i, j] * (cdf + v * _INV_SQRT_2PIF * buf[j])


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def scatter_add_rows(dw, ids, dx, scale):
    """dw[ids[i]] += dx[i] * scale for flat ids [N] and dx [N, D]; serial, so order is fixed."""
    d = dx.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for j in range(d):
            dw[row, j] += dx[i, j] * scale


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
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


@njit(parallel=True, fastmath=_FM, error_model="numpy", cache=True, nogil=True)
def softmax_xent(logits, targets, losses, scale, exact):
    """Cross-entropy per row and its gradient, in place.

    logits [M, V] become scale * (softmax(logits) - onehot(targets)); losses [M] (float64) get
    logsumexp(logits) - logits[target]. Rows are shifted by the target's logit, which keeps the
    sum >= 1; the row maximum is used only when that sum overflows.
    """
    m_n, v_n = logits.shape
    for c in prange((m_n + _CHUNK - 1) // _CHUNK):
        ibuf = np.empty(v_n, np.int32)
        buf = np.empty(v_n, logits.dtype)
        for i in range(c * _CHUNK, min(m_n, (c + 1) * _CHUNK)):
            row = logits[i]
            shift = row[targets[i]]
            if exact:
                for j in range(v_n):
                    shift = max(shift, row[j])
            for j in range(v_n):
                buf[j] = row[j] - shift
            total = _exp_sum(buf, ibuf, v_n, exact)
            if not total < np.inf:
                for j in range(v_n):
                    shift = max(shift, row[j])
                for j in range(v_n):
                    buf[j] = row[j] - shift
                total = _exp_sum(buf, ibuf, v_n, exact)
            losses[i] = np.log(np.float64(total)) + (shift - row[targets[i]])
            inv = scale / total
            for j in range(v_n):
                row[j] = buf[j] * inv
            row[targets[i]] -= scale
