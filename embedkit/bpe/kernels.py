"""Numba kernels for BPE: merge learning and per-word encoding. Arrays and scalars only.

Learning keeps, for every symbol position of every unique word, its neighbours and the pair it
starts; each pair has a count and a doubly linked list of the positions where it occurs, so a merge
touches only the words that contain it. The best pair comes from a max-heap with lazy
invalidation: entries are (count, pair) snapshots; a popped entry whose count is stale is pushed
back with the current count. Ties go to the smallest pair of token ids (left id, then right id),
exactly as HF tokenizers' ``BpeTrainer`` orders its ``Merge`` heap.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = -1
_HMUL = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _slot(key, mask):
    return np.int64((np.uint64(key) * _HMUL) >> np.uint64(20)) & mask


@njit(cache=True)
def _grow(a, n):
    out = np.empty(max(n, 2 * a.shape[0]), a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def _pair_table(keys, size):
    """Open-addressing table over the first ``size`` pair keys (capacity: 4x, a power of two)."""
    cap = 1024
    while cap < 4 * size:
        cap *= 2
    table = np.full(cap, _EMPTY, np.int32)
    mask = cap - 1
    for pid in range(size):
        h = _slot(keys[pid], mask)
        while table[h] != _EMPTY:
            h = (h + 1) & mask
        table[h] = pid
    return table


@njit(cache=True)
def _find(table, keys, key):
    mask = table.shape[0] - 1
    h = _slot(key, mask)
    while True:
        pid = table[h]
        if pid == _EMPTY or keys[pid] == key:
            return pid
        h = (h + 1) & mask


@njit(cache=True, inline="always")
def _better(c1, k1, c2, k2):
    """Heap order: higher count first, then the smaller (left id, right id) key."""
    return c1 > c2 or (c1 == c2 and k1 < k2)


@njit(cache=True)
def _heap_push(hc, hk, hp, n, c, k, p):
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if not _better(c, k, hc[parent], hk[parent]):
            break
        hc[i] = hc[parent]
        hk[i] = hk[parent]
        hp[i] = hp[parent]
        i = parent
    hc[i] = c
    hk[i] = k
    hp[i] = p


@njit(cache=True)
def _heap_pop(hc, hk, hp, n):
    """Remove the top of a heap of ``n`` entries (the caller reads it first)."""
    n -= 1
    c, k, p = hc[n], hk[n], hp[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _better(hc[child + 1], hk[child + 1], hc[child], hk[child]):
            child += 1
        if not _better(hc[child], hk[child], c, k):
            break
        hc[i] = hc[child]
        hk[i] = hk[child]
        hp[i] = hp[child]
        i = child
    hc[i] = c
    hk[i] = k
    hp[i] = p


@njit(cache=True)
def _bytes_hash(buf, start, end):
    h = np.uint64(14695981039346656037)
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * np.uint64(1099511628211)
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))


@njit(cache=True)
def _new_pair(key, table, pkey, pcnt, phead, ptouch, npairs):
    """Add pair ``key`` as id ``npairs``, growing the pair arrays and the hash table as needed."""
    if npairs == pkey.shape[0]:
        pkey = _grow(pkey, 0)
        pcnt = _grow(pcnt, 0)
        pcnt[npairs:] = 0
        phead = _grow(phead, 0)
        phead[npairs:] = _EMPTY
        ptouch = _grow(ptouch, 0)
        ptouch[npairs:] = 0
    pkey[npairs] = key
    if 2 * (npairs + 1) > table.shape[0]:
        table = _pair_table(pkey, npairs + 1)
    else:
        mask = table.shape[0] - 1
        h = _slot(key, mask)
        while table[h] != _EMPTY:
            h = (h + 1) & mask
        table[h] = npairs
    return table, pkey, pcnt, phead, ptouch


# Columns of the per-position table: one row per symbol position, so that the fields a merge
# reads and writes for a position share a cache line (the positions of a pair are scattered).
_NXT, _PRV, _WID, _PAIR, _ONXT, _OPRV, _SYM = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, inline="always")
def _link(q, pid, cnt, pcnt, pos, phead):
    """Position ``q`` now starts pair ``pid``: count it and put it first in the pair's list."""
    pcnt[pid] += cnt
    head = phead[pid]
    pos[q, _PAIR] = pid
    pos[q, _ONXT] = head
    pos[q, _OPRV] = _EMPTY
    if head != _EMPTY:
        pos[head, _OPRV] = q
    phead[pid] = q


