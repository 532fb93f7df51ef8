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
    return cached_table("charclass", _fill_classes)


def _fill_classes(chars: str, table: np.ndarray) -> None:
    import regex

    for value, pattern in _CLASSES:
        for m in regex.finditer(pattern, chars):
            table[m.start():m.end()] = value


def cached_table(kind: str, fill) -> np.ndarray:
    """A uint8 per code point that ``fill(chars, table)`` sets from ``regex`` classes, cached in
    ``__pycache__`` per regex and Unicode version (the scanners look classes up, never regex)."""
    import unicodedata

    import regex

    name = f"{kind}-{regex.__version__}-{unicodedata.unidata_version}.npy"
    path = Path(__file__).parent / "__pycache__" / name
    try:
        table = np.load(path)
        if table.shape == (0x110000,) and table.dtype == np.uint8:
            return table
    except (OSError, ValueError):
        pass
    table = np.zeros(0x110000, np.uint8)
    fill("".join(map(chr, range(0x110000))), table)
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


@njit(cache=True, inline="always")
def _insert(text, i, e, h, cnt, slots, whash, woff, keys, wcount, nw):
    """Add ``cnt`` to the word ``text[i:e]`` (hash ``h``); returns the maybe regrown arrays."""
    mask = np.uint64(slots.shape[0] - 1)
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
                wcount[w] += cnt
                return slots, whash, woff, keys, wcount, nw
        s = (s + np.uint64(1)) & mask
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
    wcount[nw] = cnt
    slots[s] = nw
    nw += 1
    if 2 * nw > slots.shape[0]:
        slots = _rehash(whash, nw, 2 * slots.shape[0])
    return slots, whash, woff, keys, wcount, nw


@njit(cache=True, nogil=True)
def scan_words(text, cls, slots, whash, woff, keys, wcount, nw):
    """Add the words of ``text`` (uint32 code points) to the table; returns the (maybe regrown)
    arrays and the new number of distinct words. ``slots`` (power-of-two size, -1 = empty) index
    words; word w is ``keys[woff[w]:woff[w + 1]]`` with hash ``whash[w]`` and count ``wcount[w]``."""
    n = text.shape[0]
    i = 0
    while i < n:
        e = _word_end(text, i, n, cls)
        slots, whash, woff, keys, wcount, nw = _insert(text, i, e, _hash(text, i, e), 1, slots,
                                                       whash, woff, keys, wcount, nw)
        i = e
    return slots, whash, woff, keys, wcount, nw


@njit(cache=True, nogil=True)
def merge_tables(slots, whash, woff, keys, wcount, nw, src_whash, src_woff, src_keys, src_wcount,
                 src_nw):
    """Add every word of the source table (with its count) to the first table."""
    for w in range(src_nw):
        slots, whash, woff, keys, wcount, nw = _insert(src_keys, src_woff[w], src_woff[w + 1],
                                                       src_whash[w], src_wcount[w], slots, whash,
                                                       woff, keys, wcount, nw)
    return slots, whash, woff, keys, wcount, nw


@njit(cache=True, nogil=True)
def byte_symbols(woff, keys, nw, lut):
    """Each word's UTF-8 bytes mapped through ``lut`` (byte → symbol id): (sym, wstart).

    Code points U+DC80..U+DCFF are ``surrogateescape``'s stand-ins for invalid input bytes and give
    back that byte; other surrogates are encoded as ``surrogatepass`` does (``trainer.word_bytes``).
    """
    total = 0
    for k in range(woff[nw]):
        c = keys[k]
        total += 1 if c < 0x80 or (0xDC80 <= c <= 0xDCFF) else 2 if c < 0x800 else 3 if c < 0x10000 else 4
    sym = np.empty(total, np.int32)
    wstart = np.empty(nw + 1, np.int64)
    j = 0
    for w in range(nw):
        wstart[w] = j
        for k in range(woff[w], woff[w + 1]):
            c = keys[k]
            if c < 0x80:
                sym[j] = lut[c]
                j += 1
            elif 0xDC80 <= c <= 0xDCFF:
                sym[j] = lut[c - 0xDC00]
                j += 1
            elif c < 0x800:
                sym[j] = lut[0xC0 | (c >> 6)]
                sym[j + 1] = lut[0x80 | (c & 0x3F)]
                j += 2
            elif c < 0x10000:
                sym[j] = lut[0xE0 | (c >> 12)]
                sym[j + 1] = lut[0x80 | ((c >> 6) & 0x3F)]
                sym[j + 2] = lut[0x80 | (c & 0x3F)]
                j += 3
            else:
                sym[j] = lut[0xF0 | (c >> 18)]
                sym[j + 1] = lut[0x80 | ((c >> 12) & 0x3F)]
                sym[j + 2] = lut[0x80 | ((c >> 6) & 0x3F)]
                sym[j + 3] = lut[0x80 | (c & 0x3F)]
                j += 4
    wstart[nw] = j
    return sym, wstart


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
    """Counts GPT-2 block-pattern words over many texts without making a Python string per word."""

    def __init__(self):
        self.cls = char_classes()
        self.table = (np.full(1 << 16, -1, np.int64), np.zeros(1 << 15, np.uint64),
                      np.zeros((1 << 15) + 1, np.int64), np.zeros(1 << 18, np.uint32),
                      np.zeros(1 << 15, np.int64))
        self.nw = 0

    def __len__(self) -> int:
        return self.nw

    def add(self, text: str) -> None:
        """Count the words of ``text`` (lone surrogates from ``surrogateescape`` are kept)."""
        self._scan(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32))

    def _scan(self, cps: np.ndarray) -> None:
        """The pattern's kernel over code points (subclasses scan other patterns)."""
        *table, self.nw = scan_words(cps, self.cls, *self.table, self.nw)
        self.table = tuple(table)

    def merge(self, other: "WordCounter") -> None:
        _, whash, woff, keys, wcount = other.table
        *table, self.nw = merge_tables(*self.table, self.nw, whash, woff, keys, wcount, other.nw)
        self.table = tuple(table)

    def counts(self) -> np.ndarray:
        return self.table[4][:self.nw]

    def symbols(self, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sym, wstart) of every word's bytes through ``lut``, in table order (see ``counts``)."""
        return byte_symbols(self.table[2], self.table[3], self.nw, lut)

    def counter(self) -> Counter:
        woff, keys = self.table[2], self.table[3]
        text = keys[:woff[self.nw]].tobytes().decode("utf-32-le", "surrogatepass")
        off = woff[:self.nw + 1].tolist()
        out: Counter = Counter()
        dict.update(out, zip([text[a:b] for a, b in zip(off, off[1:])], self.counts().tolist()))
        return out
