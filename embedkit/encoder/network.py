"""The whole network: parameter initialisation, the layer stack, the tied output head and the
loss with all its gradients. Parameters live in one flat dict keyed by name (``wte``,
``l0.qkv_w``, ...), which is also how they are stored, optimised and compared with torch.
"""
from __future__ import annotations

import math

import numpy as np

from . import layers as L
from .heap import keep_freed_memory
from .threads import map_chunks

ARCH_KEYS = ("vocab", "dim", "heads", "layers", "ffn", "max_len", "positions", "objective")
OBJECTIVES = ("mlm", "clm", "contrastive", "mlm+contrastive")


def check_config(cfg: dict) -> None:
    """Raise ValueError with a user-facing message for an impossible architecture."""
    for key in ("vocab", "dim", "heads", "layers", "ffn", "max_len"):
        if int(cfg[key]) < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be at least 1 (got {cfg[key]})")
    if cfg["dim"] % cfg["heads"]:
        raise ValueError(f"--heads {cfg['heads']} does not divide --dim {cfg['dim']}")
    if cfg["dim"] % 2:
        raise ValueError(f"--dim must be even (got {cfg['dim']})")
    if cfg["positions"] not in ("sinusoidal", "learned"):
        raise ValueError(f"--positions must be sinusoidal or learned (got {cfg['positions']!r})")
    if cfg["objective"] not in OBJECTIVES:
        raise ValueError(f"--objective must be one of {', '.join(OBJECTIVES)} "
                         f"(got {cfg['objective']!r})")


def param_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    v, d, f = cfg["vocab"], cfg["dim"], cfg["ffn"]
    shapes = {"wte": (v, d), "out_b": (v,)}
    if cfg["positions"] == "learned":
        shapes["wpe"] = (cfg["max_len"], d)
    for i in range(cfg["layers"]):
        pre = f"l{i}."
        shapes.update({pre + "qkv_w": (d, 3 * d), pre + "qkv_b": (3 * d,),
                       pre + "o_w": (d, d), pre + "o_b": (d,),
                       pre + "ln1_g": (d,), pre + "ln1_b": (d,),
                       pre + "ff1_w": (d, f), pre + "ff1_b": (f,),
                       pre + "ff2_w": (f, d), pre + "ff2_b": (d,),
                       pre + "ln2_g": (d,), pre + "ln2_b": (d,)})
    if cfg.get("projection"):  # the contrastive projection head (training only)
        shapes.update({"proj_w": (d, cfg["projection"]), "proj_b": (cfg["projection"],)})
    return shapes


