"""Numba kernels for fastText model predictions, float for float as fastText computes them.

fastText sums the input rows of a line into ``hidden`` in float32, in the order of its row list
(each token's rows, then the word n-gram buckets), scales by ``float(1.0 / n)``, then takes float32
dot products with the output rows, summed left to right (its build uses no FMA). Doing the same
operations in the same order makes the probabilities equal to fastText's to the last bit or two,
which matters for ``ns``/``ova``: their sigmoid is a 512-step table, so a tiny difference in a dot
product could move a score to the next step.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

SOFTMAX, HS, NS, OVA = 3, 1, 2, 4
_LOG_EPS = 1e-5


def sigmoid_table() -> np.ndarray:
    """fastText's ``t_sigmoid_`` (513 entries over [-8, 8]), built with its float/double mix."""
    i = np.arange(513, dtype=np.float32)
    x = (i * np.float32(16)) / np.float32(512) - np.float32(8)
    return (1.0 / (1.0 + np.exp(-x).astype(np.float64))).astype(np.float32)


@njit(cache=True, inline="always")
def _std_log(x):
    """fastText's ``std_log``: float(log(x + 1e-5)) of a float argument."""
    return np.float32(math.log(np.float64(np.float32(x)) + _LOG_EPS))


@njit(cache=True, inline="always")
def _table_sigmoid(table, x):
    if x < np.float32(-8.0):
        return np.float32(0.0)
    if x > np.float32(8.0):
        return np.float32(1.0)
    i = np.int64((x + np.float32(8.0)) * np.float32(512.0) / np.float32(8.0) / np.float32(2.0))
    return table[i]


@njit(cache=True, inline="always")
def _dot(mat, r, h, scale):
    s = np.float32(0.0)
    row = mat[r]
    for d in range(h.shape[0]):
        s += row[d] * h[d]
    return s * scale[r]


@njit(cache=True, inline="always")
def _add(h, mat, r):
    row = mat[r]
    for d in range(h.shape[0]):
        h[d] += row[d]


@njit(cache=True, inline="always")
def _pruned_row(keys, rows, b):
    """Row of n-gram bucket ``b`` in a pruned model (binary search), -1 if it was dropped."""
    lo, hi = 0, keys.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < b:
            lo = mid + 1
        else:
            hi = mid
    if lo < keys.shape[0] and keys[lo] == b:
        return np.int64(rows[lo])
    return np.int64(-1)


@njit(cache=True, nogil=True)
def predict_lines(line_ptr, seq, nwords, nvocab, vptr, vids, vhash, optr, oids, ohash, olabel,
                  ngrams, bucket, pruned, pkeys, prows, inp, out, scale, loss, table,
                  tree_left, tree_right, result):
    """``result[i, j]``: fastText's reported probability of label j for line i.

    Tokens ``seq[line_ptr[i]:line_ptr[i+1]]`` are dictionary ids (< ``nvocab``; ids >= ``nwords``
    are labels and are skipped) or ``nvocab + k`` for the batch's k-th out-of-vocabulary token
    (bag ``oids[optr[k]:optr[k+1]]``, hash ``ohash[k]``, ``olabel[k]`` = a label-like token).
    Word n-grams hash the tokens' int32 hashes as fastText's ``addWordNgrams`` (sign-extended to
    uint64), modulo ``bucket``, through the ``pruned`` bucket map when there is one. A line
    without rows gets zeros (fastText predicts nothing for it).
    """
    n = line_ptr.shape[0] - 1
    dim = inp.shape[1]
    nl = out.shape[0]
    hidden = np.empty(dim, np.float32)
    scores = np.empty(nl, np.float32)
    node_score = np.empty(max(2 * nl - 1, 1), np.float32)
    longest = 0
    for i in range(n):
        longest = max(longest, line_ptr[i + 1] - line_ptr[i])
    hashes = np.empty(longest, np.int64)
    for i in range(n):
        hidden[:] = 0.0
        count = 0
        nh = 0
        for t in range(line_ptr[i], line_ptr[i + 1]):
            tok = seq[t]
            if tok < nvocab:
                if tok >= nwords:
                    continue
                for k in range(vptr[tok], vptr[tok + 1]):
                    _add(hidden, inp, vids[k])
                count += vptr[tok + 1] - vptr[tok]
                hashes[nh] = vhash[tok]
            else:
                o = tok - nvocab
                if olabel[o]:
                    continue
                for k in range(optr[o], optr[o + 1]):
                    _add(hidden, inp, oids[k])
                count += optr[o + 1] - optr[o]
                hashes[nh] = ohash[o]
            nh += 1
        if bucket > 0:
            for a in range(nh):
                h = np.uint64(hashes[a])
                for b in range(a + 1, min(nh, a + ngrams)):
                    h = h * np.uint64(116049371) + np.uint64(hashes[b])
                    g = np.int64(h % np.uint64(bucket))
                    if pruned:
                        g = _pruned_row(pkeys, prows, g)
                        if g < 0:
                            continue
                    _add(hidden, inp, nwords + g)
                    count += 1
        if count == 0:
            result[i, :] = 0.0
            continue
        inv = np.float32(1.0 / count)
        for d in range(dim):
            hidden[d] *= inv
        if loss == HS:
            root = 2 * nl - 2
            node_score[root] = 0.0
            for node in range(root, nl - 1, -1):
                f = _dot(out, node - nl, hidden, scale)
                f = np.float32(1.0 / np.float64(np.float32(1.0) + np.exp(-f)))
                s = node_score[node]
                node_score[tree_left[node]] = s + _std_log(np.float32(1.0 - np.float64(f)))
                node_score[tree_right[node]] = s + _std_log(f)
            for j in range(nl):
                result[i, j] = np.exp(node_score[j])
            continue
        for j in range(nl):
            scores[j] = _dot(out, j, hidden, scale)
        if loss == SOFTMAX:
            top = scores[0]
            for j in range(nl):
                top = max(top, scores[j])
            z = np.float32(0.0)
            for j in range(nl):
                scores[j] = np.exp(scores[j] - top)
                z += scores[j]
            for j in range(nl):
                scores[j] /= z
        else:
            for j in range(nl):
                scores[j] = _table_sigmoid(table, scores[j])
        for j in range(nl):
            result[i, j] = np.exp(_std_log(scores[j]))
