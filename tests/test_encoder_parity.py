"""Learning parity with PyTorch: the same architecture (post-LN, exact GELU, tied output), the same
initial weights, the same batches (embedkit's windows and MLM masks fed to both) and AdamW with
the same settings give the same training-loss curve step by step; and the contrastive loss and
its gradients equal torch autograd's. ``TorchMLM`` and ``torch_contrastive`` are also the
reference implementations ``benchmarks/bench_encoder.py`` times."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embedkit.encoder import contrastive as C
from embedkit.encoder import data
from embedkit.encoder import network as N
from embedkit.encoder.objectives import mlm_batch
from embedkit.encoder.optim import AdamW, decays, lr_at

torch = pytest.importorskip("torch", reason="torch not installed: parity test skipped "
                                            "(pip install torch==2.13.0)")

from test_encoder_torch import torch_encoder  # noqa: E402  (needs torch)

CFG = dict(vocab=67, dim=32, heads=4, layers=2, ffn=64, max_len=16, positions="sinusoidal",
           objective="mlm")
OPT = dict(lr=3e-3, warmup=5, weight_decay=0.01, clip=1.0)


class TorchMLM:
    """embedkit's encoder in torch: wte[ids] * sqrt(D) + sinusoids -> nn.TransformerEncoder
    (post-LN, GELU, no dropout) -> logits at the loss rows through the tied piece embeddings;
    AdamW (decay on matrices only), global-norm clipping and embedkit's lr schedule."""

    def __init__(self, params: dict, cfg: dict, lr, warmup, total, weight_decay, clip):
        t = lambda a: torch.from_numpy(np.array(a, np.float32))
        self.cfg, self.clip = cfg, clip
        self.enc = torch_encoder(params, cfg).train()   # dropout 0: train() just skips the fast path
        self.wte = torch.nn.Parameter(t(params["wte"]))
        self.out_b = torch.nn.Parameter(t(params["out_b"]))
        self.pos = t(N.positions(params, cfg, cfg["max_len"]))
        self.proj = None
        if "proj_w" in params:
            self.proj = (torch.nn.Parameter(t(params["proj_w"])),
                         torch.nn.Parameter(t(params["proj_b"])))
        named = [("wte", self.wte), ("out_b", self.out_b)] + list(self.enc.named_parameters())
        named += list(zip(("proj_w", "proj_b"), self.proj or ()))
        self.params = [p for _, p in named]
        groups = [{"params": [p for n, p in named if decays(n, tuple(p.shape))],
                   "weight_decay": weight_decay},
                  {"params": [p for n, p in named if not decays(n, tuple(p.shape))],
                   "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda e: lr_at(e + 1, lr, warmup, total) / lr)

    def hidden(self, ids, keep=None):
        ids = torch.from_numpy(np.asarray(ids, np.int64))
        x = self.wte[ids] * math.sqrt(self.cfg["dim"]) + self.pos[: ids.shape[1]]
        pad = None if keep is None or keep.all() else torch.from_numpy(~keep)
        return self.enc(x, src_key_padding_mask=pad)

    def mlm_loss(self, inputs, rows, targets):
        h = self.hidden(inputs).reshape(-1, self.cfg["dim"])[torch.from_numpy(rows)]
        logits = h @ self.wte.T + self.out_b
        targets = torch.from_numpy(np.asarray(targets, np.int64))
        return torch.nn.functional.cross_entropy(logits, targets)

    def step(self, loss) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        self.sched.step()
        return float(loss.detach())


def torch_contrastive(model: TorchMLM, ids, keep, cfg: dict):
    """L_CPC of embedkit's contrastive head in torch: pool, projection, dot/cosine, InfoNCE."""
    h = model.hidden(ids, keep)
    k = torch.from_numpy(keep.astype(np.float32))
    z = h[:, 0] if cfg["pool"] == "first" else (h * k[:, :, None]).sum(1) / k.sum(1, keepdim=True)
    if model.proj is not None:
        z = z @ model.proj[0] + model.proj[1]
    if cfg["score"] == "cosine":
        z = z / (z.norm(dim=1, keepdim=True) + C.COS_EPS)
    n = z.shape[0] // 2
    s = z[:n] @ z[n:].T / cfg["temperature"]
    return torch.nn.functional.cross_entropy(s, torch.arange(n))


def toy_stream(n=20000, seed=0):
    """Pieces from a random walk over 64 ids: neighbours predict a blank far better than chance."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(-2, 3, n)) % 64).astype(np.int32)


def test_mlm_training_curves_agree_step_by_step():
    torch.set_num_threads(1)
    steps = 20
    rng = np.random.default_rng(0)
    params = N.init_params(CFG, rng)
    theirs = TorchMLM(params, CFG, total=steps, **OPT)
    opt = AdamW(params, OPT["lr"], OPT["warmup"], steps, weight_decay=OPT["weight_decay"],
                clip=OPT["clip"])
    stream = toy_stream()
    regular = np.ones(CFG["vocab"], bool)
    regular[64:] = False
    ours, ref = [], []
    for _ in range(steps):
        windows = data.random_windows(stream, rng, 8, CFG["max_len"])
        inputs, rows, targets = mlm_batch(windows, np.ones(windows.shape, bool), rng, 65, regular)
        loss, grads = N.loss_and_grads(params, CFG, inputs, np.ones(inputs.shape, bool), rows,
                                       targets)
        opt.step(params, grads)
        ours.append(loss)
        ref.append(theirs.step(theirs.mlm_loss(inputs, rows, targets)))
    diff = np.abs(np.array(ours) - np.array(ref))
    assert diff.max() < 1e-3, diff          # the bar; measured: < 1e-6
    assert ours[0] - min(ours[-5:]) > 0.3   # the curves move: a real comparison
    # the weights too, tighter than any setting change shows (weight decay 0 in torch: 2e-4)
    lay = theirs.enc.layers[1]
    with torch.no_grad():
        for name, ref_p in (("wte", theirs.wte), ("out_b", theirs.out_b),
                            ("l1.ff2_w", lay.linear2.weight.T), ("l1.ln2_g", lay.norm2.weight)):
            assert np.abs(params[name] - ref_p.numpy()).max() < 2e-5, name


@pytest.mark.parametrize("pool,score,projection", [("mean", "dot", 0), ("first", "cosine", 16)])
def test_contrastive_loss_and_gradients_equal_torch_autograd(pool, score, projection):
    torch.set_num_threads(1)
    cfg = dict(CFG, objective="contrastive", pool=pool, score=score, projection=projection,
               temperature=0.5, pair="adjacent-lines", negatives="in-batch", contrastive_weight=1.0)
    rng = np.random.default_rng(1)
    params = N.init_params(cfg, rng)
    for name in params:
        noise = rng.standard_normal(params[name].shape) * 0.05
        params[name] = (params[name] + noise).astype(np.float32)
    ids = rng.integers(0, 64, (12, 10))
    keep = np.arange(10)[None, :] < rng.integers(2, 11, 12)[:, None]
    loss, grads, _ = C.loss_and_grads(params, cfg, ids, keep)
    model = TorchMLM(params, cfg, total=1, **OPT)
    ref = torch_contrastive(model, ids, keep, cfg)
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), abs=1e-5)
    assert np.abs(grads["wte"] - model.wte.grad.numpy()).max() < 1e-5
    lay = model.enc.layers[0]
    np.testing.assert_allclose(grads["l0.ff1_w"], lay.linear1.weight.grad.numpy().T, atol=1e-5)
    np.testing.assert_allclose(grads["l0.qkv_w"], lay.self_attn.in_proj_weight.grad.numpy().T,
                               atol=1e-5)
    if projection:
        np.testing.assert_allclose(grads["proj_w"], model.proj[0].grad.numpy(), atol=1e-5)
    assert np.abs(grads["wte"]).max() > 1e-3   # gradients that are not all ~0
