"""GPT-2 pre-tokenization and word counting in one compiled pass (byte-level learning).

Running the ``regex`` module over the corpus was most of ``bpe learn``'s time. This kernel walks
the text's code points once, finds the same words as ``pretokenize.GPT2_BLOCK_PATTERN`` and counts
them in an open-addressing hash table, so Python never sees a word occurrence, only each distinct
word once. Character classes (``\\p{L}``, ``\\p{N}``, ``\\s``) come from the ``regex`` module itself,
so both paths agree on every code point (tests compare them on random text and dev.txt).

The pattern, alternative by alternative (first match wins, as in the regex):
``'s|'t|'re|'ve|'m|'ll|'d`` · `` ?\\p{L}+`` · `` ?\\p{N}+`` · `` ?[^\\s\\p{L}\\p{N}]+`` ·
``[^\\S\\n]*\\n`` · ``[^\\S\\n]+(?!\\S)`` · ``[^\\S\\n]+``.
"""
from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import numpy as np
from numba import njit

OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
_CLASSES = ((LETTER, r"\p{L}+"), (NUMBER, r"\p{N}+"), (SPACE, r"\s+"))
_NL, _SP, _QUOTE = 10, 32, 39


@functools.lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """uint8 class of every code point per the ``regex`` module, cached on disk (0.1 s to build)."""
    import unicodedata

    import regex

    name = f"charclass-{regex.__version__}-{unicodedata.unidata_version}.npy"
    path = Path(__file__).parent / "__pycache__" / name
    try:
        table = np.load(path)
        if table.shape == (0x110000,) and table.dtype == np.uint8:
            return table
    except (OSError, ValueError):
        pass
    chars = "".join(map(chr, range(0x110000)))
    table = np.zeros(0x110000, np.uint8)
    for value, pattern in _CLASSES:
        for m in regex.finditer(pattern, chars):
            table[m.start():m.end()] = value
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, table)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only install: build it each time
    return table


@njit(cache=True, inline="always")
def _run_end(text, j, n, cls, k):
    while j < n and cls[text[j]] == k:
        j += 1
    return j


@njit(cache=True)
def _word_end(text, i, n, cls):
    """End of the GPT-2 block-pattern word that starts at ``i``."""
    c = text[i]
    if c == _QUOTE and i + 1 < n:
        d = text[i + 1]
        if d == 115 or d == 116 or d == 109 or d == 100:  # 's 't 'm 'd
            return i + 2
        if i + 2 < n:
            e = text[i + 2]
            if (e == 101 and (d == 114 or d == 118)) or (d == 108 and e == 108):  # 're 've 'll
                return i + 3
    k = cls[c]
    if c == _SP and i + 1 < n and cls[text[i + 1]] != SPACE:
        return _run_end(text, i + 2, n, cls, cls[text[i + 1]])  # " " + a letter/number/other run
    if k != SPACE:
        return _run_end(text, i + 1, n, cls, k)
    if c == _NL:
        return i + 1
    e = i + 1
    while e < n and cls[text[e]] == SPACE and text[e] != _NL:
        e += 1
    if e < n and text[e] == _NL:
        return e + 1
    if e == n or e - i == 1:
        return e
    return e - 1  # leave the last space to the word after the run


@njit(cache=True)
def _hash(text, a, b):
    h = np.uint64(0xCBF29CE484222325)
    for i in range(a, b):
        h = (h ^ np.uint64(text[i])) * np.uint64(0x100000001B3)
    return h


@njit(cache=True, nogil=True)
def count_words(text, cls, slots, whash, woff, keys, wcount, nw):
    """Add the words of ``text`` (uint32 code points) to the table; returns the (maybe regrown)
    arrays and the new number of distinct words. ``slots`` (power-of-two size, -1 = empty) index
    words; word w is ``keys[woff[w]:woff[w + 1]]`` with hash ``whash[w]`` and count ``wcount[w]``."""
    n = text.shape[0]
    mask = np.uint64(slots.shape[0] - 1)
    i = 0
    while i < n:
        e = _word_end(text, i, n, cls)
        h = _hash(text, i, e)
        s = h & mask
        while True:
            w = slots[s]
            if w < 0:
                break
            if whash[w] == h and woff[w + 1] - woff[w] == e - i:
                a = woff[w]
                same = True
                for k in range(e - i):
                    if keys[a + k] != text[i + k]:
                        same = False
                        break
                if same:
                    break
            s = (s + np.uint64(1)) & mask
        if w >= 0:
            wcount[w] += 1
        else:
            if nw + 1 >= wcount.shape[0]:
                whash = _grown(whash, 2 * wcount.shape[0])
                woff = _grown(woff, 2 * wcount.shape[0] + 1)
                wcount = _grown(wcount, 2 * wcount.shape[0])
            if woff[nw] + (e - i) > keys.shape[0]:
                keys = _grown(keys, 2 * keys.shape[0] + (e - i))
            a = woff[nw]
            keys[a:a + e - i] = text[i:e]
            woff[nw + 1] = a + e - i
            whash[nw] = h
            wcount[nw] = 1
            slots[s] = nw
            nw += 1
            if 2 * nw > slots.shape[0]:
                slots = _rehash(whash, nw, 2 * slots.shape[0])
                mask = np.uint64(slots.shape[0] - 1)
        i = e
    return slots, whash, woff, keys, wcount, nw


@njit(cache=True)
def _grown(a, size):
    out = np.empty(size, a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def _rehash(whash, nw, size):
    slots = np.full(size, -1, np.int64)
    mask = np.uint64(size - 1)
    for w in range(nw):
        s = whash[w] & mask
        while slots[s] >= 0:
            s = (s + np.uint64(1)) & mask
        slots[s] = w
    return slots


class WordCounter:
    """Counts GPT-2 block-pattern words over many texts; ``counter()`` gives them as a Counter."""

    def __init__(self):
        self.cls = char_classes()
        self.table = (np.full(1 << 16, -1, np.int64), np.zeros(1 << 15, np.uint64),
                      np.zeros((1 << 15) + 1, np.int64), np.zeros(1 << 18, np.uint32),
                      np.zeros(1 << 15, np.int64))
        self.nw = 0

    def add(self, text: str) -> None:
        """Count the words of ``text`` (lone surrogates from ``surrogateescape`` are kept)."""
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        *table, self.nw = count_words(cps, self.cls, *self.table, self.nw)
        self.table = tuple(table)

    def counter(self) -> Counter:
        _, _, woff, keys, wcount, = self.table
        nw = self.nw
        text = keys[:woff[nw]].tobytes().decode("utf-32-le", "surrogatepass")
        off = woff[:nw + 1].tolist()
        return Counter(dict(zip([text[a:b] for a, b in zip(off, off[1:])], wcount[:nw].tolist())))
