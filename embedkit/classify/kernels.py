"""Numba kernels of the supervised classifier: only arrays and scalars cross this boundary.

A line's input rows are, for each word, its "bag" (``bag[ptr[w]:ptr[w+1]]``: its own row when it is
in the vocabulary, then its char n-gram / BPE piece rows), followed by its hashed word n-grams
(fastText's ``Dictionary::addWordNgrams``). Words with ids ``>= nA`` take their bag and hash from
the second table (``ptrB``, ``bagB``, ``hashB``): prediction puts the batch's out-of-vocabulary
words there. A negative row ``-(b + 1)`` is an n-gram bucket no training line hashed to: it is not
stored and counts in the mean as a zero row (in fastText it keeps its initial value: noise of
mean zero, or 0 for most rows when fastText trains with fewer than 10 threads).

The update is fastText's ``Model::update``: hidden = mean of the rows, the loss adds
``lr * (label - p) * output_row`` into a gradient buffer while updating output rows in place, and
the gradient / number of rows is added to every input row (Hogwild across threads). ns / hs / ova
use fastText's 512-entry sigmoid table; softmax an exact, max-shifted softmax.

fastmath leaves out ``nnan``/``ninf`` on purpose: divergence must be seen.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..wordvec.kernels import _negative, _u32, _xorshift

FASTMATH = {"reassoc", "contract", "nsz", "arcp", "afn"}
SOFTMAX, NS, HS, OVA = 0, 1, 2, 3
OK, DIVERGED, STOPPED = 0, 1, 2
SIGMOID_TABLE = 512
MAX_SIGMOID = 8.0
NGRAM_MUL = 116049371
_REDRAWS = 64


def sigmoid_table() -> np.ndarray:
    """fastText's ``t_sigmoid_``: sigmoid at SIGMOID_TABLE + 1 points over [-8, 8]."""
    x = (np.arange(SIGMOID_TABLE + 1, dtype=np.float32) * np.float32(2 * MAX_SIGMOID)
         / np.float32(SIGMOID_TABLE) - np.float32(MAX_SIGMOID))
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


@njit(cache=True, inline="always")
def _sigmoid(x, table):
    if x != x:
        return np.float32(np.nan)
    if x < -MAX_SIGMOID:
        return np.float32(0.0)
    if x > MAX_SIGMOID:
        return np.float32(1.0)
    return table[int((x + MAX_SIGMOID) * (SIGMOID_TABLE / MAX_SIGMOID / 2))]


@njit(cache=True, inline="always")
def word_hash(data, lo, hi):
    """fastText's ``Dictionary::hash`` (FNV-1a over sign-extended bytes) of ``data[lo:hi]``,
    sign-extended to int64 as fastText's ``int32`` hash vector holds it."""
    mask = np.uint64(0xFFFFFFFF)
    h = np.uint64(2166136261)
    for i in range(lo, hi):
        b = np.uint64(data[i])
        if b >= np.uint64(0x80):
            b |= np.uint64(0xFFFFFF00)
        h = ((h ^ b) * np.uint64(16777619)) & mask
    v = np.int64(h)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@njit(cache=True, nogil=True)
def word_hashes(data, offsets):
    """``word_hash`` of each word ``data[offsets[w]:offsets[w+1]]``."""
    n = offsets.shape[0] - 1
    out = np.empty(n, np.int64)
    for w in range(n):
        out[w] = word_hash(data, offsets[w], offsets[w + 1])
    return out


@njit(cache=True, inline="always")
def _ngram_step(h, hj):
    """One step of ``h = h * 116049371 + hashes[j]`` in fastText's uint64 arithmetic."""
    return h * np.uint64(NGRAM_MUL) + np.uint64(hj)


@njit(cache=True, nogil=True)
def mark_ngrams(ids, hashes, ngrams, buckets, used):
    """used[b] = True for every word n-gram bucket of every spooled line (ids: see dictionary)."""
    n = ids.shape[0]
    line = np.empty(64, np.int64)
    i = 0
    while i < n:
        m = 0
        while ids[i] != -1:
            v = ids[i]
            if v >= 0:
                if m == line.shape[0]:
                    grown = np.empty(2 * m, np.int64)
                    grown[:m] = line
                    line = grown
                line[m] = hashes[v]
                m += 1
            i += 1
        i += 1
        for a in range(m):
            h = np.uint64(line[a])
            for b in range(a + 1, min(m, a + ngrams)):
                h = _ngram_step(h, line[b])
                used[np.int64(h % np.uint64(buckets))] = True


