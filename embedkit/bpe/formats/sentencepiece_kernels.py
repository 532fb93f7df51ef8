"""Numba kernel for ``sentencepiece.py``: apply a precompiled character map (a darts-clone
double-array trie over UTF-8 bytes, longest match first) to a text, as sentencepiece's
``Normalizer::NormalizePrefix`` does, without enumerating its 200k+ entries."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _offset(u):
    return (u >> 10) << ((u & (1 << 9)) >> 6)


@njit(cache=True)
def apply_charsmap(data, units, repl):
    """data uint8 (UTF-8) → normalized uint8: at each position the longest key in the trie is
    replaced by its NUL-terminated replacement in ``repl``; otherwise one character is copied."""
    n = data.shape[0]
    nu = units.shape[0]
    out = np.empty(2 * n + 64, np.uint8)
    no = 0
    i = 0
    root = _offset(np.int64(units[0])) if nu else 0
    while i < n:
        best, val = 0, -1
        node = root
        for j in range(i, n):
            node ^= np.int64(data[j])
            if node >= nu:
                break
            u = np.int64(units[node])
            if (u & ((1 << 31) | 0xFF)) != data[j]:
                break
            node ^= _offset(u)
            if (u >> 8) & 1 and node < nu:
                best, val = j - i + 1, np.int64(units[node]) & ((1 << 31) - 1)
        if best > 0:
            k = val
            while k < repl.shape[0] and repl[k] != 0:
                if no == out.shape[0]:
                    grown = np.empty(2 * out.shape[0], np.uint8)
                    grown[:no] = out[:no]
                    out = grown
                out[no] = repl[k]
                no += 1
                k += 1
            i += best
            continue
        b = data[i]
        step = 1 if b < 0xC0 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
        for k in range(min(step, n - i)):
            if no == out.shape[0]:
                grown = np.empty(2 * out.shape[0], np.uint8)
                grown[:no] = out[:no]
                out = grown
            out[no] = data[i + k]
            no += 1
        i += step
    return out[:no].copy()
