"""Kernels of ``byte_ids``: input bytes to token ids through an open-addressing table of the
vocabulary's UTF-8 bytes. Only arrays and scalars cross this boundary."""
from __future__ import annotations

import numpy as np
from numba import njit

from .kernels import word_hash

EMPTY = -1
NO_EOS, APPEND_EOS, FASTTEXT_EOS = 0, 1, 2  # what a line's end and a literal </s> do


@njit(cache=True, inline="always")
def _space(b):
    """fastText's ``Dictionary::readWord`` separators, NUL included (the readers refuse NUL
    before; ``data.split_words`` splits on it too)."""
    return b == 0x20 or b == 0x0A or b == 0x09 or b == 0x0B or b == 0x0C or b == 0x0D or b == 0


@njit(cache=True, inline="always")
def _same(data, lo, hi, ref, rlo, rhi):
    if hi - lo != rhi - rlo:
        return False
    for i in range(hi - lo):
        if data[lo + i] != ref[rlo + i]:
            return False
    return True


@njit(cache=True, nogil=True)
def build_slots(hashes, size):
    """Open-addressing slots (``size`` a power of two, > the number of words): the word stored at
    each slot, ``EMPTY`` for none; linear probing from ``hash & (size - 1)``."""
    slots = np.full(size, EMPTY, np.int64)
    mask = size - 1
    for w in range(hashes.shape[0]):
        s = hashes[w] & mask
        while slots[s] != EMPTY:
            s = (s + 1) & mask
        slots[s] = w
    return slots


@njit(cache=True, inline="always")
def _find(data, lo, hi, h, slots, hashes, words, offsets):
    mask = slots.shape[0] - 1
    s = h & mask
    while slots[s] != EMPTY:
        w = slots[s]
        if hashes[w] == h and _same(data, lo, hi, words, offsets[w], offsets[w + 1]):
            return w
        s = (s + 1) & mask
    return EMPTY


@njit(cache=True, inline="always")
def _dropped(data, lo, hi, prefixes, pofs):
    """Does ``data[lo:hi]`` start with one of the prefixes ``prefixes[pofs[k]:pofs[k+1]]``?"""
    for k in range(pofs.shape[0] - 1):
        a, b = pofs[k], pofs[k + 1]
        if hi - lo >= b - a and _same(data, lo, lo + b - a, prefixes, a, b):
            return True
    return False


@njit(cache=True, nogil=True)
def _walk(data, start, max_lines, prefixes, pofs, eos_mode, fill, slots, hashes, words, offsets, ids_of,
          eos_id, eos_hash, unknown, line_ptr, ids, unk_hash):
    """One pass over up to ``max_lines`` lines from ``start``: counts (``fill`` False) or fills
    ``line_ptr``/``ids``/``unk_hash``. Returns (end offset, lines, tokens, unknown tokens)."""
    n = data.shape[0]
    eos = np.array([0x3C, 0x2F, 0x73, 0x3E], np.uint8)  # "</s>"
    i = start
    lines = 0
    ntok = 0
    nunk = 0
    while i < n and lines < max_lines:
        if fill:
            line_ptr[lines] = ntok
        ended = False  # FASTTEXT_EOS: a literal </s> ends the line's words
        while i < n and data[i] != 0x0A:
            if _space(data[i]):
                i += 1
                continue
            lo = i
            while i < n and not _space(data[i]):
                i += 1
            if ended or _dropped(data, lo, i, prefixes, pofs):
                continue
            if eos_mode == FASTTEXT_EOS and _same(data, lo, i, eos, 0, 4):
                ended = True
                continue
            if fill:
                h = word_hash(data, lo, i)
                w = _find(data, lo, i, h, slots, hashes, words, offsets)
                if w != EMPTY:
                    ids[ntok] = ids_of[w]
                else:
                    ids[ntok] = unknown + nunk
                    unk_hash[nunk] = h
                    nunk += 1
            ntok += 1
        if eos_mode != NO_EOS:
            if fill:
                if eos_id >= 0:
                    ids[ntok] = eos_id
                else:
                    ids[ntok] = unknown + nunk
                    unk_hash[nunk] = eos_hash
                    nunk += 1
            ntok += 1
        i += 1  # past the newline (or the end of the data)
        lines += 1
    if fill:
        line_ptr[lines] = ntok
    return min(i, n), lines, ntok, nunk


@njit(cache=True, nogil=True)
def scan(data, start, max_lines, prefixes, pofs, eos_mode, slots, hashes, words, offsets, ids_of, eos_id,
         eos_hash, unknown):
    """The next up to ``max_lines`` lines of ``data`` from ``start`` as ``(end, line_ptr, ids,
    unk_hash)``: a known word is ``ids_of[w]``, the k-th unknown one ``unknown + k`` with hash
    ``unk_hash[k]``; words starting with one of the prefixes are left out."""
    none = np.empty(0, np.int64)
    end, lines, ntok, _ = _walk(data, start, max_lines, prefixes, pofs, eos_mode, False, slots, hashes,
                                words, offsets, ids_of, eos_id, eos_hash, unknown, none, none,
                                none)
    line_ptr = np.empty(lines + 1, np.int64)
    ids = np.empty(ntok, np.int64)
    unk_hash = np.empty(ntok, np.int64)
    _, _, _, nunk = _walk(data, start, max_lines, prefixes, pofs, eos_mode, True, slots, hashes, words,
                          offsets, ids_of, eos_id, eos_hash, unknown, line_ptr, ids, unk_hash)
    return end, line_ptr, ids, unk_hash[:nunk].copy()
