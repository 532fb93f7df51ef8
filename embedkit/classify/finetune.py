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
- MODEL.ckpt (kind ``encoder-classifier-checkpoint``) is MODEL plus the AdamW moments and the
  loop's position (step, epoch, batches done, the RNG state the epoch's order was drawn from),
  rewritten atomically every ``checkpoint_every`` steps and after every epoch; ``resume``
  continues from it, bit-exactly with one thread.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..encoder import layers as L
from ..encoder.network import forward
from ..encoder.optim import AdamW
from ..encoder.pairs import pad_sequences
from ..encoder.threads import map_chunks, set_threads
from ..errors import InputError, OutputError, TrainingError, UsageError
from ..progress import bar
from ..store import read_store, write_store
from .data import LABEL_PREFIX, Reader, read_classes, read_single_label
from .finetune_files import (CHECKPOINT_KIND, KIND, MUST_MATCH, POOLS, already, checked_shapes,
                             checkpoint_path, lines_digest, restore, source_digest)

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
        from .logreg import probabilities

        z = self.logits_of_ids(self.piece_ids(texts)[0]).astype(np.float64)
        return probabilities(z, False).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """The store arrays of MODEL: encoder parameters as ``p.<name>``, then the head."""
        out = {"p." + k: v for k, v in self.params.items() if not k.startswith("head.")}
        out["head.w"] = self.params["head.w"]
        out["head.b"] = self.params["head.b"]
        return out

    def save(self, path: str | os.PathLike) -> None:
        write_store(path, KIND, self.meta, self.arrays())


def load(path: str | os.PathLike) -> FinetunedClassifier:
    """Open a MODEL written by ``encoder finetune``; checks every array against the meta."""
    from ..bpe.model import BPETokenizer

    name = os.fspath(path)
    meta, arrays = read_store(name, KIND, mmap=False)
    shapes = checked_shapes(name, meta, arrays, "fine-tuned model")
    tok = BPETokenizer.from_files(meta["tokenizer"], name)
    params = {k[2:]: arrays[k] for k in shapes if k.startswith("p.")}
    model = FinetunedClassifier(params, arrays["head.w"], arrays["head.b"], meta, tok)
    if model.vocab.size != meta["config"]["vocab"]:
        raise InputError(name, "corrupt fine-tuned model: the tokenizer does not match the encoder")
    return model


CHECKPOINT_EVERY = 500
DEFAULTS = dict(epochs=3, lr=5e-5, pool="mean", batch_size=32, warmup=None, weight_decay=0.01,
                clip=1.0, label_prefix=LABEL_PREFIX, lowercase=False, seed=0)
# ---- training -----------------------------------------------------------------------------------

