"""Numba kernels for ``--bpe-bag all``: a trie over the BPE tokens, matched from every position of
every vocabulary word at once (arrays and scalars only).

Symbols are non-negative ints (bytes, or code points and an end-of-word symbol in word mode). The
trie is stored as an open-addressing hash table from ``node * alphabet + symbol`` to the child
node, so nodes with 256 possible children cost no more than leaves. Matching walks the trie from
each start position until no child exists: words are short and tokens shorter still, so this is
``O(length x longest token)`` per word — what an Aho–Corasick automaton would save (re-reading a
few symbols per start) is not worth its failure links here.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = 0x9E3779B97F4A7C15


@njit(cache=True, inline="always")
def _slot(keys, key, mask):
    """The slot holding ``key``, or the empty slot (-1) where it would go (linear probing)."""
    h = np.int64((np.uint64(key) * np.uint64(_GOLDEN)) >> np.uint64(32)) & mask
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & mask
    return h


@njit(cache=True)
def build_trie(sym, off, rows, alphabet):
    """Insert token t (symbols ``sym[off[t]:off[t+1]]``, non-empty) with subword row ``rows[t]``.

    Returns ``(keys, child, node_row)``: the hash table (key -1 = empty) and, per node, the row of
    the token ending there (-1: none). A token inserted twice keeps its last row.
    """
    nsym = off[off.shape[0] - 1]
    cap = 16
    while cap < 2 * (nsym + 1):
        cap *= 2
    mask = cap - 1
    keys = np.full(cap, -1, np.int64)
    child = np.zeros(cap, np.int32)
    node_row = np.full(nsym + 1, -1, np.int32)
    nodes = 1
    for t in range(off.shape[0] - 1):
        node = 0
        for k in range(off[t], off[t + 1]):
            key = np.int64(node) * alphabet + sym[k]
            h = _slot(keys, key, mask)
            if keys[h] == -1:
                keys[h] = key
                child[h] = nodes
                nodes += 1
            node = child[h]
        node_row[node] = rows[t]
    return keys, child, node_row[:nodes]


@njit(cache=True)
def _word_matches(sym, start, end, keys, child, node_row, alphabet, first_row, ids, k):
    """Write the rows of all tokens in ``sym[start:end]`` into ids[k:] (unless ids is empty), by
    start position then length; return the new end."""
    write = ids.shape[0] > 0
    mask = keys.shape[0] - 1
    for i in range(start, end):
        node = 0
        for j in range(i, end):
            key = np.int64(node) * alphabet + sym[j]
            h = _slot(keys, key, mask)
            if keys[h] == -1:
                break
            node = child[h]
            r = node_row[node]
            if r >= 0:
                if write:
                    ids[k] = first_row + r
                k += 1
    return k


@njit(cache=True)
def bag_table(sym, off, keys, child, node_row, alphabet, first_row, own):
    """CSR bags of every word: word w's symbols are ``sym[off[w]:off[w+1]]``; its bag is
    ``own`` copies of row w, then ``first_row`` + the row of each contained token (``ptr``,
    int32 ``ids``)."""
    nw = off.shape[0] - 1
    ptr = np.zeros(nw + 1, np.int64)
    empty = np.empty(0, np.int32)
    for w in range(nw):
        ptr[w + 1] = ptr[w] + _word_matches(sym, off[w], off[w + 1], keys, child, node_row,
                                            alphabet, first_row, empty, own)
    ids = np.empty(ptr[nw], np.int32)
    for w in range(nw):
        for c in range(own):
            ids[ptr[w] + c] = w
        _word_matches(sym, off[w], off[w + 1], keys, child, node_row, alphabet, first_row, ids,
                      ptr[w] + own)
    return ptr, ids
