"""Finite-difference checks (float64) of every encoder layer's backward pass, of the whole model
with its loss, and of the float32 kernels against slow obvious NumPy references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embedkit.encoder import kernels as K
from embedkit.encoder import layers as L
from embedkit.encoder import network as N

TOL = 1e-6


def numgrad(f, x, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every element of x (perturbed in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def assert_close(analytic, numeric, tol=TOL):
    err = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic),
                                                   np.linalg.norm(numeric), 1e-12)
    assert err < tol, f"relative error {err:.2e}"


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_linear(rng):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    r = rng.standard_normal((5, 3))
    f = lambda: float(np.sum(L.linear_forward(x, w, b) * r))
    dx, dw, db = L.linear_backward(r, x, w)
    for a, v in ((dx, x), (dw, w), (db, b)):
        assert_close(a, numgrad(f, v))


@pytest.mark.parametrize("causal", [False, True])
def test_attention(rng, causal):
    b, t, d, h = 2, 5, 8, 2
    x = rng.standard_normal((b, t, d))
    w_qkv, b_qkv = rng.standard_normal((d, 3 * d)) * 0.5, rng.standard_normal(3 * d) * 0.1
    w_o, b_o = rng.standard_normal((d, d)) * 0.5, rng.standard_normal(d) * 0.1
    keep = np.ones((b, t), bool)
    keep[1, 3:] = False
    bias = N.key_bias(keep, np.float64)
    r = rng.standard_normal((b, t, d))
    f = lambda: float(np.sum(L.attention_forward(x, w_qkv, b_qkv, w_o, b_o, bias, h, causal)[0] * r))
    _, cache = L.attention_forward(x, w_qkv, b_qkv, w_o, b_o, bias, h, causal)
    dx, grads = L.attention_backward(r, cache, w_qkv, w_o, h)
    for a, v in zip((dx,) + grads, (x, w_qkv, b_qkv, w_o, b_o)):
        assert_close(a, numgrad(f, v))


def test_attention_matches_loop_reference(rng):
    """The batched, fused attention equals the per-head formula of the lecture notes."""
    b, t, d, h = 2, 4, 6, 3
    u = d // h
    x = rng.standard_normal((b, t, d))
    w_qkv, b_qkv = rng.standard_normal((d, 3 * d)), rng.standard_normal(3 * d)
    w_o, b_o = rng.standard_normal((d, d)), rng.standard_normal(d)
    keep = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    y, _ = L.attention_forward(x, w_qkv, b_qkv, w_o, b_o, N.key_bias(keep, x.dtype), h, True)
    ref = np.zeros((b, t, d))
    for bi in range(b):
        qkv = x[bi] @ w_qkv + b_qkv
        outs = []
        for k in range(h):
            q, kk, v = (qkv[:, s * d + k * u: s * d + (k + 1) * u] for s in range(3))
            out = np.zeros((t, u))
            for t1 in range(t):
                allowed = [t2 for t2 in range(t) if t2 <= t1 and keep[bi, t2]]
                sc = np.array([q[t1] @ kk[t2] / math.sqrt(u) for t2 in allowed])
                al = np.exp(sc - sc.max())
                al /= al.sum()
                out[t1] = sum(a * v[t2] for a, t2 in zip(al, allowed))
            outs.append(out)
        ref[bi] = np.concatenate(outs, axis=1) @ w_o + b_o
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_layernorm(rng):
    x, r = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    g, b = rng.standard_normal(5), rng.standard_normal(5)
    dy = rng.standard_normal((6, 5))
    f = lambda: float(np.sum(L.add_layernorm_forward(x, r, g, b)[0] * dy))
    y, cache = L.add_layernorm_forward(x, r, g, b)
    s = x + r
    ref = (s - s.mean(1, keepdims=True)) / np.sqrt(s.var(1, keepdims=True) + L.LN_EPS) * g + b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    dx, dg, db = L.layernorm_backward(dy, cache, g)
    for a, v in ((dx, x), (dx, r), (dg, g), (db, b)):
        assert_close(a, numgrad(f, v))


def test_ffn(rng):
    x = rng.standard_normal((4, 3))
    w1, b1 = rng.standard_normal((3, 7)), rng.standard_normal(7)
    w2, b2 = rng.standard_normal((7, 3)), rng.standard_normal(3)
    r = rng.standard_normal((4, 3))
    f = lambda: float(np.sum(L.ffn_forward(x, w1, b1, w2, b2)[0] * r))
    _, cache = L.ffn_forward(x, w1, b1, w2, b2)
    dx, grads = L.ffn_backward(r, cache, w1, w2)
    for a, v in zip((dx,) + grads, (x, w1, b1, w2, b2)):
        assert_close(a, numgrad(f, v))


def test_embedding_and_tied_head(rng):
    ids = np.array([[1, 3, 1], [0, 2, 3]], np.int64)
    wte, pos = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))
    r = rng.standard_normal((2, 3, 6))
    f = lambda: float(np.sum(L.embed_forward(ids, wte, pos) * r))
    dwte = np.zeros_like(wte)
    dpos = L.embed_backward(r, ids, dwte)
    assert_close(dwte, numgrad(f, wte))
    assert_close(np.vstack([dpos, np.zeros((2, 6))]), numgrad(f, pos))
    h, bias = rng.standard_normal((3, 6)), rng.standard_normal(4)
    targets = np.array([2, 0, 2])
    f = lambda: L.softmax_xent(L.tied_logits_forward(h, wte, bias), targets)[0]
    _, dlogits = L.softmax_xent(L.tied_logits_forward(h, wte, bias), targets)
    for a, v in zip(L.tied_logits_backward(dlogits, h, wte), (h, wte, bias)):
        assert_close(a, numgrad(f, v))


def test_softmax_xent_value():
    logits = np.array([[0.0, math.log(3.0)]])
    loss, _ = L.softmax_xent(logits, np.array([1]))
    assert loss == pytest.approx(-math.log(0.75), abs=1e-15)


@pytest.mark.parametrize("objective,positions", [("mlm", "sinusoidal"), ("clm", "learned")])
def test_whole_model_and_loss(rng, objective, positions):
    cfg = dict(vocab=11, dim=8, heads=2, layers=2, ffn=12, max_len=6, positions=positions,
               objective=objective)
    params = N.init_params(cfg, rng, np.float64)
    for name in params:  # move off the init values (zero biases, unit gains) so all paths count
        params[name] += rng.standard_normal(params[name].shape) * 0.1
    ids = rng.integers(0, 11, (2, 5))
    keep = np.ones((2, 5), bool)
    keep[0, 4] = False
    rows = np.array([0, 2, 6, 9])
    targets = np.array([3, 4, 10, 0])
    f = lambda: N.loss_and_grads(params, cfg, ids, keep, rows, targets, grads=False)[0]
    _, grads = N.loss_and_grads(params, cfg, ids, keep, rows, targets)
    assert set(grads) == set(params)
    for name in sorted(params):
        assert_close(grads[name], numgrad(f, params[name]))


def test_kernels_float32_match_reference(rng):
    """The fast float32 exp/erf paths agree with the float64 formulas."""
    s = rng.standard_normal((6, 5, 5)).astype(np.float32) * 4
    bias = np.zeros((2, 5), np.float32)
    bias[1, 3:] = -np.inf
    p = s.copy()
    K.softmax_forward(p, bias, 3, 0.5, True, False)
    ref = s.astype(np.float64) * 0.5 + np.repeat(bias, 3, 0)[:, None, :] \
        + np.triu(np.full((5, 5), -np.inf), 1)
    ref = np.exp(ref - ref.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    np.testing.assert_allclose(p, ref, rtol=2e-6, atol=1e-7)
    x = np.linspace(-9, 9, 4000, dtype=np.float32).reshape(2, -1)
    pre, out = x.copy(), np.empty_like(x)
    K.bias_gelu_forward(pre, np.zeros(x.shape[1], np.float32), out, False)
    x64 = x.astype(np.float64)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(out, 0.5 * x64 * (1 + erf(x64 / math.sqrt(2))), rtol=1e-5, atol=1e-6)
    dh = np.empty_like(x)
    K.gelu_backward(x, np.ones_like(x), dh, False)
    deriv = 0.5 * (1 + erf(x64 / math.sqrt(2))) + x64 * np.exp(-x64 ** 2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(dh, deriv, rtol=1e-5, atol=1e-6)


def test_fully_masked_row_is_zero_not_nan():
    s = np.ones((1, 2, 2))
    K.softmax_forward(s, np.full((1, 2), -np.inf), 1, 1.0, False, True)
    assert np.array_equal(s, np.zeros((1, 2, 2)))


def test_batch_chunks_on_threads_match_one_chunk(rng, monkeypatch):
    """Cutting the batch into per-thread chunks (one of them without loss rows) gives the
    one-chunk forward, loss and gradients up to rounding."""
    from embedkit.encoder import threads

    cfg = dict(vocab=11, dim=8, heads=2, layers=2, ffn=12, max_len=6, positions="learned",
               objective="mlm")
    params = N.init_params(cfg, rng, np.float64)
    ids = rng.integers(0, 11, (5, 6))
    keep = np.arange(6)[None, :] < np.array([6, 3, 5, 6, 2])[:, None]
    rows = np.array([1, 20, 4, 25, 29])  # sequences 0, 3, 4: the middle chunk has none
    targets = np.array([3, 4, 10, 0, 7])
    results = {}
    real = threads._pool
    for k in (1, 3):
        monkeypatch.setattr(threads, "workers", lambda k=k: k)
        calls = []
        monkeypatch.setattr(threads, "_pool", lambda n: calls.append(n) or real(n))
        h, _ = N.forward(params, cfg, ids, keep)
        loss, grads = N.loss_and_grads(params, cfg, ids, keep, rows, targets)
        assert calls == ([] if k == 1 else [3, 3])
        results[k] = h, loss, grads
    (h1, loss1, g1), (h3, loss3, g3) = results[1], results[3]
    np.testing.assert_allclose(h3, h1, rtol=1e-12, atol=1e-12)
    assert loss3 == pytest.approx(loss1, rel=1e-12)
    assert set(g3) == set(g1)
    for name in g1:
        np.testing.assert_allclose(g3[name], g1[name], rtol=1e-10, atol=1e-12)
