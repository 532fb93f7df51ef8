"""The pretraining loop: corpus → piece streams → batches → loss and gradients → AdamW, with
checkpoints in ENCDIR, exact ``--resume``, a held-out evaluation and a summary.

Python owns the loop, the schedule and the RNG (one ``np.random.Generator`` draws every window,
every mask and every contrastive pair, and its state is checkpointed); NumPy/Numba do the
numbers. A non-finite loss stops training with an error and leaves the last good checkpoint in
place.
"""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, TrainingError, UsageError
from ..io import check_dir
from ..interrupts import check
from ..progress import bar, figure
from . import checkpoint, contrastive, data
from .network import ARCH_KEYS, check_config, init_params, loss_and_grads
from .pairs import PairSource, pad_pairs
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
    cfg = {k: saved[k] for k in DEFAULTS}
    cfg.update({k: saved[k] for k in contrastive.DEFAULTS if k in saved})
    return cfg, (params, moments, state)


def _pair_options(cfg: dict, given: dict, resumed: bool, encdir: Path) -> None:
    """Put the contrastive settings into ``cfg`` (they are part of the architecture record:
    fresh = given or default, resumed = the checkpoint's, which given ones must match)."""
    objective = cfg["objective"]
    for k, v in given.items():
        if v is None:
            continue
        if not contrastive.uses_pairs(objective) or (k == "contrastive_weight"
                                                       and objective != "mlm+contrastive"):
            need = ("mlm+contrastive" if k == "contrastive_weight"
                    else "contrastive or mlm+contrastive")
            raise UsageError(f"--{k.replace('_', '-')} needs --objective {need}")
        if resumed and cfg.get(k) != v:
            raise UsageError(f"{checkpoint.path_of(encdir)}: checkpoint was trained with "
                             f"--{k.replace('_', '-')} {cfg.get(k)}, not {v}")
    if contrastive.uses_pairs(objective) and not resumed:
        cfg.update({k: d if given.get(k) is None else given[k]
                    for k, d in contrastive.DEFAULTS.items()})


