"""fastText's character n-gram scheme, exact to the byte, in plain Python.

This is the reference the Numba kernels in ``train/`` are tested against, and what query commands
use to build vectors for out-of-vocabulary words (a few words at a time, so speed does not matter).
"""
from __future__ import annotations

import numpy as np

BOW, EOW, EOS = "<", ">", "</s>"


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a over *sign-extended* bytes, as fastText's ``Dictionary::hash`` does.

    fastText casts each ``char`` (signed on x86) to ``int8`` then to ``uint32``, so bytes >= 0x80
    are xor-ed as 0xFFFFFFxx; gensim's ``ft_hash_bytes`` reproduces the same quirk.
    """
    h = 2166136261
    for b in data:
        h ^= (b | 0xFFFFFF00) if b >= 0x80 else b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def char_ngrams(word: str, minn: int, maxn: int) -> list[bytes]:
    """The n-grams of ``<word>``, lengths minn..maxn in UTF-8 characters, in fastText's order.

    The single-character n-grams ``<`` and ``>`` are skipped; ``</s>`` has no n-grams.
    """
    if word == EOS or maxn <= 0:
        return []
    w = (BOW + word + EOW).encode("utf-8", "surrogateescape")
    out = []
    size = len(w)
    for i in range(size):
        if (w[i] & 0xC0) == 0x80:
            continue
        j = i
        n = 1
        while j < size and n <= maxn:
            j += 1
            while j < size and (w[j] & 0xC0) == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == size)):
                out.append(w[i:j])
            n += 1
    return out


def char_ngram_rows(word: str, minn: int, maxn: int, buckets: int) -> np.ndarray:
    """Bucket indices (0-based within the n-gram table) of the word's n-grams, duplicates kept."""
    if buckets <= 0:
        return np.zeros(0, np.int64)
    return np.array([fnv1a32(g) % buckets for g in char_ngrams(word, minn, maxn)], dtype=np.int64)


class CharNgrams:
    """fastText subwords: a word's rows are its hashed character n-grams (``--subwords char``)."""

    kind = "char"

    def __init__(self, minn: int = 3, maxn: int = 6, buckets: int = 2_000_000):
        self.minn, self.maxn, self.buckets = int(minn), int(maxn), int(buckets)

    def rows(self, word: str) -> np.ndarray:
        return char_ngram_rows(word, self.minn, self.maxn, self.buckets)

    def to_meta(self) -> dict:
        return {"kind": self.kind, "minn": self.minn, "maxn": self.maxn, "buckets": self.buckets}


def scheme_from_meta(meta: dict | None):
    """Rebuild a subword scheme from a model's ``subwords`` metadata (``None`` = no subwords)."""
    kind = (meta or {}).get("kind", "none")
    if kind == "none":
        return None
    if kind == "char":
        return CharNgrams(meta["minn"], meta["maxn"], meta["buckets"])
    if kind == "bpe":
        from .wordvec.bpe_subwords import scheme_from_meta as bpe_scheme

        return bpe_scheme(meta)
    raise ValueError(f"unknown subword scheme {kind!r}")
