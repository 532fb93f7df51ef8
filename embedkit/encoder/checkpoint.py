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
from .network import ARCH_KEYS, param_shapes

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


def load(encdir) -> tuple[dict, dict, dict]:
    """-> (meta, params, moments), checked against the architecture recorded in meta."""
    d = Path(encdir)
    if not d.exists():
        raise InputError(d, "no such folder")
    if not d.is_dir():
        raise InputError(d, "is a file, expected an encoder folder (ENCDIR)")
    p = path_of(d)
    if not p.exists():
        raise InputError(d, f"no {FILE} in this folder: not an encoder folder")
    meta, arrays = read_store(p, KIND, mmap=False)
    cfg = meta.get("config", {})
    if any(k not in cfg for k in ARCH_KEYS) or "tokenizer" not in meta:
        raise InputError(p, "corrupt encoder file: missing configuration")
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
                moments[m + name] = arrays[m + name]
    return meta, params, moments