def train(paths, tokenizer, encdir, *, steps: int | None = None, epochs: float | None = None,
          threads: int | None = None, init_vectors=None, resume: bool = False,
          quiet: bool = True, callback=None, **options) -> dict:
    """Pretrain (or resume) an encoder on ``paths``; returns the summary dict.

    ``options``: architecture keys (``objective, layers, dim, heads, ffn, max_len, positions``;
    None = default, or the checkpoint's on resume), with a contrastive objective also
    ``pair, negatives, pool, projection, score, temperature, contrastive_weight``
    (``contrastive.DEFAULTS``), and ``batch_size, lr, warmup, seed, weight_decay, clip,
    checkpoint_every``. ``callback(step, loss)`` runs after each step.
    """
    unknown = set(options) - set(DEFAULTS) - set(TRAIN_DEFAULTS) - set(contrastive.DEFAULTS)
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
    if not 0 <= opts["seed"] < 2**63:
        raise UsageError(f"--seed must be between 0 and 2**63-1 (got {opts['seed']})")
    set_threads(threads)
    encdir = Path(encdir)
    tok_files = tokenizer.to_files()
    vocab = PieceVocab(tokenizer)
    cfg, restored = _resolve(arch, encdir, resume, tok_files)
    cfg["vocab"] = vocab.size
    _pair_options(cfg, {k: options.get(k) for k in contrastive.DEFAULTS}, restored is not None,
                  encdir)
    try:
        check_config(cfg)
        if contrastive.uses_pairs(cfg["objective"]):
            contrastive.check_options(cfg, opts["batch_size"])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if restored and restored[0]["wte"].shape[0] != vocab.size:
        raise UsageError(f"{checkpoint.path_of(encdir)}: the TOKDIR does not match the encoder")
    if restored and steps is not None and steps <= int(restored[2]["step"]):
        raise UsageError(_already(encdir, restored[2]["step"]))
    check_dir(encdir, checkpoint.FILE)  # never write into a folder of the user's own files
    created = not encdir.exists()
    if created:
        encdir.mkdir()
    work = Path(tempfile.mkdtemp(prefix=".pieces.", dir=encdir))
    try:
        streams = data.encode_corpus(list(paths), vocab, work, quiet)
        pairs = _pairs(streams, vocab, cfg, work, paths)
        return _loop(streams, vocab, cfg, opts, encdir, tok_files, steps, epochs, restored,
                     init_vectors, quiet, callback, pairs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(encdir.iterdir()):
            encdir.rmdir()  # a run that failed before its first checkpoint leaves no ENCDIR


def _pairs(streams, vocab, cfg, work: Path, paths) -> PairSource | None:
    """The pair source of a contrastive objective; a corpus that holds no pair is refused."""
    if not contrastive.uses_pairs(cfg["objective"]):
        return None
    pairs = PairSource(streams, vocab.sep, cfg["pair"], cfg["max_len"], work)
    if len(pairs) == 0:
        problem = ("no two neighbouring non-empty lines: --pair adjacent-lines needs at least two "
                   "lines" if cfg["pair"] == "adjacent-lines" else
                   "no line of 2 or more pieces to cut into a pair of windows")
        raise InputError(", ".join(map(str, paths)), problem)
    return pairs


def _epoch_steps(epochs: float, streams, pairs, cfg: dict, opts: dict, tokens_per_step: int) -> int:
    """--epochs as steps: passes over the training pairs (contrastive) or pieces (the others)."""
    if cfg["objective"] == "contrastive":
        return max(1, math.ceil(epochs * len(pairs) / opts["batch_size"]))
    return max(1, math.ceil(epochs * streams.train.size / tokens_per_step))


def _batch_loss(params, cfg, opts, streams, pairs, vocab, rng, width):
    """One training batch: (loss, gradients, pieces seen, L_CPC or None, top-1 or None)."""
    loss, grads, seen, cpc, top1 = 0.0, None, 0, None, None
    if cfg["objective"] != "contrastive":
        windows = data.random_windows(streams.train, rng, opts["batch_size"], width)
        inputs, keep, rows, targets = make_batch(windows, vocab, cfg, rng)
        loss, grads = loss_and_grads(params, cfg, inputs, keep, rows, targets)
        seen = keep.size
    if pairs is not None:
        ids, keep = pad_pairs(pairs.sample(rng, opts["batch_size"]), vocab.pad)
        cpc, g, top1 = contrastive.loss_and_grads(params, cfg, ids, keep)
        if grads is None:
            loss, grads = cpc, g
        else:  # mlm+contrastive: L_MLM + weight * L_CPC
            w = np.float32(cfg["contrastive_weight"])
            for name, value in g.items():
                grads[name] = grads[name] + w * value if name in grads else w * value
            loss += float(w) * cpc
        seen += int(keep.sum())
    return loss, grads, seen, cpc, top1


def _loop(streams, vocab, cfg, opts, encdir, tok_files, steps, epochs, restored, init_vectors,
          quiet, callback, pairs=None) -> dict:
    extra = 1 if cfg["objective"] == "clm" else 0
    width = data.window_length(streams.train, cfg["max_len"], extra)
    tokens_per_step = opts["batch_size"] * (width - extra)
    if restored:
        params, moments, state = restored
        params = {k: np.array(v) for k, v in params.items()}
        total = steps if steps is not None else state["total_steps"]
        if epochs is not None:
            total = _epoch_steps(epochs, streams, pairs, cfg, opts, tokens_per_step)
        start = int(state["step"])
        if total <= start:
            raise UsageError(_already(encdir, start))
        for k in ("batch_size", "lr", "warmup", "seed", "weight_decay", "clip"):
            opts[k] = state.get(k, opts[k])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
    else:
        if epochs is not None:
            total = _epoch_steps(epochs, streams, pairs, cfg, opts, tokens_per_step)
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
    seen = 0
    recent: list[tuple[float, float]] = []  # (L_CPC, top-1) of the last steps
    t0 = time.perf_counter()
    with bar(total - start, "training", "steps", quiet) as progress:
        for step in range(start + 1, total + 1):
            check()  # a Ctrl-C swallowed while a kernel loaded (interrupts)
            loss, grads, pieces, cpc, top1 = _batch_loss(params, cfg, opts, streams, pairs, vocab,
                                                         rng, width)
            seen += pieces
            if not math.isfinite(loss):
                raise TrainingError(f"step {step}: the loss is {loss}; training stopped. "
                                    f"{_kept(encdir, last_saved)} Try a lower --lr.")
            norm, _ = opt.step(params, grads)
            if not math.isfinite(norm):
                raise TrainingError(f"step {step}: the gradient is not finite; training stopped. "
                                    f"{_kept(encdir, last_saved)} Try a lower --lr.")
            progress.update(1)
            if cpc is None:
                progress.set_postfix(loss=figure(loss, ".3f"), refresh=False)
            else:
                recent = (recent + [(cpc, top1)])[-RECENT:]
                progress.set_postfix(loss=figure(loss, ".3f"), refresh=False,
                                     bound=figure(math.log(opts["batch_size"]) - cpc, ".3f"))
            if step % opts["checkpoint_every"] == 0 and step < total:
                save(step, loss)
                last_saved = step
                if pairs is not None and not quiet:
                    held = _heldout_cpc(params, cfg, pairs, vocab, opts["batch_size"])
                    progress.write(_cpc_log(step, opts["batch_size"], recent, held),
                                   file=sys.stderr)
            if callback is not None:
                callback(step, loss)
    elapsed = time.perf_counter() - t0
    save(total, loss)
    n_run = total - start
    summary = {"steps": total, "steps_this_run": n_run, "objective": cfg["objective"],
               "tokens_per_s": seen / elapsed if elapsed > 0 else 0.0,
               "train_loss": loss, "heldout_loss": None, "heldout_note": None,
               "unigram_entropy": data.unigram_entropy(streams.counts, vocab.is_regular),
               "train_pieces": int(streams.train.size), "heldout_pieces": int(streams.heldout.size)}
    if cfg["objective"] != "contrastive":
        summary["heldout_loss"] = evaluate(params, cfg, vocab, streams.heldout, opts["batch_size"])
        summary["heldout_note"] = _heldout_note(streams.heldout, cfg)
    if pairs is not None:
        if cfg["objective"] == "mlm+contrastive":
            summary["heldout_mlm_loss"] = summary["heldout_loss"]
        summary.update(_cpc_summary(params, cfg, pairs, vocab, opts["batch_size"], recent))
    return summary


RECENT = 50  # training steps the summary's training L_CPC averages over


def _heldout_cpc(params, cfg, pairs, vocab, n: int) -> dict | None:
    """Held-out L_CPC, bound and top-1 with the batch's N candidates (None: too few pairs)."""
    return contrastive.evaluate(params, cfg, pairs.heldout_pairs(), n, vocab.pad)


def _cpc_summary(params, cfg, pairs, vocab, n: int, recent) -> dict:
    """The contrastive figures: N, training and held-out L_CPC, the bound ln N - L_CPC, top-1."""
    held = _heldout_cpc(params, cfg, pairs, vocab, n)
    train_cpc = float(np.mean([c for c, _ in recent]))
    return {"n": n, "train_cpc": train_cpc, "train_mi_bound": math.log(n) - train_cpc,
            "train_top1": float(np.mean([t for _, t in recent])),
            "heldout_loss": held and held["loss"], "mi_bound": held and held["mi_bound"],
            "heldout_top1": held and held["top1"], "heldout_pairs": held and held["pairs"],
            "heldout_note": None if held else f"fewer than N = {n} held-out pairs (every 20th "
                                              f"line with the line before it)"}


def _cpc_log(step: int, n: int, recent, held: dict | None) -> str:
    """One log line (stderr) at a checkpoint: training figures over the last steps, held-out."""
    c = float(np.mean([c for c, _ in recent]))
    line = (f"step {step}: N {n}; train L_CPC {c:.4f}, ln N - L_CPC {math.log(n) - c:.4f} nats "
            f"(mean of the last {len(recent)} steps)")
    if held:
        line += (f"; held-out L_CPC {held['loss']:.4f}, ln N - L_CPC {held['mi_bound']:.4f} nats, "
                 f"top-1 {held['top1']:.3f}")
    return line


def _already(encdir: Path, step) -> str:
    return (f"{checkpoint.path_of(encdir)}: checkpoint is already at step {int(step)}; "
            f"give --steps (or --epochs) beyond it to train further")


def _heldout_note(stream, cfg: dict) -> str | None:
    """Why there is no held-out loss, when there is none (``evaluate`` returns None)."""
    if stream.size == 0:
        return "corpus has fewer than 20 lines"
    if data.window_length(stream, cfg["max_len"], 1 if cfg["objective"] == "clm" else 0) < 2:
        return f"--max-len {cfg['max_len']} leaves no piece to predict from context"
    return "no held-out piece to predict"


def _kept(encdir: Path, step: int) -> str:
    if step > 0:
        return f"The last good checkpoint (step {step}) is kept in {encdir}."
    return "No checkpoint was written yet."
