"""The classifier model file: an ``embedkit.store`` of kind ``"classifier"``.

Meta: ``format`` (1), ``settings`` (training options: dim, loss, word_ngrams, buckets, seed...),
``words``, ``labels`` (without prefix), ``label_style`` ("fasttext" | "tsv"), ``lowercase``,
``subwords`` (the scheme's ``to_meta()``: char n-gram sizes, or the BPE tokenizer's own files).
Arrays: ``input`` [V + P + U, D] float32 (words, BPE pieces, stored n-gram buckets), ``output``
[L, D], ``word_counts`` [V], ``label_counts`` [L], ``bucket_ids`` [U] int32 (sorted, the bucket
of each stored bucket row), and for ``loss hs`` the Huffman tree ``hs_ptr``/``hs_node``/``hs_code``.

Reading checks every field against the others and names the one that lies: a wrong shape or an
index out of range would otherwise be read out of bounds by a kernel.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..store import read_store, write_store
from .tables import LOSS_CODES, Parts, huffman

KIND = "classifier"
FORMAT = 1
_INT_SETTINGS = ("dim", "word_ngrams", "buckets", "seed", "minn", "maxn", "neg")


def write_model(path: str, p: Parts) -> None:
    meta = {"format": FORMAT, "settings": p.settings, "words": p.words, "labels": p.labels,
            "label_style": p.label_style, "lowercase": bool(p.lowercase),
            "subwords": p.scheme.to_meta() if p.scheme is not None else {"kind": "none"}}
    arrays = {"input": p.input, "output": p.output,
              "word_counts": np.asarray(p.word_counts, np.int64),
              "label_counts": np.asarray(p.label_counts, np.int64),
              "bucket_ids": np.asarray(p.bucket_ids, np.int32)}
    if p.settings["loss"] == "hs":
        arrays["hs_ptr"], arrays["hs_node"], arrays["hs_code"] = huffman(p.label_counts)
    write_store(path, KIND, meta, arrays)


def read_model(path: str) -> Parts:
    meta, arrays = read_store(path, KIND, mmap=True)

    def bad(field: str, problem: str):
        return InputError(path, f"corrupt classifier: {field}: {problem}")

    if meta.get("format") != FORMAT:
        raise bad("format", f"version {meta.get('format')!r}, this embedkit reads {FORMAT}")
    s = meta.get("settings")
    if not isinstance(s, dict):
        raise bad("settings", "missing")
    for k in _INT_SETTINGS:
        if not isinstance(s.get(k), int) or isinstance(s.get(k), bool) or s[k] < 0:
            raise bad(f"settings.{k}", f"expected a non-negative integer, got {s.get(k)!r}")
    if s.get("loss") not in LOSS_CODES:
        raise bad("settings.loss", f"{s.get('loss')!r} is not one of {', '.join(LOSS_CODES)}")
    if s["dim"] < 1 or s["word_ngrams"] < 1:
        raise bad("settings", "dim and word_ngrams must be at least 1")
    if s["buckets"] > 2**31 - 1:
        raise bad("settings.buckets", f"{s['buckets']} is more than 2**31 - 1")
    words, labels = check_vocabulary(meta, bad)
    scheme = _scheme(meta.get("subwords"), s, bad)
    for name in ("input", "output", "word_counts", "label_counts", "bucket_ids"):
        if name not in arrays:
            raise bad(name, "missing")
    V, L, D = len(words), len(labels), s["dim"]
    P = scheme.size if scheme is not None and scheme.kind == "bpe" else 0
    ids = check_bucket_ids(arrays["bucket_ids"], s["buckets"], bad)
    check_arrays(arrays, {"input": ((V + P + len(ids), D), np.float32),
                          "output": ((L, D), np.float32), "word_counts": ((V,), np.int64),
                          "label_counts": ((L,), np.int64)}, bad)
    if s["loss"] == "hs":
        tree = huffman(np.asarray(arrays["label_counts"]))
        for name, want in zip(("hs_ptr", "hs_node", "hs_code"), tree):
            got = arrays.get(name)
            if got is None or got.shape != want.shape or not np.array_equal(got, want):
                raise bad(name, "does not match the Huffman tree of label_counts")
    return Parts(dict(s), words, np.asarray(arrays["word_counts"]), labels,
                 np.asarray(arrays["label_counts"]), arrays["input"], arrays["output"],
                 np.asarray(ids), scheme, meta["label_style"], meta["lowercase"])


def check_vocabulary(meta: dict, bad) -> tuple[list, list]:
    """The fields every classifier file holds: words, labels (non-empty), label style, lowercase."""
    words, labels = meta.get("words"), meta.get("labels")
    for name, v in (("words", words), ("labels", labels)):
        if not isinstance(v, list) or not all(isinstance(w, str) for w in v):
            raise bad(name, "expected a list of strings")
        if len(set(v)) != len(v):
            raise bad(name, "repeated entries")
    if not labels:
        raise bad("labels", "empty")
    if meta.get("label_style") not in ("fasttext", "tsv"):
        raise bad("label_style", f"{meta.get('label_style')!r}")
    if not isinstance(meta.get("lowercase"), bool):
        raise bad("lowercase", "expected true or false")
    return words, labels


def check_arrays(arrays: dict, expect: dict, bad) -> None:
    """Each named array (present: checked before) has the expected ``(shape, dtype)``."""
    for name, (shape, dtype) in expect.items():
        a = arrays[name]
        if a.shape != shape or a.dtype != dtype:
            raise bad(name, f"{a.dtype.name} {list(a.shape)}, expected {np.dtype(dtype).name} "
                            f"{list(shape)}")


def check_bucket_ids(ids, buckets: int, bad):
    """The stored n-gram buckets: int32, sorted, distinct, inside ``[0, buckets)``."""
    if ids.ndim != 1 or ids.dtype != np.int32:
        raise bad("bucket_ids", "expected int32 [U]")
    if len(ids) and (ids.min() < 0 or ids.max() >= buckets or np.any(np.diff(ids) <= 0)):
        raise bad("bucket_ids", f"must be sorted, distinct and in [0, {buckets})")
    return ids


def _scheme(sub, s: dict, bad):
    if not isinstance(sub, dict) or sub.get("kind", "none") not in ("none", "char", "bpe"):
        raise bad("subwords", f"{sub!r}")
    kind = sub.get("kind", "none")
    if kind == "none":
        return None
    if kind == "char":
        for k in ("minn", "maxn", "buckets"):
            if not isinstance(sub.get(k), int) or sub[k] < 1:
                raise bad(f"subwords.{k}", f"{sub.get(k)!r}")
        if sub["buckets"] != s["buckets"] or sub["minn"] > sub["maxn"]:
            raise bad("subwords", "n-gram sizes or buckets disagree with settings")
        from ..subwords import CharNgrams

        return CharNgrams(sub["minn"], sub["maxn"], sub["buckets"])
    from ..wordvec.bpe_subwords import BpePieces

    try:
        return BpePieces.from_meta(sub)
    except (KeyError, TypeError, ValueError) as e:
        raise bad("subwords", f"tokenizer files unreadable ({e})") from None
