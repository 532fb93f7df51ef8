"""Numba kernel for ``ranks.py``: run rank-ordered BPE on every token of a vocabulary at once.

A pair of adjacent parts of a token is a contiguous slice of the token's bytes, so a lookup is
a hash of that slice in one table of all tokens; no Python object per token.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = -1


@njit(cache=True, inline="always")
def _hash(buf, s, e):
    h = np.uint64(14695981039346656037)
    for i in range(s, e):
        h = (h ^ np.uint64(buf[i])) * np.uint64(1099511628211)
    return h


@njit(cache=True)
def _lookup(buf, off, table, mask, s, e):
    """Rank of the token whose bytes are buf[s:e], or -1."""
    h = np.int64(_hash(buf, s, e) & np.uint64(mask))
    n = e - s
    while True:
        r = table[h]
        if r == _EMPTY:
            return -1
        ts = off[r]
        if off[r + 1] - ts == n:
            same = True
            for k in range(n):
                if buf[ts + k] != buf[s + k]:
                    same = False
                    break
            if same:
                return r
        h = (h + 1) & mask


@njit(cache=True)
def derive(buf, off, start):
    """buf uint8 / off int64[n+1]: the tokens' bytes in rank order; start uint8[len(buf)]: 1
    where a base symbol begins. Returns int32 (left rank, right rank) per token, -1 when the
    token does not end in exactly two parts."""
    n = off.shape[0] - 1
    cap = 1024
    while cap < 2 * n:
        cap *= 2
    mask = cap - 1
    table = np.full(cap, _EMPTY, np.int64)
    for r in range(n):  # tokens are distinct (the readers check)
        h = np.int64(_hash(buf, off[r], off[r + 1]) & np.uint64(mask))
        while table[h] != _EMPTY:
            h = (h + 1) & mask
        table[h] = r
    left = np.full(n, -1, np.int32)
    right = np.full(n, -1, np.int32)
    maxlen = 1
    for r in range(n):
        maxlen = max(maxlen, off[r + 1] - off[r])
    cut = np.empty(maxlen + 1, np.int64)
    for r in range(n):
        s, e = off[r], off[r + 1]
        m = 0
        for i in range(s, e):
            if start[i]:
                cut[m] = i
                m += 1
        cut[m] = e
        if m < 2:
            continue
        while m > 2:
            best, at = r, -1
            for k in range(m - 1):
                q = _lookup(buf, off, table, mask, cut[k], cut[k + 2])
                if q != -1 and q < best:
                    best, at = q, k
            if at < 0:
                break
            for k in range(at + 1, m):
                cut[k] = cut[k + 1]
            m -= 1
        if m == 2:
            left[r] = _lookup(buf, off, table, mask, cut[0], cut[1])
            right[r] = _lookup(buf, off, table, mask, cut[1], cut[2])
    return left, right
