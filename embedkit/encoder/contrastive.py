"""The contrastive objective (CPC / InfoNCE with in-batch negatives) and its hand-written backward.

A batch holds N pairs of neighbouring text (x_i, y_i) (``pairs.py``). Each sequence goes through
the encoder; its feature z is the mean of its real pieces' last hidden states (``pool="mean"``)
or the state of its first piece (``"first"``), then, with ``projection=P``, a linear head
z @ W + b [D -> P] used only in training (saved in the checkpoint, not used by ``embed``).
Scores s_ij = z_x_i . z_y_j / temperature (``score="cosine"``: of the unit vectors). The loss
is the mean over rows i of the cross-entropy of the true y_i among the N y's of the batch:

    L_CPC = mean_i [ -s_ii + log sum_j exp s_ij ]   (row-wise only: x picks its y, as in CPC)

so the other N-1 y's are the distractors, and ``ln N - L_CPC`` is a lower bound on the mutual
information of the features (van den Oord et al. 2018); it can never exceed ln N.
"""
from __future__ import annotations

import math

import numpy as np

from . import network as N
from .pairs import KINDS, pad_pairs
from .threads import map_chunks

DEFAULTS = dict(pair="adjacent-lines", negatives="in-batch", pool="mean", projection=0,
                score="dot", temperature=1.0, contrastive_weight=1.0)
POOLS = ("mean", "first")
SCORES = ("dot", "cosine")
COS_EPS = 1e-12


def uses_pairs(objective: str) -> bool:
    return objective in ("contrastive", "mlm+contrastive")


def check_options(cfg: dict, batch_size: int) -> None:
    """Raise ValueError with a user-facing message for impossible contrastive settings."""
    if cfg["pair"] not in KINDS:
        raise ValueError(f"--pair must be one of {', '.join(KINDS)} (got {cfg['pair']!r})")
    if cfg["negatives"] != "in-batch":
        raise ValueError(f"--negatives must be in-batch (got {cfg['negatives']!r})")
    if cfg["pool"] not in POOLS:
        raise ValueError(f"--pool must be mean or first (got {cfg['pool']!r})")
    if cfg["score"] not in SCORES:
        raise ValueError(f"--score must be dot or cosine (got {cfg['score']!r})")
    t = cfg["temperature"]
    if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise ValueError(f"--temperature must be a number > 0 (got {t})")
    w = cfg["contrastive_weight"]
    if not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0):
        raise ValueError(f"--contrastive-weight must be a number > 0 (got {w})")
    if not 0 <= cfg["projection"] <= cfg["dim"]:
        raise ValueError(f"--projection must be between 1 and --dim {cfg['dim']} "
                         f"(got {cfg['projection']}; 0 = no projection head)")
    if batch_size < 2:
        raise ValueError(f"--batch-size must be at least 2 for a contrastive objective: the other "
                         f"pairs of the batch are the distractors (got {batch_size})")


# ---- the head: pooling, projection, scores and the loss ------------------------------------------

def pool_forward(h: np.ndarray, keep: np.ndarray, how: str) -> np.ndarray:
    """[B, T, D] hidden, [B, T] keep -> [B, D]: the mean over real pieces, or the first piece."""
    if how == "first":
        return h[:, 0].copy()
    w = (keep / keep.sum(axis=1, keepdims=True)).astype(h.dtype)
    return np.einsum("btd,bt->bd", h, w)


def pool_backward(dz: np.ndarray, keep: np.ndarray, how: str) -> np.ndarray:
    """[B, D] -> [B, T, D] (zero at padding)."""
    b, t = keep.shape
    if how == "first":
        dh = np.zeros((b, t, dz.shape[1]), dz.dtype)
        dh[:, 0] = dz
        return dh
    w = (keep / keep.sum(axis=1, keepdims=True)).astype(dz.dtype)
    return w[:, :, None] * dz[:, None, :]


def infonce(scores: np.ndarray):
    """[N, N] scores (true pairs on the diagonal) -> (mean loss in nats, d loss / d scores,
    top-1 accuracy: the fraction of rows whose best-scoring y is the true one)."""
    n = scores.shape[0]
    m = scores.max(axis=1, keepdims=True)
    e = np.exp(scores - m)
    tot = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(tot[:, 0]) + m[:, 0] - np.diagonal(scores)))
    ds = e / tot
    ds[np.arange(n), np.arange(n)] -= 1.0
    ds /= n
    top1 = float(np.mean(np.argmax(scores, axis=1) == np.arange(n)))
    return loss, ds, top1