@njit(cache=True)
def learn_merges(sym, wstart, wcount, tok_buf, tok_off, n_tokens, vocab_size, min_frequency):
    """Learn merges until the vocabulary has ``vocab_size`` distinct tokens.

    sym      int32[N]   initial token id of every position; word w is sym[wstart[w]:wstart[w+1]]
    wcount   int64[K]   how often each unique word occurs
    tok_buf, tok_off    the UTF-8 text of the ``n_tokens`` initial tokens, so that a merge whose
                        text already exists reuses that token's id (as HF does)
    Returns (left, right, new) int32 arrays, one entry per merge in order.
    """
    n = sym.shape[0]
    nwords = wcount.shape[0]
    pos = np.empty((n, 8), np.int32)
    for w in range(nwords):
        for i in range(wstart[w], wstart[w + 1]):
            pos[i, _PRV] = i - 1 if i > wstart[w] else -1
            pos[i, _NXT] = i + 1 if i + 1 < wstart[w + 1] else -1
            pos[i, _WID] = w
            pos[i, _PAIR] = _EMPTY
            pos[i, _ONXT] = _EMPTY
            pos[i, _OPRV] = _EMPTY
            pos[i, _SYM] = sym[i]

    # pairs: key = left << 32 | right
    cap = 1024
    pkey = np.empty(cap, np.int64)
    pcnt = np.zeros(cap, np.int64)
    phead = np.full(cap, _EMPTY, np.int32)
    ptouch = np.zeros(cap, np.uint8)
    npairs = 0
    table = _pair_table(pkey, 0)
    for i in range(n):
        j = pos[i, _NXT]
        if j == -1:
            continue
        key = (np.int64(pos[i, _SYM]) << 32) | pos[j, _SYM]
        pid = _find(table, pkey, key)
        if pid == _EMPTY:
            table, pkey, pcnt, phead, ptouch = _new_pair(key, table, pkey, pcnt, phead, ptouch, npairs)
            pid = npairs
            npairs += 1
        _link(i, pid, wcount[pos[i, _WID]], pcnt, pos, phead)

    hcap = max(npairs, 16) * 2
    hc = np.empty(hcap, np.int64)
    hk = np.empty(hcap, np.int64)
    hp = np.empty(hcap, np.int32)
    hn = 0
    for pid in range(npairs):
        if pcnt[pid] > 0:
            _heap_push(hc, hk, hp, hn, pcnt[pid], pkey[pid], pid)
            hn += 1

    # token texts, for reusing the id of a merge result that already exists
    tbuf = tok_buf.copy()
    toff = np.empty(max(vocab_size, n_tokens) + 2, np.int64)
    toff[:n_tokens + 1] = tok_off[:n_tokens + 1]
    tcap = 1024
    while tcap < 4 * (max(vocab_size, n_tokens) + 1):
        tcap *= 2
    ttab = np.full(tcap, _EMPTY, np.int32)
    tmask = tcap - 1
    for t in range(n_tokens):
        h = _bytes_hash(tbuf, toff[t], toff[t + 1]) & tmask
        while ttab[h] != _EMPTY:
            h = (h + 1) & tmask
        ttab[h] = t
    ntok = n_tokens
    nbuf = toff[n_tokens]

    max_merges = max(vocab_size - n_tokens, 0) * 2 + 16
    out_l = np.empty(max_merges, np.int32)
    out_r = np.empty(max_merges, np.int32)
    out_n = np.empty(max_merges, np.int32)
    nm = 0
    occ = np.empty(1024, np.int32)
    touched = np.empty(1024, np.int32)

    while ntok < vocab_size and hn > 0 and nm < max_merges:
        c, k, pid = hc[0], hk[0], hp[0]
        _heap_pop(hc, hk, hp, hn)
        hn -= 1
        if c != pcnt[pid]:
            if pcnt[pid] > 0:
                _heap_push(hc, hk, hp, hn, pcnt[pid], pkey[pid], pid)
                hn += 1
            continue
        if c < 1 or c < min_frequency:
            break
        a = np.int32(k >> 32)
        b = np.int32(k & 0xFFFFFFFF)

        # the merged token's text: reuse an existing token with the same text
        la = toff[a + 1] - toff[a]
        lb = toff[b + 1] - toff[b]
        if nbuf + la + lb > tbuf.shape[0]:
            nb = np.empty(max(2 * tbuf.shape[0], nbuf + la + lb), np.uint8)
            nb[:nbuf] = tbuf[:nbuf]
            tbuf = nb
        tbuf[nbuf:nbuf + la] = tbuf[toff[a]:toff[a + 1]]
        tbuf[nbuf + la:nbuf + la + lb] = tbuf[toff[b]:toff[b + 1]]
        h = _bytes_hash(tbuf, nbuf, nbuf + la + lb) & tmask
        new = -1
        while ttab[h] != _EMPTY:
            t = ttab[h]
            if toff[t + 1] - toff[t] == la + lb:
                same = True
                for q in range(la + lb):
                    if tbuf[toff[t] + q] != tbuf[nbuf + q]:
                        same = False
                        break
                if same:
                    new = t
                    break
            h = (h + 1) & tmask
        if new == -1:
            new = ntok
            ttab[h] = new
            nbuf += la + lb
            toff[ntok + 1] = nbuf
            ntok += 1
        out_l[nm] = a
        out_r[nm] = b
        out_n[nm] = new
        nm += 1

        # the positions where the pair occurs, left to right (matters only when a == b)
        no = 0
        i = phead[pid]
        while i != _EMPTY:
            if no == occ.shape[0]:
                occ = _grow(occ, 0)
            occ[no] = i
            no += 1
            i = pos[i, _ONXT]
        if a == b:
            occ[:no].sort()

        nt = 0
        for oi in range(no):
            i = occ[oi]
            if pos[i, _PAIR] != pid:
                continue  # consumed by the previous overlapping merge (a a a)
            j = pos[i, _NXT]
            cnt = wcount[pos[i, _WID]]
            p = pos[i, _PRV]
            nn = pos[j, _NXT]
            # unregister the pairs that disappear: (p, a), (a, b), (b, nn)
            for q in (p, i, j):
                if q == -1 or pos[q, _PAIR] == _EMPTY:
                    continue
                qp = pos[q, _PAIR]
                pcnt[qp] -= cnt
                on, op = pos[q, _ONXT], pos[q, _OPRV]
                if op != _EMPTY:
                    pos[op, _ONXT] = on
                else:
                    phead[qp] = on
                if on != _EMPTY:
                    pos[on, _OPRV] = op
                pos[q, _ONXT] = _EMPTY
                pos[q, _OPRV] = _EMPTY
                pos[q, _PAIR] = _EMPTY
            pos[i, _SYM] = new
            pos[j, _SYM] = -1
            pos[i, _NXT] = nn
            if nn != -1:
                pos[nn, _PRV] = i
            # register the pairs that appear: (p, new) at p, (new, nn) at i
            for side in range(2):
                q = p if side == 0 else i
                if q == -1 or (side == 1 and nn == -1):
                    continue
                key = (np.int64(pos[q, _SYM]) << 32) | pos[pos[q, _NXT], _SYM]
                qp = _find(table, pkey, key)
                if qp == _EMPTY:
                    table, pkey, pcnt, phead, ptouch = _new_pair(key, table, pkey, pcnt, phead,
                                                                 ptouch, npairs)
                    qp = npairs
                    npairs += 1
                _link(q, qp, cnt, pcnt, pos, phead)
                if ptouch[qp] == 0:
                    ptouch[qp] = 1
                    if nt == touched.shape[0]:
                        touched = _grow(touched, 0)
                    touched[nt] = qp
                    nt += 1
        for ti in range(nt):
            qp = touched[ti]
            ptouch[qp] = 0
            if pcnt[qp] > 0:
                if hn == hc.shape[0]:
                    hc = _grow(hc, 0)
                    hk = _grow(hk, 0)
                    hp = _grow(hp, 0)
                _heap_push(hc, hk, hp, hn, pcnt[qp], pkey[qp], qp)
                hn += 1
    return out_l[:nm].copy(), out_r[:nm].copy(), out_n[:nm].copy()