@njit(cache=True, inline="always")
def _line_rows(words, m, nA, ptrA, bagA, hashA, ptrB, bagB, hashB, ngrams, buckets, bucket_row,
               rows, hbuf):
    """Fill rows[] with the input rows of a line of m words; return how many."""
    r = 0
    for i in range(m):
        w = words[i]
        if w < nA:
            for k in range(ptrA[w], ptrA[w + 1]):
                rows[r] = bagA[k]
                r += 1
            hbuf[i] = hashA[w]
        else:
            w -= nA
            for k in range(ptrB[w], ptrB[w + 1]):
                rows[r] = bagB[k]
                r += 1
            hbuf[i] = hashB[w]
    if ngrams > 1 and buckets > 0:
        for a in range(m):
            h = np.uint64(hbuf[a])
            for b in range(a + 1, min(m, a + ngrams)):
                h = _ngram_step(h, hbuf[b])
                bk = np.int64(h % np.uint64(buckets))
                row = bucket_row[bk]
                rows[r] = row if row >= 0 else -(bk + 1)
                r += 1
    return r


@njit(cache=True, inline="always")
def _hidden(rows, nr, win, hidden):
    """Mean of the rows; an unstored bucket (r < 0) counts as a zero row."""
    dim = hidden.shape[0]
    for d in range(dim):
        hidden[d] = 0.0
    for i in range(nr):
        r = rows[i]
        if r >= 0:
            for d in range(dim):
                hidden[d] += win[r, d]
    inv = np.float32(1.0 / nr)
    for d in range(dim):
        hidden[d] *= inv


@njit(cache=True, inline="always")
def _dot(wout, j, hidden):
    s = np.float32(0.0)
    for d in range(hidden.shape[0]):
        s += wout[j, d] * hidden[d]
    return s


@njit(cache=True, inline="always")
def _binary(wout, j, hidden, grad, positive, lr, table):
    """fastText's ``BinaryLogisticLoss::binaryLogistic``; returns the loss (inf: diverged)."""
    f = _dot(wout, j, hidden)
    if not abs(f) < 1e30:
        return np.inf
    score = _sigmoid(f, table)
    alpha = np.float32(lr * ((1.0 if positive else 0.0) - score))
    for d in range(hidden.shape[0]):
        grad[d] += alpha * wout[j, d]
        wout[j, d] += alpha * hidden[d]
    if positive:
        return -np.log(score + 1e-5)
    return -np.log(1.0 - score + 1e-5)


@njit(cache=True, inline="always")
def _softmax(wout, hidden, out):
    """out = softmax(wout @ hidden); False if a score is not finite."""
    L = wout.shape[0]
    mx = np.float32(-np.inf)
    for j in range(L):
        s = _dot(wout, j, hidden)
        if not abs(s) < 1e30:
            return False
        out[j] = s
        mx = max(mx, s)
    z = np.float32(0.0)
    for j in range(L):
        out[j] = np.exp(out[j] - mx)
        z += out[j]
    for j in range(L):
        out[j] /= z
    return True