def features(params: dict, cfg: dict, z: np.ndarray):
    """[B, D] pooled -> [B, P] features the scores use (projection, then unit length for
    cosine), and what the backward pass needs."""
    u = z @ params["proj_w"] + params["proj_b"] if cfg.get("projection") else z
    if cfg["score"] != "cosine":
        return u, (z, u, None)
    norm = np.sqrt(np.einsum("bp,bp->b", u, u))[:, None] + COS_EPS
    return u / norm, (z, u, norm)


def features_backward(dv: np.ndarray, params: dict, cfg: dict, cache, g: dict) -> np.ndarray:
    """[B, P] -> d pooled [B, D]; the projection gradients go into ``g``."""
    z, u, norm = cache
    du = dv
    if norm is not None:
        v = u / norm
        du = (dv - v * np.einsum("bp,bp->b", v, dv)[:, None]) / norm
    if not cfg.get("projection"):
        return du
    g["proj_w"] = z.T @ du
    g["proj_b"] = du.sum(axis=0)
    return du @ params["proj_w"].T


def scores(v: np.ndarray, temperature: float) -> np.ndarray:
    """[2N, P] features (x's then y's) -> [N, N] s_ij = v_x_i . v_y_j / temperature."""
    n = v.shape[0] // 2
    return (v[:n] @ v[n:].T) / v.dtype.type(temperature)


# ---- the whole model ------------------------------------------------------------------------

GROUP = 16  # sequences per length bucket


def buckets(keep: np.ndarray) -> list[np.ndarray]:
    """Sequence indices sorted by length (stable), GROUP at a time: each bucket runs padded
    only to its own longest sequence. Lines vary from 1 to max_len pieces, and padding a batch
    of 2N to its longest line cost 4x the real pieces on dev.txt."""
    order = np.argsort(keep.sum(axis=1), kind="stable")
    return [order[i:i + GROUP] for i in range(0, order.size, GROUP)]


def _trim(ids, keep, idx):
    width = int(keep[idx].sum(axis=1).max())
    return ids[idx, :width], keep[idx, :width]