@njit(cache=True)
def merge_table(left, right, new):
    """Hash table for encoding: pair key → rank (index in the merge list; a later duplicate wins)."""
    m = left.shape[0]
    keys = np.empty(m, np.int64)
    for r in range(m):
        keys[r] = (np.int64(left[r]) << 32) | right[r]
    cap = 1024
    while cap < 4 * m:
        cap *= 2
    table = np.full(cap, _EMPTY, np.int32)
    mask = cap - 1
    for r in range(m):
        h = _slot(keys[r], mask)
        while table[h] != _EMPTY and keys[table[h]] != keys[r]:
            h = (h + 1) & mask
        table[h] = r
    return table, keys


@njit(cache=True)
def encode_words(sym, wstart, table, keys, new):
    """Apply merges to each word, lowest rank first, leftmost first (HF's ``Word::merge_all``).

    sym int32[N] initial token ids, word w = sym[wstart[w]:wstart[w+1]].
    Returns (ids, ostart): word w's token ids are ids[ostart[w]:ostart[w+1]].
    """
    nwords = wstart.shape[0] - 1
    n = sym.shape[0]
    out = np.empty(n, np.int32)
    ostart = np.empty(nwords + 1, np.int64)
    maxlen = 1
    for w in range(nwords):
        maxlen = max(maxlen, wstart[w + 1] - wstart[w])
    c = np.empty(maxlen, np.int32)
    nx = np.empty(maxlen, np.int32)
    pv = np.empty(maxlen, np.int32)
    alive = np.empty(maxlen, np.uint8)
    heap = np.empty(3 * maxlen + 1, np.int64)  # rank << 32 | pos, a min-heap
    no = 0
    for w in range(nwords):
        s = wstart[w]
        L = wstart[w + 1] - s
        ostart[w] = no
        for i in range(L):
            c[i] = sym[s + i]
            nx[i] = i + 1 if i + 1 < L else -1
            pv[i] = i - 1
            alive[i] = 1
        hn = 0
        for i in range(L - 1):
            r = _find(table, keys, (np.int64(c[i]) << 32) | c[i + 1])
            if r != _EMPTY:
                hn = _minheap_push(heap, hn, (np.int64(r) << 32) | i)
        while hn > 0:
            top = heap[0]
            hn = _minheap_pop(heap, hn)
            r = np.int32(top >> 32)
            i = np.int32(top & 0xFFFFFFFF)
            if alive[i] == 0 or nx[i] == -1:
                continue
            j = nx[i]
            if ((np.int64(c[i]) << 32) | c[j]) != keys[r]:
                continue  # stale: one of the two symbols was merged since
            c[i] = new[r]
            alive[j] = 0
            nx[i] = nx[j]
            if nx[j] != -1:
                pv[nx[j]] = i
            if pv[i] != -1:
                p = pv[i]
                r2 = _find(table, keys, (np.int64(c[p]) << 32) | c[i])
                if r2 != _EMPTY:
                    hn = _minheap_push(heap, hn, (np.int64(r2) << 32) | p)
            if nx[i] != -1:
                r2 = _find(table, keys, (np.int64(c[i]) << 32) | c[nx[i]])
                if r2 != _EMPTY:
                    hn = _minheap_push(heap, hn, (np.int64(r2) << 32) | i)
        i = 0
        while i != -1 and L > 0:
            out[no] = c[i]
            no += 1
            i = nx[i]
    ostart[nwords] = no
    return out[:no].copy(), ostart


@njit(cache=True, inline="always")
def _minheap_push(heap, n, v):
    if n == heap.shape[0]:
        return n  # cannot happen: at most 3 pushes per merge of a word of length L
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= v:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = v
    return n + 1


@njit(cache=True, inline="always")
def _minheap_pop(heap, n):
    n -= 1
    v = heap[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= v:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = v
    return n


def warm_up() -> None:
    """Load (or compile) the learning kernel from numba's cache on a tiny input."""
    sym = np.array([1, 2, 1, 2], np.int32)
    learn_merges(sym, np.array([0, 4], np.int64), np.array([2], np.int64),
                 np.frombuffer(b"abc", np.uint8).copy(), np.array([0, 1, 2, 3], np.int64), 3, 5, 1)
