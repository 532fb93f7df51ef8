"""ENCDIR/encoder.ekm: one embedkit store holding the parameters (``p.<name>``), the AdamW
moments (``m.<name>``, ``v.<name>``) and, in its JSON meta, the architecture, the embedded
tokenizer files, the special ids and the training state (step, schedule, RNG state).

One file written atomically, so a checkpoint is always complete and consistent; the moments and
the RNG state are what make ``--resume`` continue bit-exactly.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..store import read_store, write_store
from .network import ARCH_KEYS, check_config, param_shapes

KIND = "embedkit-encoder"
FILE = "encoder.ekm"


def path_of(encdir: str | os.PathLike) -> Path:
    return Path(encdir) / FILE


def save(encdir, cfg: dict, params: dict, tokenizer_files: dict, special: dict,
         train_state: dict | None = None, moments: dict | None = None) -> None:
    arrays = {"p." + k: v for k, v in params.items()}
    if moments:
        arrays.update(moments)
    meta = {"config": cfg, "special": special, "tokenizer": tokenizer_files,
            "train": train_state or {}}
    write_store(path_of(encdir), KIND, meta, arrays)


_INT_KEYS = ("vocab", "dim", "heads", "layers", "ffn", "max_len")
_MAX_SIZE = 1 << 24  # far past any model a NumPy encoder trains; stops absurd shape arithmetic


def load(encdir) -> tuple[dict, dict, dict]:
    """-> (meta, params, moments), every meta field checked, arrays against the architecture."""
    d = Path(encdir)
    if not d.exists():
        raise InputError(d, "no such folder")
    if not d.is_dir():
        raise InputError(d, "is a file, expected an encoder folder (ENCDIR)")
    p = path_of(d)
    if not p.exists():
        raise InputError(d, f"no {FILE} in this folder: not an encoder folder")
    meta, arrays = read_store(p, KIND, mmap=False)
    cfg = _check_meta(p, meta, arrays)
    params, moments = {}, {}
    for name, shape in param_shapes(cfg).items():
        a = arrays.get("p." + name)
        if a is None or a.shape != shape or a.dtype != np.float32:
            raise InputError(p, f"corrupt encoder file: parameter {name!r} missing or of the wrong shape")
        if not np.isfinite(a).all():
            raise InputError(p, f"corrupt encoder file: parameter {name!r} holds NaN or inf")
        params[name] = a
        for m in ("m.", "v."):
            if m + name in arrays:
                if arrays[m + name].shape != shape or arrays[m + name].dtype != np.float32:
                    raise InputError(p, f"corrupt encoder file: optimizer moment {m + name!r} "
                                        f"is not float32 {list(shape)}")
                moments[m + name] = arrays[m + name]
    return meta, params, moments


def _check_meta(p: Path, meta: dict, arrays: dict) -> dict:
    """The architecture, tokenizer files, special ids and training state, field by field."""
    def bad(field: str, problem: str) -> InputError:
        return InputError(p, f"corrupt encoder file: {field} {problem}")

    cfg = meta.get("config")
    if not isinstance(cfg, dict) or any(k not in cfg for k in ARCH_KEYS):
        raise bad("meta 'config'", "is missing or incomplete")
    for k in _INT_KEYS:
        if type(cfg[k]) is not int or not 1 <= cfg[k] <= _MAX_SIZE:
            raise bad(f"config {k!r}", f"is {cfg[k]!r}, not an integer in 1..{_MAX_SIZE}")
    if 12 * cfg["layers"] > len(arrays):
        raise bad("config 'layers'", f"says {cfg['layers']} but the file holds too few arrays")
    proj = cfg.get("projection")
    if proj is not None and (type(proj) is not int or not 0 <= proj <= _MAX_SIZE):
        raise bad("config 'projection'", f"is {proj!r}, not an integer >= 0")
    try:
        check_config(cfg)
    except ValueError as e:
        raise bad("meta 'config':", str(e)) from None
    files = meta.get("tokenizer")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in files.items()):
        raise bad("meta 'tokenizer'", "is not an object of file texts")
    special = meta.get("special", {})
    if not isinstance(special, dict) or not all(
            type(i) is int and 0 <= i < cfg["vocab"] for i in special.values()):
        raise bad("meta 'special'", f"is not an object of piece ids in 0..{cfg['vocab'] - 1}")
    state = meta.get("train", {})
    if not isinstance(state, dict):
        raise bad("meta 'train'", "is not an object")
    if state:
        step, total = state.get("step"), state.get("total_steps")
        if type(step) is not int or type(total) is not int or not 0 <= step <= total:
            raise bad("meta 'train'", f"step {step!r} of {total!r} is not 0 <= step <= total")
        if not isinstance(state.get("rng"), dict):
            raise bad("meta 'train'", "'rng' is not an object")
    return cfg