def finetune(encdir, train, output, *, valid=None, epochs: int | None = None,
             lr: float | None = None, pool: str | None = None, batch_size: int | None = None,
             warmup: int | None = None, weight_decay: float | None = None,
             clip: float | None = None, label_prefix: str | None = None,
             lowercase: bool | None = None, seed: int | None = None, threads: int | None = None,
             resume: bool = False, checkpoint_every: int | None = None, quiet: bool = True,
             on_epoch=None) -> dict:
    """Fine-tune the encoder in ``encdir`` on the labelled lines of ``train``; write MODEL to
    ``output`` (after every epoch) and its checkpoint to ``checkpoint_path(output)``; return a
    summary dict.

    Settings left None take ``DEFAULTS``, or with ``resume`` the checkpoint's (given ones must
    equal them, except ``epochs``: a new total of steps, above the checkpoint's step).
    ``warmup`` is in steps (default: a tenth of all steps). ``checkpoint_every`` steps (default
    500) and at every epoch's end the checkpoint is rewritten. With ``valid``, the validation
    accuracy is measured after every epoch; ``on_epoch(summary_of_epoch)`` is called then.
    """
    from ..encoder.model import Encoder

    given = dict(epochs=epochs, lr=lr, pool=pool, batch_size=batch_size, warmup=warmup,
                 weight_decay=weight_decay, clip=clip, label_prefix=label_prefix,
                 lowercase=lowercase, seed=seed)
    _check_options(given, checkpoint_every)
    out = Path(output)
    ckpt = checkpoint_path(out)
    for p in (out, ckpt):
        if p.is_dir():
            raise OutputError(f"{p}: is a folder, expected a file name for MODEL")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    restored = restore(ckpt, given) if resume else None
    base = restored[2]["settings"] if restored else DEFAULTS
    s = {k: base[k] if v is None else v for k, v in given.items()}
    set_threads(threads)
    enc = Encoder.load(encdir)
    reader = Reader(s["label_prefix"], s["lowercase"])
    texts, gold, labels = read_classes(train, reader, "a classifier")
    valid_data = None
    if valid is not None:
        valid_reader = Reader(s["label_prefix"], s["lowercase"])
        valid_data = read_single_label(valid, valid_reader) + (valid_reader,)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[g] for g in gold], np.int64)

    cfg = dict(enc.config)
    tok_files = enc.tokenizer.to_files()
    params = {k: np.array(v, np.float32) for k, v in enc.params.items()}
    source = source_digest(cfg, tok_files, params)
    rng = np.random.default_rng(s["seed"])
    history = []
    if restored:
        c_meta, arrays, state = restored
        if c_meta["labels"] != labels:
            raise UsageError(f"{ckpt}: checkpoint was fine-tuned on the labels "
                             f"{', '.join(c_meta['labels'])}; {train} has {', '.join(labels)}")
        if state["source_sha256"] != source:
            raise UsageError(f"{ckpt}: the encoder in {encdir} is not the one this checkpoint "
                             f"was fine-tuned from")
        params = {k: np.array(arrays["p." + k]) for k in params}
        head_w, head_b = np.array(arrays["head.w"]), np.array(arrays["head.b"])
        history = c_meta["finetune"]["history"]
    else:
        head_w = (rng.standard_normal((cfg["dim"], len(labels))) * 0.02).astype(np.float32)
        head_b = np.zeros(len(labels), np.float32)
    meta = {"config": cfg, "special": enc.vocab.special, "tokenizer": tok_files,
            "labels": labels, "label_style": reader.styles.get(os.fspath(train), "tsv"),
            "label_prefix": s["label_prefix"], "lowercase": s["lowercase"], "pool": s["pool"],
            "finetune": {k: s[k] for k in ("epochs", "lr", "batch_size", "seed", "weight_decay",
                                           "clip")}}
    meta["finetune"]["source"] = os.fspath(encdir)
    model = FinetunedClassifier(params, head_w, head_b, meta, enc.tokenizer)
    seqs, n_cut = model.piece_ids(texts)
    lines = lines_digest(seqs, y)
    if restored and state["train_sha256"] != lines:
        raise UsageError(f"{ckpt}: {train} holds other lines than the TRAIN this checkpoint was "
                         f"fine-tuned on")
    total = s["epochs"] * math.ceil(len(y) / s["batch_size"])  # epoch_batches' count per epoch
    if restored and total <= state["step"]:
        raise UsageError(already(ckpt, state["step"]))
    s["warmup"] = max(0, total // 10) if s["warmup"] is None else s["warmup"]
    meta["finetune"]["warmup"] = s["warmup"]
    meta["finetune"]["history"] = history
    run = _Run(model, s, total, ckpt, {"source_sha256": source, "train_sha256": lines})
    if restored:
        run.resume_from(arrays, state, rng)
    run.train(seqs, y, rng, checkpoint_every or CHECKPOINT_EVERY, output, quiet, valid_data,
              on_epoch)
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
    return {"model": os.fspath(output), "checkpoint": os.fspath(ckpt), "labels": labels,
            "n_train": len(y), "n_valid": None if valid_data is None else len(valid_data[1]),
            "epochs": s["epochs"], "steps": total, "steps_this_run": total - run.start,
            "warmup": s["warmup"], "lr": s["lr"], "pool": s["pool"], "max_len": cfg["max_len"],
            "lines_truncated": n_cut, "history": history,
            "valid_accuracy": history[-1]["valid_accuracy"], "warnings": warnings}


def _check_options(given: dict, checkpoint_every) -> None:
    """Refuse bad values among the given settings (None: not given)."""
    g = given
    if g["pool"] is not None and g["pool"] not in POOLS:
        raise UsageError(f"--pool must be one of {', '.join(POOLS)} (got {g['pool']!r})")
    if g["epochs"] is not None and not (isinstance(g["epochs"], int) and g["epochs"] >= 1):
        raise UsageError(f"--epochs must be a whole number >= 1 (got {g['epochs']})")
    if g["lr"] is not None and (not g["lr"] > 0 or not math.isfinite(g["lr"])):
        raise UsageError(f"--lr must be > 0 (got {g['lr']})")
    if g["batch_size"] is not None and g["batch_size"] < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {g['batch_size']})")
    if g["warmup"] is not None and g["warmup"] < 0:
        raise UsageError(f"--warmup must be >= 0 (got {g['warmup']})")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be at least 1 (got {checkpoint_every})")


