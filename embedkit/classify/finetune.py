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

    def save(self, path: str | os.PathLike) -> None:
        arrays = {"p." + k: v for k, v in self.params.items() if not k.startswith("head.")}
        arrays["head.w"] = self.params["head.w"]
        arrays["head.b"] = self.params["head.b"]
        write_store(path, KIND, self.meta, arrays)


def load(path: str | os.PathLike) -> FinetunedClassifier:
    """Open a MODEL written by ``encoder finetune``; checks every array against the meta."""
    from ..bpe.model import BPETokenizer

    name = os.fspath(path)
    meta, arrays = read_store(name, KIND, mmap=False)
    cfg = meta.get("config")
    labels = meta.get("labels")
    if not isinstance(cfg, dict) or not isinstance(labels, list) or len(labels) < 2 \
            or "tokenizer" not in meta:
        raise InputError(name, "corrupt fine-tuned model: missing configuration or labels")
    try:
        shapes = param_shapes(cfg)
    except (KeyError, TypeError):
        raise InputError(name, "corrupt fine-tuned model: bad architecture") from None
    shapes = {"p." + k: v for k, v in shapes.items()}
    shapes.update({"head.w": (cfg["dim"], len(labels)), "head.b": (len(labels),)})
    for key, shape in shapes.items():
        a = arrays.get(key)
        if a is None or a.shape != tuple(shape) or a.dtype != np.float32:
            raise InputError(name, f"corrupt fine-tuned model: array {key!r} missing or of the "
                                   f"wrong shape")
        if not np.isfinite(a).all():
            raise InputError(name, f"corrupt fine-tuned model: array {key!r} holds NaN or inf")
    if meta.get("pool", "mean") not in POOLS:
        raise InputError(name, f"corrupt fine-tuned model: unknown pool {meta.get('pool')!r}")
    tok = BPETokenizer.from_files(meta["tokenizer"], name)
    params = {k[2:]: arrays[k] for k in shapes if k.startswith("p.")}
    model = FinetunedClassifier(params, arrays["head.w"], arrays["head.b"], meta, tok)
    if model.vocab.size != cfg["vocab"]:
        raise InputError(name, "corrupt fine-tuned model: the tokenizer does not match the encoder")
    return model


# ---- training -----------------------------------------------------------------------------------

