"""The encoder's layers as pure functions: ``*_forward`` returns (output, cache) and ``*_backward``
takes the output gradient and that cache and returns input and parameter gradients.

Shapes: B batch, T pieces, D model dim, H heads, U = D / H, F feed-forward dim, V vocabulary,
N = B * T rows, M selected (loss) rows. Weights are stored [in, out] so a layer is ``x @ w + b``.
The dtype of the inputs is the dtype of the computation: float32 for work, float64 for the
finite-difference checks (``exact`` then switches the kernels to ``np.exp``/``math.erf``).
"""
from __future__ import annotations

import math

import numpy as np

from . import kernels as K

LN_EPS = 1e-5


def _exact(x: np.ndarray) -> bool:
    return x.dtype == np.float64


def sinusoid(n: int, d: int, dtype=np.float32) -> np.ndarray:
    """Fixed position codes of "Attention is all you need": [n, d], sin on even and cos on odd
    columns, wavelengths 2*pi .. 10000*2*pi."""
    pos = np.arange(n, dtype=np.float64)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2, dtype=np.float64) / d)
    pe = np.zeros((n, d))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
    return pe.astype(dtype)


def embed_forward(ids: np.ndarray, wte: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[B, T] ids, [V, D], [>=T, D] -> [B, T] x D: wte[ids] * sqrt(D) + pos[t].

    The sqrt(D) scale lets unit-variance piece rows (std D**-0.5 at init, tied to the output
    logits) stand level with the position codes.
    """
    b, t = ids.shape
    ids = np.asarray(ids, np.int64)
    out = np.empty((b, t, wte.shape[1]), wte.dtype)
    K.embed_forward(ids, wte, pos, wte.dtype.type(math.sqrt(wte.shape[1])), out)
    return out


def embed_backward(dx: np.ndarray, ids: np.ndarray, dwte: np.ndarray) -> np.ndarray:
    """[B, T, D] -> adds into dwte [V, D]; returns the position gradient [T, D]."""
    d = dx.shape[2]
    K.scatter_add_rows(dwte, np.asarray(ids, np.int64).reshape(-1), dx.reshape(-1, d),
                       dx.dtype.type(math.sqrt(d)))
    return dx.sum(axis=0)


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, I] @ [I, O] + [O] -> [N, O]."""
    y = x @ w
    y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray):
    """[N, O] -> dx [N, I], dw [I, O], db [O]."""
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def _heads(qkv: np.ndarray, b: int, t: int, h: int) -> np.ndarray:
    """[N, 3D] -> [3, B, H, T, U] view (no copy): q, k, v of every head."""
    u = qkv.shape[1] // (3 * h)
    return qkv.reshape(b, t, 3, h, u).transpose(2, 0, 3, 1, 4)


def attention_forward(x, w_qkv, b_qkv, w_o, b_o, bias, heads: int, causal: bool):
    """Multi-head self-attention. x [B, T, D], bias [B, T] (0 real / -inf pad key) -> [B, T, D].

    alpha[b, h, t1, t2] = softmax over t2 of q.k / sqrt(U) (+ mask; t2 <= t1 when causal);
    out = concat_h(alpha @ v) @ w_o + b_o.
    """
    b, t, d = x.shape
    u = d // heads
    x2 = x.reshape(b * t, d)
    qkv = linear_forward(x2, w_qkv, b_qkv)                                 # [N, 3D]
    q, k, v = _heads(qkv, b, t, heads)                                     # [B, H, T, U] each
    p = np.matmul(q, k.transpose(0, 1, 3, 2))                              # [B, H, T, T]
    K.softmax_forward(p.reshape(b * heads, t, t), bias, heads, x.dtype.type(1 / math.sqrt(u)),
                      causal, _exact(x))
    ctx = np.empty((b, t, d), x.dtype)
    np.matmul(p, v, out=ctx.reshape(b, t, heads, u).transpose(0, 2, 1, 3))  # [B, T, H, U]
    ctx2 = ctx.reshape(b * t, d)
    y = linear_forward(ctx2, w_o, b_o)
    return y.reshape(b, t, d), (x2, qkv, p, ctx2)


def attention_backward(dy, cache, w_qkv, w_o, heads: int):
    """[B, T, D] -> dx [B, T, D], (dw_qkv [D, 3D], db_qkv [3D], dw_o [D, D], db_o [D])."""
    x2, qkv, p, ctx2 = cache
    b, h, t, _ = p.shape
    d = x2.shape[1]
    u = d // h
    dy2 = dy.reshape(b * t, d)
    dctx, dw_o, db_o = linear_backward(dy2, ctx2, w_o)
    dctx4 = dctx.reshape(b, t, h, u).transpose(0, 2, 1, 3)                # [B, H, T, U]
    q, k, v = _heads(qkv, b, t, h)
    dqkv = np.empty_like(qkv)
    dq, dk, dv = _heads(dqkv, b, t, h)
    dp = np.matmul(dctx4, v.transpose(0, 1, 3, 2))                         # [B, H, T, T]
    np.matmul(p.transpose(0, 1, 3, 2), dctx4, out=dv)
    K.softmax_backward(p.reshape(b * h, t, t), dp.reshape(b * h, t, t), p.dtype.type(1 / math.sqrt(u)))
    np.matmul(dp, k, out=dq)
    np.matmul(dp.transpose(0, 1, 3, 2), q, out=dk)
    dx2, dw_qkv, db_qkv = linear_backward(dqkv, x2, w_qkv)
    return dx2.reshape(b, t, d), (dw_qkv, db_qkv, dw_o, db_o)


