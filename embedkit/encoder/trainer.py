"""The pretraining loop: corpus → piece streams → batches → loss and gradients → AdamW, with
checkpoints in ENCDIR, exact ``--resume``, a held-out evaluation and a summary.

Python owns the loop, the schedule and the RNG (one ``np.random.Generator`` draws every window
and every mask, and its state is checkpointed); NumPy/Numba do the numbers. A non-finite loss
stops training with an error and leaves the last good checkpoint in place.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, TrainingError, UsageError
from ..progress import bar
from . import checkpoint, data
from .network import ARCH_KEYS, check_config, init_params, loss_and_grads
from .objectives import clm_batch, mlm_batch
from .optim import AdamW
from .threads import set_threads
from .vocab import PieceVocab, tokenizer_fingerprint

DEFAULTS = dict(objective="mlm", layers=2, dim=128, heads=4, ffn=512, max_len=128,
                positions="sinusoidal")
TRAIN_DEFAULTS = dict(batch_size=32, lr=1e-3, warmup=200, seed=0, weight_decay=0.01, clip=1.0,
                      checkpoint_every=500)
EVAL_SEED = 1234


def make_batch(windows, vocab: PieceVocab, cfg: dict, rng):
    """[B, W] windows -> (inputs, keep, rows, targets) for the configured objective."""
    keep = np.ones(windows.shape, bool)
    if cfg["objective"] == "clm":
        inputs, rows, targets = clm_batch(windows, keep)
        return inputs, keep[:, :-1], rows, targets
    inputs, rows, targets = mlm_batch(windows, keep, rng, vocab.mask, vocab.is_regular)
    return inputs, keep, rows, targets


def evaluate(params, cfg, vocab, stream, batch_size: int) -> float | None:
    """Mean held-out cross-entropy (nats) per predicted piece, masks drawn from a fixed seed."""
    width = data.window_length(stream, cfg["max_len"], 1 if cfg["objective"] == "clm" else 0)
    if width < 2:
        return None
    windows = data.eval_windows(stream, width)
    rng = np.random.default_rng(EVAL_SEED)
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        inputs, keep, rows, targets = make_batch(windows[i:i + batch_size], vocab, cfg, rng)
        if rows.size == 0:
            continue
        loss, _ = loss_and_grads(params, cfg, inputs, keep, rows, targets, grads=False)
        total += loss * rows.size
        count += rows.size
    return total / count if count else None


def init_embeddings(params: dict, vocab: PieceVocab, model_path, quiet: bool) -> int:
    """Copy word vectors of the pieces into the piece embeddings; returns how many matched.

    Lookup per piece: its string as written by the tokenizer (``Ġcat``), then its text (`` cat``
    stripped). Matched rows are rescaled so their mean norm equals the random rows' (~1).
    """
    import embedkit

    vec = embedkit.load(model_path)
    d = params["wte"].shape[1]
    if vec.dim != d:
        raise UsageError(f"{model_path}: vectors have dimension {vec.dim}, the encoder --dim {d}")
    rows, vals = [], []
    for i in range(vocab.tokenizer.vocab_size):
        if not vocab.is_regular[i]:
            continue
        for key in (vocab.piece(i), vocab.decode([i]).strip()):
            if key and key in vec:
                rows.append(i)
                vals.append(np.asarray(vec[key], np.float64))
                break
    if rows:
        m = np.array(vals)
        norm = np.linalg.norm(m, axis=1).mean()
        if norm > 0:
            params["wte"][rows] = (m / norm).astype(np.float32)
    if not quiet:
        import sys

        print(f"embedkit: initialised {len(rows)} of {vocab.tokenizer.vocab_size} piece "
              f"embeddings from {model_path}", file=sys.stderr)
    return len(rows)


def _resolve(arch: dict, encdir: Path, resume: bool, tok_files: dict):
    """The run's architecture and state: fresh, or the checkpoint's (explicit options must agree)."""
    if not resume:
        cfg = {k: (DEFAULTS[k] if arch.get(k) is None else arch[k]) for k in DEFAULTS}
        return cfg, None
    meta, params, moments = checkpoint.load(encdir)
    saved = meta["config"]
    for k, v in arch.items():
        if v is not None and saved.get(k) != v:
            raise UsageError(f"{checkpoint.path_of(encdir)}: checkpoint was trained with "
                             f"--{k.replace('_', '-')} {saved.get(k)}, not {v}")
    if tokenizer_fingerprint(meta["tokenizer"]) != tokenizer_fingerprint(tok_files):
        raise UsageError(f"{checkpoint.path_of(encdir)}: the TOKDIR does not match the tokenizer "
                         f"this encoder was trained with")
    state = meta.get("train") or {}
    if "rng" not in state or not moments:
        raise InputError(checkpoint.path_of(encdir), "holds no training state to resume from")
    return {k: saved[k] for k in DEFAULTS}, (params, moments, state)


def train(paths, tokenizer, encdir, *, steps: int | None = None, epochs: float | None = None,
          threads: int | None = None, init_vectors=None, resume: bool = False,
          quiet: bool = True, callback=None, **options) -> dict:
    """Pretrain (or resume) an encoder on ``paths``; returns the summary dict.

    ``options``: architecture keys (``objective, layers, dim, heads, ffn, max_len, positions``;
    None = default, or the checkpoint's on resume) and ``batch_size, lr, warmup, seed,
    weight_decay, clip, checkpoint_every``. ``callback(step, loss)`` runs after each step.
    """
    unknown = set(options) - set(DEFAULTS) - set(TRAIN_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if steps is not None and epochs is not None:
        raise UsageError("give --steps or --epochs, not both")
    if epochs is not None and not epochs > 0:
        raise UsageError(f"--epochs must be > 0 (got {epochs})")
    arch = {k: options.get(k) for k in DEFAULTS}
    opts = {k: options.get(k) if options.get(k) is not None else v for k, v in TRAIN_DEFAULTS.items()}
    for k in ("batch_size", "checkpoint_every"):
        if opts[k] < 1:
            raise UsageError(f"--{k.replace('_', '-')} must be at least 1 (got {opts[k]})")
    if not opts["lr"] > 0 or opts["warmup"] < 0:
        raise UsageError("--lr must be > 0 and --warmup >= 0")
    set_threads(threads)
    encdir = Path(encdir)
    tok_files = tokenizer.to_files()
    vocab = PieceVocab(tokenizer)
    cfg, restored = _resolve(arch, encdir, resume, tok_files)
    cfg["vocab"] = vocab.size
    try:
        check_config(cfg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if restored and restored[0]["wte"].shape[0] != vocab.size:
        raise UsageError(f"{checkpoint.path_of(encdir)}: the TOKDIR does not match the encoder")
    created = not encdir.exists()
    if created:
        if not encdir.parent.is_dir():
            raise OutputError(f"{encdir}: folder {encdir.parent} does not exist")
        encdir.mkdir()
    elif not encdir.is_dir():
        raise OutputError(f"{encdir}: exists and is not a folder")
    work = Path(tempfile.mkdtemp(prefix=".pieces.", dir=encdir))
    try:
        streams = data.encode_corpus(list(paths), vocab, work, quiet)
        return _loop(streams, vocab, cfg, opts, encdir, tok_files, steps, epochs, restored,
                     init_vectors, quiet, callback)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(encdir.iterdir()):
            encdir.rmdir()  # a run that failed before its first checkpoint leaves no ENCDIR


def _loop(streams, vocab, cfg, opts, encdir, tok_files, steps, epochs, restored, init_vectors,
          quiet, callback) -> dict:
    extra = 1 if cfg["objective"] == "clm" else 0
    width = data.window_length(streams.train, cfg["max_len"], extra)
    tokens_per_step = opts["batch_size"] * (width - extra)
    if restored:
        params, moments, state = restored
        params = {k: np.array(v) for k, v in params.items()}
        total = steps if steps is not None else state["total_steps"]
        if epochs is not None:
            total = max(1, math.ceil(epochs * streams.train.size / tokens_per_step))
        start = int(state["step"])
        for k in ("batch_size", "lr", "warmup", "seed", "weight_decay", "clip"):
            opts[k] = state.get(k, opts[k])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
    else:
        if epochs is not None:
            total = max(1, math.ceil(epochs * streams.train.size / tokens_per_step))
        else:
            total = 1000 if steps is None else steps
        rng = np.random.default_rng(opts["seed"])
        params = init_params(cfg, rng)
        if init_vectors is not None:
            init_embeddings(params, vocab, init_vectors, quiet)
        start = 0
    if total < 1:
        raise UsageError(f"--steps must be at least 1 (got {total})")
    opt = AdamW(params, opts["lr"], opts["warmup"], total, weight_decay=opts["weight_decay"],
                clip=opts["clip"])
    if restored:
        opt.load_state(moments, start)

    def save(step, last_loss):
        state = {"step": step, "total_steps": total, "rng": rng.bit_generator.state,
                 "last_loss": last_loss, **{k: opts[k] for k in
                                            ("batch_size", "lr", "warmup", "seed", "weight_decay",
                                             "clip")}}
        checkpoint.save(encdir, cfg, params, tok_files, vocab.special, state, opt.state_arrays())

    loss = math.nan
    last_saved = start
    t0 = time.perf_counter()
    with bar(total - start, "training", "steps", quiet) as progress:
        for step in range(start + 1, total + 1):
            windows = data.random_windows(streams.train, rng, opts["batch_size"], width)
            inputs, keep, rows, targets = make_batch(windows, vocab, cfg, rng)
            loss, grads = loss_and_grads(params, cfg, inputs, keep, rows, targets)
            if not math.isfinite(loss):
                raise TrainingError(f"step {step}: the loss is {loss}; training stopped. "
                                    f"{_kept(encdir, last_saved)} Try a lower --lr.")
            norm, _ = opt.step(params, grads)
            if not math.isfinite(norm):
                raise TrainingError(f"step {step}: the gradient is not finite; training stopped. "
                                    f"{_kept(encdir, last_saved)} Try a lower --lr.")
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if step % opts["checkpoint_every"] == 0 and step < total:
                save(step, loss)
                last_saved = step
            if callback is not None:
                callback(step, loss)
    elapsed = time.perf_counter() - t0
    save(total, loss)
    n_run = total - start
    return {"steps": total, "steps_this_run": n_run, "objective": cfg["objective"],
            "tokens_per_s": n_run * tokens_per_step / elapsed if elapsed > 0 else 0.0,
            "train_loss": loss,
            "heldout_loss": evaluate(params, cfg, vocab, streams.heldout, opts["batch_size"]),
            "unigram_entropy": data.unigram_entropy(streams.counts, vocab.is_regular),
            "train_pieces": int(streams.train.size), "heldout_pieces": int(streams.heldout.size)}


def _kept(encdir: Path, step: int) -> str:
    if step > 0:
        return f"The last good checkpoint (step {step}) is kept in {encdir}."
    return "No checkpoint was written yet."