class _Run:
    """The optimisation loop of one run, and the checkpoint it writes: where it is (step, epoch,
    batches done in it, the RNG state at the epoch's start, from which its batch order is drawn
    again) and the epoch's running loss and accuracy, so a resumed run goes on bit-exactly."""

    def __init__(self, model: FinetunedClassifier, s: dict, total: int, ckpt: Path,
                 digests: dict):
        self.model, self.s, self.total, self.ckpt, self.digests = model, s, total, ckpt, digests
        self.params = model.params  # one dict: the model predicts with what the optimizer updates
        self.trainable = {k: v for k, v in self.params.items() if k != "out_b"}
        self.opt = AdamW(self.trainable, s["lr"], s["warmup"], total,
                         weight_decay=s["weight_decay"], clip=s["clip"])
        self.start = self.saved = 0
        self.epoch, self.done, self.loss_sum, self.correct = 1, 0, 0.0, 0

    def resume_from(self, arrays: dict, state: dict, rng) -> None:
        """Continue at the checkpoint's step; a new total re-draws the linear decay over it."""
        self.start = self.saved = state["step"]
        self.opt.load_state(arrays, state["step"])
        self.epoch, self.done = state["epoch"], state["batches_done"]
        self.loss_sum, self.correct = state["loss_sum"], state["correct"]
        rng.bit_generator.state = state["rng"]

    def save_checkpoint(self, step: int, epoch: int, done: int, epoch_rng: dict, loss_sum: float,
                        correct: int) -> None:
        state = {"step": step, "total_steps": self.total, "epoch": epoch, "batches_done": done,
                 "rng": epoch_rng, "loss_sum": float(loss_sum), "correct": int(correct),
                 "settings": {k: self.s[k] for k in MUST_MATCH + ("epochs",)}, **self.digests}
        arrays = self.model.arrays()
        arrays.update(self.opt.state_arrays())
        write_store(self.ckpt, CHECKPOINT_KIND, dict(self.model.meta, train=state), arrays)
        self.saved = step

    def train(self, seqs, y, rng, every: int, output, quiet: bool, valid_data, on_epoch) -> None:
        from .metrics import Scorer

        model, params, s = self.model, self.params, self.s
        history = model.meta["finetune"]["history"]
        lengths = np.array([len(sq) for sq in seqs])
        step, skip, loss_sum, correct = self.start, self.done, self.loss_sum, self.correct
        with bar(self.total - self.start, "fine-tuning", "steps", quiet) as progress:
            for epoch in range(self.epoch, s["epochs"] + 1):
                epoch_rng = rng.bit_generator.state
                batches = epoch_batches(lengths, s["batch_size"], rng)
                for done, rows in enumerate(batches[skip:], skip + 1):
                    ids, keep = pad_sequences([seqs[i] for i in rows], model.vocab.pad)
                    step += 1
                    loss, grads, c = loss_and_grads(params, model.config, ids, keep, y[rows],
                                                    s["pool"])
                    if not math.isfinite(loss):
                        raise TrainingError(f"step {step}: the loss is {loss}; fine-tuning "
                                            f"stopped. {self._kept(output, epoch)} Try a lower "
                                            f"--lr.")
                    grads.pop("out_b", None)
                    norm, _ = self.opt.step(self.trainable, grads)
                    if not math.isfinite(norm):
                        raise TrainingError(f"step {step}: the gradient is not finite; "
                                            f"fine-tuning stopped. {self._kept(output, epoch)} "
                                            f"Try a lower --lr.")
                    loss_sum += loss * len(rows)
                    correct += c
                    progress.update(1)
                    progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
                    if step % every == 0 and done < len(batches):
                        self.save_checkpoint(step, epoch, done, epoch_rng, loss_sum, correct)
                skip = 0
                record = {"epoch": epoch, "train_loss": loss_sum / len(y),
                          "train_accuracy": correct / len(y), "valid_accuracy": None}
                if valid_data is not None:
                    v_texts, v_gold, _ = valid_data
                    scorer = Scorer(model.labels)
                    scorer.add([(g,) for g in v_gold], model.predict_proba(v_texts))
                    record["valid_accuracy"] = scorer.result()["accuracy"]
                history.append(record)
                model.save(output)
                loss_sum, correct = 0.0, 0
                self.save_checkpoint(step, epoch + 1, 0, rng.bit_generator.state, 0.0, 0)
                if on_epoch is not None:
                    on_epoch(record)

    def _kept(self, output, epoch: int) -> str:
        """What an error leaves behind, for its message."""
        if self.saved == 0:
            return "No model was written."
        kept = f"The model of epoch {epoch - 1} is kept in {output}; the" if epoch > 1 else "The"
        return f"{kept} checkpoint of step {self.saved} in {self.ckpt} (--resume goes on from it)."
