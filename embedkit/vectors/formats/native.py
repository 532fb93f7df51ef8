"""Native word-vector models: an ``embedkit.store`` file of kind ``"vectors"``.

Arrays: ``vectors`` [V, D] float32, the final word vectors (what ``.vec`` holds); ``counts`` [V]
int64; ``subword_rows`` [B, D] float32, the n-gram bucket or BPE piece rows used to build vectors
of out-of-vocabulary words (mean of the rows of the word's subwords); optional ``input`` [V, D]
(the words' own input rows) and ``output`` [V, D] (negative-sampling output rows), kept so a
model can be exported to fastText ``.bin``. Meta: ``words`` (vocabulary, by descending count),
``subwords`` (the scheme's ``to_meta()``, or ``{"kind": "none"}``), ``settings`` (training options).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...errors import InputError
from ...store import read_store, write_store

KIND = "vectors"


def save_native(path: str | os.PathLike, words: list[str], vectors: np.ndarray, *,
                counts: np.ndarray | None = None, subwords: dict | None = None,
                subword_rows: np.ndarray | None = None, input: np.ndarray | None = None,
                output: np.ndarray | None = None, settings: dict[str, Any] | None = None) -> None:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors shape {vectors.shape} does not match {len(words)} words")
    arrays = {"vectors": vectors}
    if counts is not None:
        arrays["counts"] = np.asarray(counts, dtype=np.int64)
    for name, a in (("subword_rows", subword_rows), ("input", input), ("output", output)):
        if a is not None:
            arrays[name] = np.asarray(a, dtype=np.float32)
    meta = {"words": list(words), "dim": int(vectors.shape[1]),
            "subwords": subwords or {"kind": "none"}, "settings": settings or {}}
    write_store(path, KIND, meta, arrays)


def load_native(path: str | os.PathLike, mmap: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(meta, arrays)`` after checking that they agree with each other."""
    meta, arrays = read_store(path, KIND, mmap=mmap)
    words = meta.get("words")
    vec = arrays.get("vectors")
    if not isinstance(words, list) or vec is None or vec.ndim != 2 or vec.shape[0] != len(words):
        raise InputError(path, "corrupt native model: vocabulary and vectors disagree")
    for name in ("counts", "input", "output"):
        if name in arrays and arrays[name].shape[0] != len(words):
            raise InputError(path, f"corrupt native model: {name} has the wrong number of rows")
    sub = meta.get("subwords") or {"kind": "none"}
    if sub.get("kind", "none") != "none" and "subword_rows" not in arrays:
        raise InputError(path, "corrupt native model: subword rows missing")
    return meta, arrays
