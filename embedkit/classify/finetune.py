"""Fine-tuning a pretrained encoder for classification, and the MODEL file it writes.

Network: the encoder (``embedkit.encoder.network``) -> pool over the line's pieces (``mean`` of
the last layer's states, or the ``first`` piece's) -> linear head [D, K] -> softmax over the K
labels, cross-entropy. Every encoder parameter is trained with the head, end to end, with the
encoder's AdamW (warmup, linear decay, clipping at 1.0, weight decay on matrices).

- A line is encoded with the encoder's own BPE (its words joined by single spaces) and cut to
  the encoder's ``max_len`` pieces: pieces past it are dropped, in training and in prediction.
  A line with no pieces is one ``[SEP]`` piece.
- Batches hold ``batch_size`` lines of similar length (``epoch_batches``), in a seeded random
  order per epoch, padded to the longest; padding never reaches real pieces (masked keys) nor
  the pooled vector.
- MODEL is one embedkit store of kind ``encoder-classifier``: encoder parameters (``p.<name>``),
  ``head.w``/``head.b``, and in its meta the architecture, the tokenizer files, the labels and
  the settings. It is rewritten atomically after every epoch, so an interrupted run leaves the
  last finished epoch's model (or nothing).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..encoder import layers as L
from ..encoder.network import forward, param_shapes
from ..encoder.optim import AdamW
from ..encoder.pairs import pad_sequences
from ..encoder.threads import map_chunks, set_threads
from ..errors import InputError, OutputError, TrainingError, UsageError
from ..progress import bar
from ..store import read_store, write_store
from .data import LABEL_PREFIX, Reader, read_classes, read_single_label

KIND = "encoder-classifier"
POOLS = ("mean", "first")
PREDICT_BATCH = 64


# ---- the network: pooled encoder + linear head, forward and backward --------------------------

def loss_and_grads(params: dict, cfg: dict, ids: np.ndarray, keep: np.ndarray, y: np.ndarray,
                   pool: str = "mean", grads: bool = True):
    """Mean cross-entropy (nats) over the batch and {name: gradient} for every parameter
    (encoder + ``head.w``, ``head.b``; the unused MLM bias ``out_b`` gets none).

    ids/keep [B, T] (every row keeps at least one piece), y [B] label ids. The batch runs in
    chunks, one per thread, each a sum over its rows divided by B, added in chunk order.
    """
    b = ids.shape[0]

    def chunk(lo, hi):
        return _chunk(params, cfg, ids[lo:hi], keep[lo:hi], y[lo:hi], b, pool, grads)

    parts = map_chunks(chunk, b)
    loss, g, correct = parts[0]
    for part_loss, part_g, part_correct in parts[1:]:
        loss += part_loss
        correct += part_correct
        if grads:
            for name, value in part_g.items():
                g[name] += value
    return loss, g, correct


def pool_forward(h: np.ndarray, keep: np.ndarray, pool: str) -> np.ndarray:
    """[B, T, D] states -> [B, D]: mean over kept pieces, or the first piece's state."""
    if pool == "first":
        return h[:, 0].copy()
    n = keep.sum(axis=1, keepdims=True).astype(h.dtype)                   # [B, 1]
    return np.einsum("btd,bt->bd", h, keep.astype(h.dtype)) / n


def pool_backward(dpooled: np.ndarray, keep: np.ndarray, t: int, pool: str) -> np.ndarray:
    """[B, D] -> [B, T, D]: the pooled gradient spread back over the pieces it came from."""
    b, d = dpooled.shape
    if pool == "first":
        dh = np.zeros((b, t, d), dpooled.dtype)
        dh[:, 0] = dpooled
        return dh
    w = keep.astype(dpooled.dtype) / keep.sum(axis=1, keepdims=True)      # [B, T]
    return w[:, :, None] * dpooled[:, None, :]