def finetune(encdir, train, output, *, valid=None, epochs: int = 3, lr: float = 5e-5,
             pool: str = "mean", batch_size: int = 32, warmup: int | None = None,
             weight_decay: float = 0.01, clip: float = 1.0, label_prefix: str = LABEL_PREFIX,
             lowercase: bool = False, threads: int | None = None, seed: int = 0,
             quiet: bool = True, on_epoch=None) -> dict:
    """Fine-tune the encoder in ``encdir`` on the labelled lines of ``train``; write MODEL to
    ``output`` (after every epoch) and return a summary dict.

    ``warmup`` is in steps (default: a tenth of all steps). With ``valid``, the validation
    accuracy is measured after every epoch; ``on_epoch(summary_of_epoch)`` is called then.
    """
    from ..encoder.model import Encoder
    from .metrics import Scorer

    if pool not in POOLS:
        raise UsageError(f"--pool must be one of {', '.join(POOLS)} (got {pool!r})")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise UsageError(f"--epochs must be a whole number >= 1 (got {epochs})")
    if not lr > 0 or not math.isfinite(lr):
        raise UsageError(f"--lr must be > 0 (got {lr})")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {batch_size})")
    if warmup is not None and warmup < 0:
        raise UsageError(f"--warmup must be >= 0 (got {warmup})")
    out = Path(output)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder, expected a file name for MODEL")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    set_threads(threads)
    enc = Encoder.load(encdir)
    reader = Reader(label_prefix, lowercase)
    texts, gold, labels = read_classes(train, reader, "a classifier")
    valid_data = None
    if valid is not None:
        valid_reader = Reader(label_prefix, lowercase)
        valid_data = read_single_label(valid, valid_reader) + (valid_reader,)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[g] for g in gold], np.int64)

    rng = np.random.default_rng(seed)
    cfg = dict(enc.config)
    d = cfg["dim"]
    params = {k: np.array(v, np.float32) for k, v in enc.params.items()}
    params["head.w"] = (rng.standard_normal((d, len(labels))) * 0.02).astype(np.float32)
    params["head.b"] = np.zeros(len(labels), np.float32)
    meta = {"config": cfg, "special": enc.vocab.special, "tokenizer": enc.tokenizer.to_files(),
            "labels": labels, "label_style": reader.styles.get(os.fspath(train), "tsv"),
            "label_prefix": label_prefix, "lowercase": lowercase, "pool": pool,
            "finetune": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                         "weight_decay": weight_decay, "clip": clip, "source": os.fspath(encdir)}}
    model = FinetunedClassifier(params, params["head.w"], params["head.b"], meta, enc.tokenizer)
    params = model.params  # one dict: the model predicts with what the optimizer updates
    seqs, n_cut = model.piece_ids(texts)
    lengths = np.array([len(sq) for sq in seqs])
    total = epochs * math.ceil(len(y) / batch_size)  # what epoch_batches gives per epoch
    warm = max(0, total // 10) if warmup is None else warmup
    meta["finetune"]["warmup"] = warm
    trainable = {k: v for k, v in params.items() if k != "out_b"}
    opt = AdamW(trainable, lr, warm, total, weight_decay=weight_decay, clip=clip)
    history = []
    step = 0
    with bar(total, "fine-tuning", "steps", quiet) as progress:
        for epoch in range(1, epochs + 1):
            loss_sum, correct = 0.0, 0
            for rows in epoch_batches(lengths, batch_size, rng):
                ids, keep = pad_sequences([seqs[i] for i in rows], model.vocab.pad)
                step += 1
                loss, grads, c = loss_and_grads(params, cfg, ids, keep, y[rows], pool)
                if not math.isfinite(loss):
                    raise TrainingError(f"step {step}: the loss is {loss}; fine-tuning stopped. "
                                        f"{_kept(output, epoch)} Try a lower --lr.")
                grads.pop("out_b", None)
                norm, _ = opt.step(trainable, grads)
                if not math.isfinite(norm):
                    raise TrainingError(f"step {step}: the gradient is not finite; fine-tuning "
                                        f"stopped. {_kept(output, epoch)} Try a lower --lr.")
                loss_sum += loss * len(rows)
                correct += c
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
            record = {"epoch": epoch, "train_loss": loss_sum / len(y),
                      "train_accuracy": correct / len(y), "valid_accuracy": None}
            if valid_data is not None:
                v_texts, v_gold, _ = valid_data
                scorer = Scorer(labels)
                scorer.add([(g,) for g in v_gold], model.predict_proba(v_texts))
                record["valid_accuracy"] = scorer.result()["accuracy"]
            history.append(record)
            meta["finetune"]["history"] = history
            model.save(output)
            if on_epoch is not None:
                on_epoch(record)
    warnings = []
    msg = reader.skipped_message()
    if msg:
        warnings.append(msg)
    if valid_data is not None:
        v_texts, v_gold, v_reader = valid_data
        if v_reader.skipped_message():
            warnings.append(v_reader.skipped_message())
        unseen = sum(g not in index for g in v_gold)
        if unseen:
            warnings.append(f"{valid}: {unseen} line(s) with labels never seen in training: "
                            f"counted as wrong")
    return {"model": os.fspath(output), "labels": labels, "n_train": len(y),
            "n_valid": None if valid_data is None else len(valid_data[1]), "epochs": epochs,
            "steps": total, "warmup": warm, "lr": lr, "pool": pool, "max_len": cfg["max_len"],
            "lines_truncated": n_cut, "history": history,
            "valid_accuracy": history[-1]["valid_accuracy"], "warnings": warnings}


def _kept(output, epoch: int) -> str:
    if epoch > 1:
        return f"The model of epoch {epoch - 1} is kept in {output}."
    return "No model was written."