def add_layernorm_forward(x, r, g, b):
    """LN(x + r) * g + b over the last axis: [N, D], [N, D] -> [N, D] (the post-LN residual)."""
    y = np.empty_like(x)
    xhat = np.empty_like(x)
    rstd = np.empty(x.shape[0], x.dtype)
    K.add_layernorm_forward(x, r, g, b, x.dtype.type(LN_EPS), y, xhat, rstd)
    return y, (xhat, rstd)


def layernorm_backward(dy, cache, g):
    """[N, D] -> d(x + r) [N, D], dg [D], db [D]."""
    xhat, rstd = cache
    dg = np.einsum("nd,nd->d", dy, xhat)
    db = dy.sum(axis=0)
    dx = np.empty_like(dy)
    K.layernorm_backward(dy, xhat, rstd, g, dx)
    return dx, dg, db


def ffn_forward(x, w1, b1, w2, b2):
    """[N, D] -> GELU(x @ w1 + b1) @ w2 + b2 [N, D]; GELU is the exact erf one (torch's)."""
    h = x @ w1                                                             # [N, F]
    a = np.empty_like(h)
    K.bias_gelu_forward(h, b1, a, _exact(x))
    return linear_forward(a, w2, b2), (x, h, a)


def ffn_backward(dy, cache, w1, w2):
    """[N, D] -> dx [N, D], (dw1 [D, F], db1 [F], dw2 [F, D], db2 [D])."""
    x, h, a = cache
    da, dw2, db2 = linear_backward(dy, a, w2)
    K.gelu_backward(h, da, da, _exact(x))
    dx, dw1, db1 = linear_backward(da, x, w1)
    return dx, (dw1, db1, dw2, db2)


BLOCK_PARAMS = ("qkv_w", "qkv_b", "o_w", "o_b", "ln1_g", "ln1_b",
                "ff1_w", "ff1_b", "ff2_w", "ff2_b", "ln2_g", "ln2_b")


def block_forward(x, p: dict, pre: str, bias, heads: int, causal: bool):
    """One post-LN layer (torch ``norm_first=False``): [B, T, D] -> [B, T, D].

    h1 = LN1(x + SelfAttention(x)); out = LN2(h1 + FFN(h1)).
    """
    b, t, d = x.shape
    a, ac = attention_forward(x, p[pre + "qkv_w"], p[pre + "qkv_b"], p[pre + "o_w"],
                              p[pre + "o_b"], bias, heads, causal)
    h1, l1 = add_layernorm_forward(x.reshape(b * t, d), a.reshape(b * t, d),
                                   p[pre + "ln1_g"], p[pre + "ln1_b"])
    f, fc = ffn_forward(h1, p[pre + "ff1_w"], p[pre + "ff1_b"], p[pre + "ff2_w"], p[pre + "ff2_b"])
    h2, l2 = add_layernorm_forward(h1, f, p[pre + "ln2_g"], p[pre + "ln2_b"])
    return h2.reshape(b, t, d), (ac, l1, fc, l2)


def block_backward(dy, cache, p: dict, pre: str, heads: int):
    """[B, T, D] -> dx [B, T, D], {name: gradient} for the layer's parameters."""
    ac, l1, fc, l2 = cache
    b, t, d = dy.shape
    g = {}
    ds2, g[pre + "ln2_g"], g[pre + "ln2_b"] = layernorm_backward(dy.reshape(b * t, d), l2,
                                                                 p[pre + "ln2_g"])
    dh1, (g[pre + "ff1_w"], g[pre + "ff1_b"], g[pre + "ff2_w"], g[pre + "ff2_b"]) = \
        ffn_backward(ds2, fc, p[pre + "ff1_w"], p[pre + "ff2_w"])
    dh1 += ds2
    ds1, g[pre + "ln1_g"], g[pre + "ln1_b"] = layernorm_backward(dh1, l1, p[pre + "ln1_g"])
    dx, (g[pre + "qkv_w"], g[pre + "qkv_b"], g[pre + "o_w"], g[pre + "o_b"]) = \
        attention_backward(ds1.reshape(b, t, d), ac, p[pre + "qkv_w"], p[pre + "o_w"], heads)
    dx += ds1.reshape(b, t, d)
    return dx, g


def tied_logits_forward(h, wte, out_b):
    """[M, D] @ [V, D].T + [V] -> [M, V]: the output layer shares the piece embeddings."""
    logits = h @ wte.T
    logits += out_b
    return logits


def tied_logits_backward(dlogits, h, wte):
    """[M, V] -> dh [M, D], dwte [V, D], dout_b [V]."""
    return dlogits @ wte, dlogits.T @ h, dlogits.sum(axis=0)


def softmax_xent(logits, targets, total: int | None = None):
    """Cross-entropy (nats) of [M, V] logits against [M] targets, summed and divided by ``total``
    (default M: the mean), and its gradient [M, V] (computed in place of the logits)."""
    m = logits.shape[0]
    total = m if total is None else total
    losses = np.empty(m)
    K.softmax_xent(logits, np.asarray(targets, np.int64), losses, logits.dtype.type(1 / total),
                   _exact(logits))
    return float(losses.sum() / total), logits
