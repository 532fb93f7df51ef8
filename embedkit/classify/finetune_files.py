"""What fine-tuning writes: MODEL (kind ``encoder-classifier``) and its checkpoint MODEL.ckpt,
and the checks that every field of either is what the other code relies on."""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from ..encoder.network import param_shapes
from ..errors import InputError, UsageError
from ..store import read_store

KIND = "encoder-classifier"
POOLS = ("mean", "first")


def checked_shapes(name: str, meta: dict, arrays: dict, what: str) -> dict:
    """{array name: shape} of MODEL (every one present, float32, finite), from its meta."""
    cfg = meta.get("config")
    labels = meta.get("labels")
    if not isinstance(cfg, dict) or not isinstance(labels, list) or len(labels) < 2 \
            or "tokenizer" not in meta:
        raise InputError(name, f"corrupt {what}: missing configuration or labels")
    try:
        shapes = param_shapes(cfg)
    except (KeyError, TypeError):
        raise InputError(name, f"corrupt {what}: bad architecture") from None
    shapes = {"p." + k: v for k, v in shapes.items()}
    shapes.update({"head.w": (cfg["dim"], len(labels)), "head.b": (len(labels),)})
    for key, shape in shapes.items():
        a = arrays.get(key)
        if a is None or a.shape != tuple(shape) or a.dtype != np.float32:
            raise InputError(name, f"corrupt {what}: array {key!r} missing or of the wrong shape")
        if not np.isfinite(a).all():
            raise InputError(name, f"corrupt {what}: array {key!r} holds NaN or inf")
    if meta.get("pool", "mean") not in POOLS:
        raise InputError(name, f"corrupt {what}: unknown pool {meta.get('pool')!r}")
    return shapes


# ---- checkpoints: the whole training state, beside MODEL ----------------------------------------
#
# MODEL.ckpt, not MODEL itself: MODEL stays a lean predictor holding finished epochs only (what
# `classify` loads), while the checkpoint adds the AdamW moments (twice the parameters), the RNG
# and the position in the epoch. It is written every ``checkpoint_every`` steps and at the end of
# every epoch, and kept when the run ends, so a later ``--resume --epochs N`` can go further.

CHECKPOINT_KIND = "encoder-classifier-checkpoint"
MUST_MATCH = ("lr", "pool", "batch_size", "warmup", "weight_decay", "clip", "label_prefix",
              "lowercase", "seed")  # a resumed run must keep these; --epochs may change
_STATE_INTS = ("step", "total_steps", "epoch", "batches_done", "correct")


def _count(low: int):
    return lambda v: type(v) is int and v >= low


def _number(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v) and v >= 0


_SETTING_OK = dict(epochs=_count(1), lr=lambda v: _number(v) and v > 0, batch_size=_count(1),
                   warmup=_count(0), weight_decay=_number, clip=_number, seed=_count(0),
                   pool=lambda v: v in POOLS, label_prefix=lambda v: isinstance(v, str),
                   lowercase=lambda v: isinstance(v, bool))


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where the run writing MODEL ``output`` keeps its checkpoint: ``MODEL.ckpt``."""
    return Path(os.fspath(output) + ".ckpt")


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """-> (meta, arrays) of a checkpoint: MODEL's meta and arrays plus the moments ``m.<name>``,
    ``v.<name>`` of every trained array and ``meta["train"]``, every field checked."""
    name = os.fspath(path)
    what = "fine-tuning checkpoint"
    meta, arrays = read_store(name, CHECKPOINT_KIND, mmap=False)
    shapes = checked_shapes(name, meta, arrays, what)
    for key, shape in shapes.items():
        if key == "p.out_b":
            continue
        for m in ("m.", "v."):
            mk = m + key.removeprefix("p.")
            a = arrays.get(mk)
            if a is None or a.shape != tuple(shape) or a.dtype != np.float32:
                raise InputError(name, f"corrupt {what}: optimizer moment {mk!r} missing or of "
                                       f"the wrong shape")
    state = meta.get("train")
    history = meta.get("finetune", {}).get("history") if isinstance(meta.get("finetune"), dict) \
        else None
    if not isinstance(state, dict) or not isinstance(history, list):
        raise InputError(name, f"corrupt {what}: no training state")
    if any(type(state.get(k)) is not int or state[k] < 0 for k in _STATE_INTS) \
            or not 1 <= state["epoch"] or not state["step"] <= state["total_steps"]:
        raise InputError(name, f"corrupt {what}: step, epoch or counts are not valid")
    settings = state.get("settings")
    if not isinstance(settings, dict) or not all(_SETTING_OK[k](settings.get(k))
                                                 for k in _SETTING_OK) \
            or type(state.get("loss_sum")) not in (int, float) \
            or not all(isinstance(state.get(k), str) for k in ("source_sha256", "train_sha256")):
        raise InputError(name, f"corrupt {what}: settings or digests missing or not valid")
    try:
        np.random.default_rng().bit_generator.state = state.get("rng")
    except (TypeError, ValueError, KeyError):
        raise InputError(name, f"corrupt {what}: bad RNG state") from None
    return meta, arrays


def _digest(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def source_digest(cfg: dict, tokenizer_files: dict, params: dict) -> str:
    """What fine-tuning starts from: the encoder's architecture, tokenizer and parameters."""
    return _digest(json.dumps(cfg, sort_keys=True).encode(),
                   json.dumps(tokenizer_files, sort_keys=True).encode(),
                   *(k.encode() + params[k].tobytes() for k in sorted(params)))


def lines_digest(seqs: list[list[int]], y: np.ndarray) -> str:
    """What training sees of TRAIN: every line's pieces and label, in file order."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    return _digest(lengths.tobytes(), np.array([i for s in seqs for i in s], np.int64).tobytes(),
                   y.astype(np.int64).tobytes())


def _option(k: str, v) -> str:
    if isinstance(v, bool):
        return ("with --" if v else "without --") + k.replace("_", "-")
    return f"with --{k.replace('_', '-')} {v}"


def restore(ckpt: Path, given: dict) -> tuple[dict, dict, dict]:
    """The checkpoint to resume from, after checking that the given settings are its own."""
    if not ckpt.exists():
        raise InputError(ckpt, "no checkpoint to resume from (a run of `encoder finetune` writes "
                               "MODEL.ckpt beside MODEL)")
    meta, arrays = load_checkpoint(ckpt)
    saved = meta["train"]["settings"]
    for k in MUST_MATCH:
        if given[k] is not None and given[k] != saved[k]:
            raise UsageError(f"{ckpt}: checkpoint was fine-tuned {_option(k, saved[k])}, "
                             f"not {_option(k, given[k])}")
    return meta, arrays, meta["train"]


def already(ckpt: Path, step: int) -> str:
    return (f"{ckpt}: checkpoint is already at step {step}; give --epochs beyond it to train "
            f"further")