def init_params(cfg: dict, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Piece rows ~ N(0, 1/D) (unit scale after the sqrt(D) embedding factor, and logits of
    unit scale through the tied head); matrices ~ N(0, 0.02^2) as BERT; LN gains 1, biases 0."""
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name == "wte":
            a = rng.standard_normal(shape) / math.sqrt(cfg["dim"])
        elif name == "wpe":
            a = rng.standard_normal(shape) * 0.02
        elif name == "proj_w":  # keeps the pooled features' unit scale
            a = rng.standard_normal(shape) / math.sqrt(cfg["dim"])
        elif len(shape) == 2:
            a = rng.standard_normal(shape) * 0.02
        elif name.endswith("_g"):
            a = np.ones(shape)
        else:
            a = np.zeros(shape)
        params[name] = a.astype(dtype)
    return params


def positions(params: dict, cfg: dict, t: int) -> np.ndarray:
    """[T, D] position codes for T <= max_len."""
    if cfg["positions"] == "learned":
        return params["wpe"]
    dtype = params["wte"].dtype
    key = (cfg["max_len"], cfg["dim"], np.dtype(dtype).str)
    pe = _SINUSOIDS.get(key)
    if pe is None:
        pe = _SINUSOIDS[key] = L.sinusoid(cfg["max_len"], cfg["dim"], dtype)
    return pe


_SINUSOIDS: dict = {}


def key_bias(keep: np.ndarray, dtype) -> np.ndarray:
    """[B, T] bool (True = real piece) -> [B, T] additive attention mask (0 / -inf)."""
    bias = np.zeros(keep.shape, dtype)
    bias[~keep] = -np.inf
    return bias


def forward(params: dict, cfg: dict, ids: np.ndarray, keep: np.ndarray, upto: int | None = None,
            cache: bool = False):
    """[B, T] ids, [B, T] keep -> hidden [B, T, D] after ``upto`` layers (default all), caches.

    Padded positions never influence real ones: their keys get -inf before the softmax, and
    every other operation is per position. Without caches the batch runs in chunks, one per
    thread (``threads.map_chunks``); sequences are independent, so only rounding can differ.
    """
    keep_freed_memory()
    if cache:
        return _forward(params, cfg, ids, keep, upto, True)
    parts = map_chunks(lambda lo, hi: _forward(params, cfg, ids[lo:hi], keep[lo:hi], upto)[0],
                       ids.shape[0])
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), []


def _forward(params, cfg, ids, keep, upto=None, cache=False):
    n_layers = cfg["layers"] if upto is None else upto
    x = L.embed_forward(ids, params["wte"], positions(params, cfg, ids.shape[1]))
    bias = key_bias(keep, x.dtype)
    caches = []
    causal = cfg["objective"] == "clm"
    for i in range(n_layers):
        x, c = L.block_forward(x, params, f"l{i}.", bias, cfg["heads"], causal)
        if cache:
            caches.append(c)
    return x, caches


def loss_and_grads(params: dict, cfg: dict, ids: np.ndarray, keep: np.ndarray,
                   rows: np.ndarray, targets: np.ndarray, grads: bool = True):
    """Cross-entropy (nats, mean over the M loss rows) and {name: gradient}.

    ids/keep [B, T]; rows [M] distinct flat indices into B*T (masked pieces for mlm, every position with a
    next piece for clm); targets [M] the piece ids to predict there. The batch runs in chunks,
    one per thread; chunk losses and gradients are sums over their rows divided by the whole M,
    added up in chunk order (so a given thread count always gives the same result).
    """
    keep_freed_memory()
    t = ids.shape[1]
    rows = np.asarray(rows, np.int64)
    targets = np.asarray(targets, np.int64)

    def chunk(lo, hi):
        sel = (rows >= lo * t) & (rows < hi * t)
        return _chunk_loss_and_grads(params, cfg, ids[lo:hi], keep[lo:hi], rows[sel] - lo * t,
                                     targets[sel], len(rows), grads)

    parts = map_chunks(chunk, ids.shape[0])
    loss, g = parts[0]
    for part_loss, part_g in parts[1:]:
        loss += part_loss
        if grads:
            for name, value in part_g.items():
                g[name] += value
    return loss, g


def _chunk_loss_and_grads(params, cfg, ids, keep, rows, targets, total, grads):
    b, t = ids.shape
    d = cfg["dim"]
    h, caches = _forward(params, cfg, ids, keep, cache=grads)
    hm = h.reshape(b * t, d)[rows]                                          # [M, D]
    logits = L.tied_logits_forward(hm, params["wte"], params["out_b"])     # [M, V]
    loss, dlogits = L.softmax_xent(logits, targets, total)
    if not grads:
        return loss, None
    g = {}
    dhm, g["wte"], g["out_b"] = L.tied_logits_backward(dlogits, hm, params["wte"])
    dh = np.zeros((b * t, d), h.dtype)
    dh[rows] = dhm
    backward(params, cfg, ids, caches, dh.reshape(b, t, d), g)
    return loss, g


def backward(params: dict, cfg: dict, ids: np.ndarray, caches: list, dh: np.ndarray, g: dict):
    """[B, T, D] gradient of the last hidden states -> the layers' and position gradients into
    ``g``, the embedding's added into ``g["wte"]`` (which must exist: the tied head or zeros)."""
    dx = dh
    for i in reversed(range(cfg["layers"])):
        dx, gi = L.block_backward(dx, caches[i], params, f"l{i}.", cfg["heads"])
        g.update(gi)
    dpos = L.embed_backward(dx, ids, g["wte"])
    if cfg["positions"] == "learned":
        g["wpe"] = np.zeros_like(params["wpe"])
        g["wpe"][:ids.shape[1]] = dpos
    return g