def _chunk(params, cfg, ids, keep, y, total, pool, grads):
    h, caches = forward(params, cfg, ids, keep, cache=grads)              # [b, T, D]
    pooled = pool_forward(h, keep, pool)                                   # [b, D]
    logits = pooled @ params["head.w"] + params["head.b"]                  # [b, K]
    correct = int(np.sum(np.argmax(logits, axis=1) == y))
    loss, dlogits = L.softmax_xent(logits, y, total)
    if not grads:
        return loss, None, correct
    g = {"head.w": pooled.T @ dlogits, "head.b": dlogits.sum(axis=0)}
    dx = pool_backward(dlogits @ params["head.w"].T, keep, ids.shape[1], pool)
    for i in reversed(range(cfg["layers"])):
        dx, gi = L.block_backward(dx, caches[i], params, f"l{i}.", cfg["heads"])
        g.update(gi)
    g["wte"] = np.zeros_like(params["wte"])
    dpos = L.embed_backward(dx, ids, g["wte"])
    if cfg["positions"] == "learned":
        g["wpe"] = np.zeros_like(params["wpe"])
        g["wpe"][:ids.shape[1]] = dpos
    return loss, g, correct


def epoch_batches(lengths: np.ndarray, batch_size: int, rng, span: int = 50) -> list[np.ndarray]:
    """One epoch's batches of line indices: a seeded shuffle cut into runs of ``span`` batches,
    each run sorted by length and cut into batches, the batches then shuffled. Lines of a batch
    have similar lengths, so padding (wasted work) stays small while the order stays random."""
    order = rng.permutation(len(lengths))
    batches = []
    for lo in range(0, len(order), batch_size * span):
        run = order[lo:lo + batch_size * span]
        run = run[np.argsort(lengths[run], kind="stable")]
        batches += [run[i:i + batch_size] for i in range(0, len(run), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# ---- the predictor (``classify test/predict`` load it through classify.model) -----------------

class FinetunedClassifier:
    """A fine-tuned encoder with its head; satisfies the classify predictor protocol."""

    multilabel = False

    def __init__(self, params: dict, head_w: np.ndarray, head_b: np.ndarray, meta: dict,
                 tokenizer):
        from ..encoder.vocab import PieceVocab

        self.params = dict(params, **{"head.w": head_w, "head.b": head_b})
        self.meta = meta
        self.config = meta["config"]
        self.labels = list(meta["labels"])
        self.label_style = meta.get("label_style", "tsv")
        self.lowercase = bool(meta.get("lowercase", False))
        self.pool = meta.get("pool", "mean")
        self.tokenizer = tokenizer
        self.vocab = PieceVocab(tokenizer)

    def piece_ids(self, texts) -> tuple[list[list[int]], int]:
        """Encoder ids of each line (words joined by spaces), cut to max_len, never empty; and
        how many lines were cut."""
        lines = [" ".join(w.lower() for w in words) if self.lowercase else " ".join(words)
                 for words in texts]
        t = self.config["max_len"]
        seqs = self.vocab.encode_batch(lines)
        return [seq[:t] or [self.vocab.sep] for seq in seqs], sum(len(s) > t for s in seqs)

    def logits_of_ids(self, seqs: list[list[int]], batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """[n, K] logits, lines batched by length."""
        out = np.zeros((len(seqs), len(self.labels)), np.float32)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for lo in range(0, len(order), batch_size):
            rows = order[lo:lo + batch_size]
            ids, keep = pad_sequences([seqs[i] for i in rows], self.vocab.pad)
            h, _ = forward(self.params, self.config, ids, keep)
            out[rows] = pool_forward(h, keep, self.pool) @ self.params["head.w"] + self.params["head.b"]
        return out

    def predict_proba(self, texts) -> np.ndarray:
        """Per line (a list of words) the softmax probability of each label: float32 [n, K]."""
        z = self.logits_of_ids(self.piece_ids(texts)[0]).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

