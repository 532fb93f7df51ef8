"""Numba kernels of the NB-weighted logistic regression (``nb``): arrays and scalars only.

Lines are CSR: ``line_ptr`` into ``words`` (ids into a word table with ``word_col`` = the word's
feature column or -1, and ``hashes`` = its fastText hash). A line's features are its words and
its word n-grams (2..ngrams) hashed as the fastText-style model hashes them
(``kernels._ngram_step``, bucket = hash % buckets, raw id ``V + bucket``), each counted once
(binarized): ``raw_features`` sorts and de-duplicates per line for training. Prediction
(``predict_scores``) skips the CSR: it maps a batch's token ids straight to columns through the
model's bucket -> column map and de-duplicates by marking, so nothing per batch is sorted.

Serial and without fastmath on purpose: every sum runs in one fixed order, so a model is
bit-identical whatever ``--threads`` is (threads only run separate one-vs-rest problems).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .kernels import _ngram_step


@njit(cache=True, nogil=True)
def raw_features(line_ptr, words, word_col, hashes, ngrams, buckets, V, out_ptr, out_idx):
    """Fill out_ptr [n + 1] / out_idx (room for len(words) * ngrams) with each line's sorted,
    distinct raw feature ids; returns how many were written."""
    n = line_ptr.shape[0] - 1
    buf = np.empty(256, np.int64)
    k = 0
    out_ptr[0] = 0
    for i in range(n):
        a0, a1 = line_ptr[i], line_ptr[i + 1]
        m = 0
        for a in range(a0, a1):
            need = m + ngrams
            if need > buf.shape[0]:
                grown = np.empty(2 * need, np.int64)
                grown[:m] = buf[:m]
                buf = grown
            c = word_col[words[a]]
            if c >= 0:
                buf[m] = c
                m += 1
            if ngrams > 1 and buckets > 0:
                h = np.uint64(hashes[words[a]])
                for b in range(a + 1, min(a1, a + ngrams)):
                    h = _ngram_step(h, hashes[words[b]])
                    buf[m] = V + np.int64(h % np.uint64(buckets))
                    m += 1
        if m:
            s = np.sort(buf[:m])
            out_idx[k] = s[0]
            k += 1
            for t in range(1, m):
                if s[t] != s[t - 1]:
                    out_idx[k] = s[t]
                    k += 1
        out_ptr[i + 1] = k
    return k


@njit(cache=True, nogil=True)
def column_counts(ptr, idx, selected, out):
    """out[j] += 1 for every selected line (selected[i] != 0) holding feature j."""
    for i in range(ptr.shape[0] - 1):
        if selected[i]:
            for k in range(ptr[i], ptr[i + 1]):
                out[idx[k]] += 1.0


@njit(cache=True, nogil=True)
def logistic(ptr, idx, v, b, y, resid, colsum):
    """Logistic loss sum_i log(1 + exp(m_i)) - y_i m_i at margins m_i = b + sum_{j in i} v[j];
    resid[i] = sigmoid(m_i) - y_i and colsum[j] = sum of resid over the lines holding j
    (the gradient's data part). Returns the loss sum."""
    n = ptr.shape[0] - 1
    loss = 0.0
    for j in range(colsum.shape[0]):
        colsum[j] = 0.0
    for i in range(n):
        m = b
        for k in range(ptr[i], ptr[i + 1]):
            m += v[idx[k]]
        if m > 0:
            e = np.exp(-m)
            loss += m + np.log1p(e) - y[i] * m
            p = 1.0 / (1.0 + e)
        else:
            e = np.exp(m)
            loss += np.log1p(e) - y[i] * m
            p = e / (1.0 + e)
        r = p - y[i]
        resid[i] = r
        for k in range(ptr[i], ptr[i + 1]):
            colsum[idx[k]] += r
    return loss


@njit(cache=True, nogil=True)
def predict_scores(line_ptr, ids, hashA, hashB, ngrams, buckets, bucket_col, v, bias, out):
    """out[i, c] = bias[c] + the sum of v[j, c] over line i's distinct feature columns j, in
    the order they first occur. ``ids``: a word's column (< V =
    len(hashA)) or V + its place among the batch's unknown words (``hashB``: their hashes; they
    are no feature but take part in n-grams); an n-gram's column is ``bucket_col[bucket]`` (-1:
    no training line hashed to it, skipped). A line's features are de-duplicated by marking."""
    K = bias.shape[0]
    V = hashA.shape[0]
    seen = np.zeros(v.shape[0], np.bool_)
    buf = np.empty(256, np.int64)
    for i in range(line_ptr.shape[0] - 1):
        a0, a1 = line_ptr[i], line_ptr[i + 1]
        m = 0
        for a in range(a0, a1):
            if m + ngrams > buf.shape[0]:
                grown = np.empty(2 * (m + ngrams), np.int64)
                grown[:m] = buf[:m]
                buf = grown
            t = ids[a]
            if t < V:
                if not seen[t]:
                    seen[t] = True
                    buf[m] = t
                    m += 1
                h = np.uint64(hashA[t])
            else:
                h = np.uint64(hashB[t - V])
            if ngrams > 1 and buckets > 0:
                for b in range(a + 1, min(a1, a + ngrams)):
                    u = ids[b]
                    h = _ngram_step(h, hashA[u] if u < V else hashB[u - V])
                    j = bucket_col[np.int64(h % np.uint64(buckets))]
                    if j >= 0 and not seen[j]:
                        seen[j] = True
                        buf[m] = j
                        m += 1
        for c in range(K):
            out[i, c] = bias[c]
        for q in range(m):
            j = buf[q]
            seen[j] = False
            for c in range(K):
                out[i, c] += v[j, c]


@njit(cache=True, nogil=True)
def scores(ptr, idx, v, bias, out):
    """out[i, c] = bias[c] + sum of v[j, c] over CSR line i's feature columns j (cross-validation
    scores lines already turned into features)."""
    K = bias.shape[0]
    for i in range(ptr.shape[0] - 1):
        for c in range(K):
            out[i, c] = bias[c]
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            for c in range(K):
                out[i, c] += v[j, c]
