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


MAX_NGRAM = 100  # fastText's own header check allows minn/maxn up to this


def load_native(path: str | os.PathLike, mmap: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(meta, arrays)`` after checking every field against the others (a repeated word
    is found when the vocabulary index is first built: hashing 2M words would double the time
    to open).

    ``meta["subwords"]`` comes back as the scheme's checked metadata (``{"kind": "none"}`` when
    absent): rows in range for every word, so a lookup can never index past the table.
    """
    meta, arrays = read_store(path, KIND, mmap=mmap)

    def bad(field: str, problem: str) -> InputError:
        return InputError(path, f"corrupt native model: {field} {problem}")

    words = meta.get("words")
    try:
        if not isinstance(words, list):
            raise TypeError
        "".join(words)  # all strings? at C speed on 2M words
    except TypeError:
        raise bad("meta 'words'", "is not a list of strings") from None
    if not words:
        raise InputError(path, "empty model: no vectors")
    vec = arrays.get("vectors")
    if vec is None:
        raise bad("array 'vectors'", "is missing")
    _float_rows(bad, "vectors", vec, len(words), None)
    dim = meta.get("dim", vec.shape[1])
    if type(dim) is not int or dim != vec.shape[1] or dim < 1:
        raise bad("meta 'dim'", f"{dim!r} disagrees with the vectors' {vec.shape[1]} columns")
    counts = arrays.get("counts")
    if counts is not None and (counts.dtype.kind not in "iu" or counts.shape != (len(words),)):
        raise bad("array 'counts'", f"must be {len(words)} integers, is {counts.dtype} "
                                    f"{list(counts.shape)}")
    for name in ("input", "output"):
        if name in arrays:
            _float_rows(bad, name, arrays[name], len(words), dim)
    if not isinstance(meta.get("settings", {}), dict):
        raise bad("meta 'settings'", "is not an object")
    sub = meta.get("subwords", {"kind": "none"})
    rows = arrays.get("subword_rows")
    meta["subwords"] = _check_subwords(bad, sub, rows, dim)
    return meta, arrays


def _float_rows(bad, name: str, a: np.ndarray, rows: int | None, dim: int | None) -> None:
    """``a`` must be float32 [rows, dim] (``None``: any count), non-empty."""
    want = f"float32 [{rows if rows is not None else 'N'}, {dim if dim is not None else 'D'}]"
    if a.dtype != np.float32 or a.ndim != 2 or (rows is not None and a.shape[0] != rows) \
            or (dim is not None and a.shape[1] != dim) or a.shape[1] == 0:
        raise bad(f"array {name!r}", f"is {a.dtype} {list(a.shape)}, expected {want}")


def _check_subwords(bad, sub, rows: np.ndarray | None, dim: int) -> dict:
    """The subword metadata, checked against the ``subword_rows`` table it indexes."""
    if not isinstance(sub, dict):
        raise bad("meta 'subwords'", "is not an object")
    kind = sub.get("kind", "none")
    if kind == "none":
        return {"kind": "none"}
    if rows is None:
        raise bad("array 'subword_rows'", f"is missing (the model has {kind!r} subwords)")
    _float_rows(bad, "subword_rows", rows, None, dim)
    if kind == "char":
        minn, maxn, buckets = (sub.get(k) for k in ("minn", "maxn", "buckets"))
        if not all(type(v) is int for v in (minn, maxn, buckets)) or \
                not 0 <= minn <= maxn <= MAX_NGRAM or maxn < 1:
            raise bad("meta 'subwords'", f"n-gram lengths minn={minn!r} maxn={maxn!r} are not "
                                         f"0 <= minn <= maxn <= {MAX_NGRAM}")
        if buckets != rows.shape[0] or buckets < 1:
            raise bad("meta 'subwords'", f"buckets={buckets!r} but 'subword_rows' has "
                                         f"{rows.shape[0]} rows")
        return sub
    if kind == "bpe":
        files = sub.get("files")
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in files.items()):
            raise bad("meta 'subwords'", "'files' is not an object of file texts")
        if not isinstance(sub.get("leading_space", False), bool):
            raise bad("meta 'subwords'", "'leading_space' is not true or false")
        return sub
    raise bad("meta 'subwords'", f"has unknown kind {kind!r} (none, char or bpe)")