@njit(cache=True, inline="always")
def _update(loss, labels, nl, x, wout, hidden, grad, out, lr, neg, negtab, hs_ptr, hs_node,
            hs_code, table):
    """The loss's forward + backward for one example; returns (loss value, rng state)."""
    L = wout.shape[0]
    if loss == OVA:
        total = 0.0
        for j in range(L):
            pos = False
            for t in range(nl):
                if labels[t] == j:
                    pos = True
            total += _binary(wout, j, hidden, grad, pos, lr, table)
        return total, x
    t = 0
    if nl > 1:
        x = _xorshift(x)
        t = _u32(x) % nl
    target = labels[t]
    if loss == SOFTMAX:
        if not _softmax(wout, hidden, out):
            return np.inf, x
        for j in range(L):
            alpha = np.float32(lr * ((1.0 if j == target else 0.0) - out[j]))
            for d in range(hidden.shape[0]):
                grad[d] += alpha * wout[j, d]
                wout[j, d] += alpha * hidden[d]
        return -np.log(out[target] + 1e-5), x
    if loss == NS:
        total = _binary(wout, target, hidden, grad, True, lr, table)
        if L > 1:
            for _ in range(neg):
                for _r in range(_REDRAWS):
                    x = _xorshift(x)
                    j = _negative(x, negtab)
                    if j != target:
                        break
                if j != target:
                    total += _binary(wout, j, hidden, grad, False, lr, table)
        return total, x
    total = 0.0
    for k in range(hs_ptr[target], hs_ptr[target + 1]):
        total += _binary(wout, hs_node[k], hidden, grad, hs_code[k] != 0, lr, table)
    return total, x


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def train_lines(ids, starts, label_remap, ptr, bag, hashes, ngrams, buckets, bucket_row, win,
                wout, loss, neg, negtab, hs_ptr, hs_node, hs_code, table, lr0, total_tokens,
                progress, tid, rng, losses, stop, longest, maxbag):
    """Train on the spooled lines of ``ids`` that start at ``starts`` (in that order; labels
    ``-(l+2)``, words ``>= 0``, ``-1`` ends a line).

    ``progress[tid]`` counts this thread's tokens; lr = lr0 * (1 - sum(progress) / total_tokens),
    as fastText. ``losses[tid] += (loss sum, examples)``. Returns OK, DIVERGED or STOPPED.
    """
    dim = win.shape[1]
    L = wout.shape[0]
    hidden = np.empty(dim, np.float32)
    grad = np.empty(dim, np.float32)
    out = np.empty(L, np.float32)
    words = np.empty(longest, np.int64)
    hbuf = np.empty(longest, np.int64)
    rows = np.empty(longest * (maxbag + max(ngrams - 1, 0)), np.int64)
    labels = np.empty(L, np.int64)
    empty_i = np.empty(0, np.int64)
    empty_b = np.empty(0, np.int64)
    nA = ptr.shape[0] - 1
    nthreads = progress.shape[0]
    x = rng[tid]
    status = OK
    lsum = 0.0
    lcount = 0
    for li in range(starts.shape[0]):
        if stop[0] != 0:
            status = STOPPED
            break
        i = starts[li]
        m = 0
        nl = 0
        ntok = 0
        while ids[i] != -1:
            v = ids[i]
            if v >= 0:
                words[m] = v
                m += 1
            else:
                lab = label_remap[-v - 2]
                if lab >= 0:
                    labels[nl] = lab
                    nl += 1
            ntok += 1
            i += 1
        done = 0
        for k in range(nthreads):
            done += progress[k]
        progress[tid] += ntok
        lr = lr0 * (1.0 - done / total_tokens)
        if lr < 0.0:
            lr = 0.0
        if nl == 0:
            continue
        nr = _line_rows(words, m, nA, ptr, bag, hashes, empty_i, empty_b, empty_i, ngrams,
                        buckets, bucket_row, rows, hbuf)
        if nr == 0:
            continue
        _hidden(rows, nr, win, hidden)
        for d in range(dim):
            grad[d] = 0.0
        lv, x = _update(loss, labels, nl, x, wout, hidden, grad, out, lr, neg, negtab, hs_ptr,
                        hs_node, hs_code, table)
        if not np.isfinite(lv):
            status = DIVERGED
            break
        lsum += lv
        lcount += 1
        inv = np.float32(1.0 / nr)
        for d in range(dim):
            grad[d] *= inv
        for k in range(nr):
            r = rows[k]
            for d in range(dim):
                win[r, d] += grad[d]
    rng[tid] = x
    losses[tid, 0] += lsum
    losses[tid, 1] += lcount
    return status


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def predict_batch(line_ptr, words, ptrA, bagA, hashA, ptrB, bagB, hashB, ngrams, buckets,
                  bucket_row, win, wout, loss, hs_ptr, hs_node, hs_code, table, maxbag, out):
    """out[i] = label probabilities of line i (words[line_ptr[i]:line_ptr[i+1]]), as fastText
    predicts: softmax; sigmoid per label (ns, ova); hs: exp(sum log(p + 1e-5)) along the path."""
    dim = win.shape[1]
    L = wout.shape[0]
    nA = ptrA.shape[0] - 1
    longest = 1
    for i in range(line_ptr.shape[0] - 1):
        longest = max(longest, line_ptr[i + 1] - line_ptr[i])
    rows = np.empty(longest * (maxbag + max(ngrams - 1, 0)), np.int64)
    hbuf = np.empty(longest, np.int64)
    hidden = np.empty(dim, np.float32)
    node = np.empty(max(L, 1), np.float32)
    for i in range(line_ptr.shape[0] - 1):
        a = line_ptr[i]
        m = line_ptr[i + 1] - a
        nr = _line_rows(words[a:], m, nA, ptrA, bagA, hashA, ptrB, bagB, hashB, ngrams, buckets,
                        bucket_row, rows, hbuf)
        if nr == 0:
            for j in range(L):
                out[i, j] = 0.0
            continue
        _hidden(rows, nr, win, hidden)
        if loss == SOFTMAX:
            if not _softmax(wout, hidden, out[i]):
                for j in range(L):
                    out[i, j] = np.nan
        elif loss == HS:
            for j in range(L - 1):
                node[j] = 1.0 / (1.0 + np.exp(-_dot(wout, j, hidden)))
            for j in range(L):
                s = 0.0
                for k in range(hs_ptr[j], hs_ptr[j + 1]):
                    f = node[hs_node[k]]
                    s += np.log((f if hs_code[k] != 0 else 1.0 - f) + 1e-5)
                out[i, j] = np.exp(s)
        else:
            for j in range(L):
                out[i, j] = _sigmoid(_dot(wout, j, hidden), table)