def pooled(params: dict, cfg: dict, ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """[B, T] ids/keep -> [B, D] pooled last hidden states (no caches), bucket by bucket."""
    z = np.empty((ids.shape[0], cfg["dim"]), params["wte"].dtype)
    groups = buckets(keep)

    def forward(lo, hi):
        for idx in groups[lo:hi]:
            b_ids, b_keep = _trim(ids, keep, idx)
            h, _ = N.forward(params, cfg, b_ids, b_keep, cache=True)
            z[idx] = pool_forward(h, b_keep, cfg["pool"])

    map_chunks(forward, len(groups))
    return z


def loss_and_grads(params: dict, cfg: dict, ids: np.ndarray, keep: np.ndarray,
                   grads: bool = True):
    """L_CPC (nats), {name: gradient} (None without grads) and top-1 accuracy for a batch of
    pairs: ids/keep [2N, T], rows 0..N-1 the x's and N..2N-1 their y's (``pairs.pad_pairs``).

    The sequences run in length buckets (``buckets``), the buckets in chunks, one chunk per
    thread. The loss couples the whole batch, so that happens in two rounds: each chunk's
    forward with caches, the loss on all features, then each chunk's backward; chunk gradients
    are added in chunk order (a given thread count always gives the same result).
    """
    if not grads:
        v, _ = features(params, cfg, pooled(params, cfg, ids, keep))
        loss, _, top1 = infonce(scores(v, cfg["temperature"]))
        return loss, None, top1
    groups = buckets(keep)
    caches = {}
    z = np.empty((ids.shape[0], cfg["dim"]), params["wte"].dtype)

    def forward(lo, hi):
        for k in range(lo, hi):
            b_ids, b_keep = _trim(ids, keep, groups[k])
            h, caches[k] = N.forward(params, cfg, b_ids, b_keep, cache=True)
            z[groups[k]] = pool_forward(h, b_keep, cfg["pool"])

    map_chunks(forward, len(groups))
    v, fcache = features(params, cfg, z)
    s = scores(v, cfg["temperature"])
    loss, ds, top1 = infonce(s)
    n = s.shape[0]
    tau = v.dtype.type(cfg["temperature"])
    dv = np.concatenate([ds @ v[n:], ds.T @ v[:n]]) / tau
    head = {}
    dz = features_backward(dv, params, cfg, fcache, head)

    def backward(lo, hi):
        g = {"wte": np.zeros_like(params["wte"])}
        for k in range(lo, hi):
            b_ids, b_keep = _trim(ids, keep, groups[k])
            dh = pool_backward(dz[groups[k]], b_keep, cfg["pool"])
            part = N.backward(params, cfg, b_ids, caches.pop(k), dh, {"wte": g["wte"]})
            for name, value in part.items():
                if name != "wte":
                    g[name] = g[name] + value if name in g else value
        return g

    parts = map_chunks(backward, len(groups))
    g = parts[0]
    for part in parts[1:]:
        for name, value in part.items():
            g[name] += value
    g.update(head)
    g["out_b"] = np.zeros_like(params["out_b"])  # the tied output layer plays no part here
    return loss, g, top1


def evaluate(params: dict, cfg: dict, pairs: list, n: int, pad: int, batch_size: int = 64):
    """Held-out L_CPC, the bound ln n - L_CPC and top-1 with ``n`` candidates: the pairs are cut
    into consecutive groups of n (a remainder is left out), each group scored like a batch;
    the means over groups. None when there are fewer than n pairs."""
    if len(pairs) < n or n < 2:
        return None
    return bound(embed_pairs(params, cfg, pairs[:len(pairs) // n * n], pad, batch_size), n,
                 cfg["temperature"])


def bound(v: np.ndarray, n: int, temperature: float) -> dict | None:
    """[2, M, P] features of M pairs -> the figures of ``evaluate`` with n candidates."""
    groups = v.shape[1] // n
    if groups == 0 or n < 2:
        return None
    losses, tops = [], []
    for k in range(groups):
        sl = slice(k * n, (k + 1) * n)
        loss, _, top1 = infonce(scores(np.concatenate([v[0][sl], v[1][sl]]), temperature))
        losses.append(loss)
        tops.append(top1)
    loss = float(np.mean(losses))
    return {"n": n, "loss": loss, "mi_bound": math.log(n) - loss, "top1": float(np.mean(tops)),
            "pairs": groups * n}


def embed_pairs(params: dict, cfg: dict, pairs: list, pad: int, batch_size: int = 64):
    """[(x, y)] * M -> [2, M, P] features of the x's and of the y's."""
    xs, ys = [], []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        ids, keep = pad_pairs(chunk, pad)
        v, _ = features(params, cfg, pooled(params, cfg, ids, keep))
        xs.append(v[:len(chunk)])
        ys.append(v[len(chunk):])
    return np.stack([np.concatenate(xs), np.concatenate(ys)])


def heldout_bounds(encdir, paths, ns=(16, 64, 256), limit: int | None = None) -> list[dict]:
    """The bound ln N - L_CPC on the held-out pairs of corpus ``paths`` for each N in ``ns``
    candidates, with the encoder in ``encdir`` and the pairs, head and score it was trained
    with (``evaluate`` for each N; all held-out pairs unless ``limit``). Each N gets a row,
    None-valued when there are fewer than N held-out pairs."""
    import shutil
    import tempfile
    from pathlib import Path

    from ..errors import UsageError
    from .data import encode_corpus
    from .model import Encoder
    from .pairs import PairSource

    enc = Encoder.load(encdir)
    cfg = enc.config
    if not uses_pairs(cfg["objective"]):
        raise UsageError(f"{encdir}: a {cfg['objective']} encoder has no contrastive head")
    work = Path(tempfile.mkdtemp(prefix=".pairs."))
    try:
        streams = encode_corpus([str(p) for p in paths], enc.vocab, work)
        pairs = PairSource(streams, enc.vocab.sep, cfg["pair"], cfg["max_len"], work)
        held = pairs.heldout_pairs(limit)
        v = embed_pairs(enc.params, cfg, held, enc.vocab.pad) if held else None
        return [(v is not None and bound(v, n, cfg["temperature"])) or {"n": n, "pairs": len(held)}
                for n in ns]
    finally:
        shutil.rmtree(work, ignore_errors=True)
