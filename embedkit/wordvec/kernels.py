"""Numba kernels for word-vector training: only arrays and scalars cross this boundary.

The model is fastText's: one input matrix ``win`` whose first V rows are words and whose next rows
are subwords (char n-gram buckets or BPE pieces), one output matrix ``wout`` [V, D]. A word's
"bag" is ``sub[ptr[w]:ptr[w + 1]]`` (its own row first, then its subword rows), so the same kernel
trains with and without subwords. A bag is a plain mean, or, with ``wts`` (one weight per entry of
``sub``; ``--bpe-bag weighted``), a weighted one; an empty ``wts`` keeps the plain loops.

Randomness is a per-thread xorshift64* state passed in and returned, so ``threads=1`` with a fixed
seed is bit-reproducible. Sigmoid and log-sigmoid come from lookup tables over [-MAX_EXP, MAX_EXP]
(as word2vec/fastText do); a score outside that range that is not finite stops the kernel with
``DIVERGED`` so Python can tell the user to lower the learning rate.

fastmath leaves out ``nnan``/``ninf`` on purpose: the divergence test must see NaN and inf.
"""
from __future__ import annotations

import numpy as np
from numba import njit

FASTMATH = {"reassoc", "contract", "nsz", "arcp", "afn"}
MAX_EXP = 8.0
TABLE_SIZE = 2048
MAX_SENT = 10_000  # kept tokens per sentence (gensim's limit); a longer line goes on as a new one
OK, DIVERGED, STOPPED = 0, 1, 2
_BIG = 1e30
_REDRAWS = 16
UNWEIGHTED = np.zeros(0, np.float32)  # ``wts`` for bags whose entries all weigh 1
NO_HOT = np.zeros(0, np.int32)  # ``hot`` when every thread writes the shared rows in place
HOT_SYNC = 256  # positions between a thread's merges of its private hot rows


def sigmoid_tables() -> tuple[np.ndarray, np.ndarray]:
    """sigmoid(x) and log(sigmoid(x)) at TABLE_SIZE + 1 points evenly spaced over [-MAX_EXP, MAX_EXP]."""
    x = np.linspace(-MAX_EXP, MAX_EXP, TABLE_SIZE + 1)
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


@njit(cache=True, inline="always")
def _xorshift(x):
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    return x


@njit(cache=True, inline="always")
def _u32(x):
    """The high 32 bits of the xorshift64* output, as a non-negative int64."""
    return np.int64((x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(32))


@njit(cache=True, inline="always")
def _negative(x, table):
    """Draw from a Walker alias table with the 64 bits of one xorshift64* output."""
    r = x * np.uint64(0x2545F4914F6CDD1D)
    i = np.int64(((r >> np.uint64(32)) * np.uint64(table.shape[0])) >> np.uint64(32))
    e = table[i]
    if (r & np.uint64(0xFFFFFFFF)) <= np.uint64(e & 0xFFFFFFFF):
        return i
    return np.int64(e >> 32)


@njit(cache=True)
def alias_table(p):
    """Vose's alias method over probabilities p (sum 1): int64 entries ``alias << 32 | threshold``."""
    n = p.shape[0]
    scaled = p * n
    alias = np.arange(n)
    thr = np.full(n, 1.0)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        l = large[nl - 1]
        thr[s] = scaled[s]
        alias[s] = l
        scaled[l] = (scaled[l] + scaled[s]) - 1.0
        if scaled[l] < 1.0:
            nl -= 1
            small[ns] = l
            ns += 1
    out = np.empty(n, np.int64)
    for i in range(n):
        t = min(int(thr[i] * 4294967296.0), 4294967295)
        out[i] = (alias[i] << 32) | t
    return out


@njit(cache=True)
def seed_state(seed, stream):
    """A non-zero xorshift state from (seed, stream) via splitmix64."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z += np.uint64(stream + 1) * np.uint64(0xD1B54A32D192ED03)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    if z == np.uint64(0):
        z = np.uint64(0x9E3779B97F4A7C15)
    return z


@njit(cache=True, nogil=True)
def fill_uniform(mat, seed, stream, scale):
    """mat[...] = uniform(-scale, scale), deterministic for (seed, stream)."""
    flat = mat.reshape(-1)
    x = seed_state(seed, stream)
    inv = scale * 2.0 / 4294967296.0
    for i in range(flat.shape[0]):
        x = _xorshift(x)
        flat[i] = np.float32(_u32(x) * inv - scale)


@njit(cache=True)
def _word_ngram_rows(data, start, end, minn, maxn, buckets, first_row, ids, k):
    """Write ``<word>``'s hashed n-gram rows into ids[k:] (unless ids is empty); return the end."""
    write = ids.shape[0] > 0
    mask = np.uint64(0xFFFFFFFF)
    for i in range(start, end):
        if (data[i] & 0xC0) == 0x80:
            continue
        h = np.uint64(2166136261)
        j = i
        n = 1
        while j < end and n <= maxn:
            while True:
                b = np.uint64(data[j])
                if b >= np.uint64(0x80):
                    b |= np.uint64(0xFFFFFF00)
                h = ((h ^ b) * np.uint64(16777619)) & mask
                j += 1
                if j >= end or (data[j] & 0xC0) != 0x80:
                    break
            if n >= minn and not (n == 1 and (i == start or j == end)):
                if write:
                    ids[k] = first_row + np.int64(h) % buckets
                k += 1
            n += 1
    return k


@njit(cache=True)
def fnv1a_ngram_rows(data, offsets, minn, maxn, buckets, first_row):
    """fastText's char n-grams of every word, hashed: CSR ``(ptr, ids)`` with each word's own row first.

    ``data[offsets[w]:offsets[w+1]]`` is the UTF-8 of ``<word>``; word w's bag is
    ``[w] + [first_row + fnv1a(g) % buckets for g in ngrams]`` in the order of
    ``embedkit.subwords.char_ngrams`` (FNV-1a extended byte by byte over sign-extended bytes).
    """
    nw = offsets.shape[0] - 1
    ptr = np.zeros(nw + 1, np.int64)
    empty = np.empty(0, np.int32)
    use = maxn > 0 and buckets > 0
    for w in range(nw):
        k = 1
        if use:
            k = _word_ngram_rows(data, offsets[w], offsets[w + 1], minn, maxn, buckets, first_row, empty, 1)
        ptr[w + 1] = ptr[w] + k
    ids = np.empty(ptr[nw], np.int32)
    for w in range(nw):
        ids[ptr[w]] = w
        if use:
            _word_ngram_rows(data, offsets[w], offsets[w + 1], minn, maxn, buckets, first_row, ids,
                             ptr[w] + 1)
    return ptr, ids


@njit(cache=True, nogil=True)
def all_finite(mat):
    """True if no NaN/inf (without numpy's full-size temporary boolean array)."""
    flat = mat.reshape(-1)
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return False
    return True


@njit(cache=True, nogil=True)
def bag_means(win, ptr, sub, wts, out):
    """out[w] = (weighted) mean of win rows in word w's bag (fastText's word vectors)."""
    dim = win.shape[1]
    for w in range(out.shape[0]):
        a, b = ptr[w], ptr[w + 1]
        vec = out[w]
        vec[:] = 0.0
        inv = np.float32(1.0 / _add_bag(vec, win, sub, wts, a, b))
        for d in range(dim):
            vec[d] *= inv


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _add_row(dst, mat, r):
    """dst += mat[r] (a row view keeps the loop a plain vectorized stream)."""
    src = mat[r]
    for d in range(dst.shape[0]):
        dst[d] += src[d]


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _add_to_row(mat, r, src):
    """mat[r] += src."""
    dst = mat[r]
    for d in range(src.shape[0]):
        dst[d] += src[d]


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _add_bag(dst, win, sub, wts, a, b):
    """dst += the rows of the bag ``sub[a:b]``, each times its weight ``wts[k]`` (``wts`` empty:
    every weight is 1); returns the sum of the weights."""
    if wts.shape[0] == 0:
        for k in range(a, b):
            _add_row(dst, win, sub[k])
        return float(b - a)
    total = 0.0
    for k in range(a, b):
        src = win[sub[k]]
        f = wts[k]
        total += f
        for d in range(dst.shape[0]):
            dst[d] += f * src[d]
    return total


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _update_bag(win, sub, wts, a, b, src):
    """Every row of the bag ``sub[a:b]`` += its weight times ``src`` (fastText: each row gets the
    whole gradient, so a weight-w row moves as w copies of it would)."""
    if wts.shape[0] == 0:
        for k in range(a, b):
            _add_to_row(win, sub[k], src)
        return
    for k in range(a, b):
        dst = win[sub[k]]
        f = wts[k]
        for d in range(src.shape[0]):
            dst[d] += f * src[d]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _sync_hot(win, hot, first, snap, fresh):
    """Merge this thread's private copies of the hot rows (``win[first + s]`` for shared row
    ``hot[s]``) into the shared rows, then refresh them (``fresh``: only copy the shared rows in).

    Rows in most bags (``s⟩``, a frequent word's own row) are written by every thread at nearly
    every step, and each lock-free Hogwild write then costs a cache-line transfer. A private copy
    takes a thread's updates for ``HOT_SYNC`` positions; the merge adds what it moved since the
    last one, so no thread's update is lost and the other threads' arrive at each merge."""
    for s in range(hot.shape[0]):
        shared = win[hot[s]]
        mine = win[first + s]
        last = snap[s]
        for d in range(shared.shape[0]):
            if not fresh:
                shared[d] += mine[d] - last[d]
            mine[d] = shared[d]
            last[d] = shared[d]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _ns_update(hidden, grad, target, negative, wout, negtab, x, lr, sig, logsig):
    """One positive + ``negative`` sampled targets: updates wout, accumulates grad (dL/dhidden · -lr).

    Returns (rng state, loss, status).
    """
    dim = hidden.shape[0]
    scale = TABLE_SIZE / (2.0 * MAX_EXP)
    loss = 0.0
    for s in range(negative + 1):
        if s == 0:
            t = target
            label = 1.0
        else:
            t = target
            for _ in range(_REDRAWS):  # as fastText: a negative equal to the target is drawn again
                x = _xorshift(x)
                t = _negative(x, negtab)
                if t != target:
                    break
            if t == target:  # only when the target is nearly all of the distribution
                continue
            label = 0.0
        f = np.float32(0.0)
        for d in range(dim):
            f += hidden[d] * wout[t, d]
        if f > -MAX_EXP and f < MAX_EXP:
            i = int((f + MAX_EXP) * scale + 0.5)
            g = label - sig[i]
            if s == 0:
                loss -= logsig[i]
            else:
                loss -= logsig[TABLE_SIZE - i]
        elif f >= MAX_EXP and f < _BIG:
            g = label - 1.0
            loss += 0.0 if s == 0 else f
        elif f <= -MAX_EXP and f > -_BIG:
            g = label
            loss += -f if s == 0 else 0.0
        else:
            return x, loss, DIVERGED
        g = np.float32(g * lr)
        for d in range(dim):
            grad[d] += g * wout[t, d]
            wout[t, d] += g * hidden[d]
    return x, loss, OK


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _predict_window(vec, total, sen, pos, lo, hi, grad, negative, wout, negtab, x, lr, sig, logsig):
    """Skip-gram: ``vec`` predicts every context word ``sen[lo:hi]`` but ``pos`` and moves by
    each pair's gradient; ``total`` (empty: not kept) sums them. Returns (x, loss, pairs, status)."""
    loss = 0.0
    pairs = 0
    for c in range(lo, hi):
        if c == pos:
            continue
        grad[:] = 0.0
        x, l, st = _ns_update(vec, grad, sen[c], negative, wout, negtab, x, lr, sig, logsig)
        if st != OK:
            return x, loss, pairs, st
        loss += l
        pairs += 1
        for d in range(vec.shape[0]):
            vec[d] += grad[d]
        for d in range(total.shape[0]):
            total[d] += grad[d]
    return x, loss, pairs, OK


@njit(cache=True, nogil=True)
def _read_sentence(tokens, i, n, remap, keep, sen, x):
    """Fill sen with the kept vocabulary ids of the next sentence; returns (i, length, words read, x)."""
    slen = 0
    words = 0
    while i < n and slen < sen.shape[0]:  # a full buffer: the rest of the line comes next
        t = tokens[i]
        i += 1
        if t < 0:
            break
        w = remap[t]
        if w < 0:
            continue
        words += 1
        x = _xorshift(x)
        if _u32(x) >= keep[w]:
            continue
        sen[slen] = w
        slen += 1
    return i, slen, words, x


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def train_chunk(tokens, remap, keep, ptr, sub, wts, hot, first, win, wout, negtab, sig, logsig,
                skipgram, window, negative, lr0, total_words, progress, tid, rng, losses, stop):
    """Train on ``tokens`` (raw ids, -1 ends a sentence) with CBOW or skip-gram + negative sampling.

    ``wts`` (empty: all 1) weighs each bag entry ``sub[k]`` in the bag's mean and its update.
    ``hot`` (empty: none) lists shared rows this thread works on in private copies, rows
    ``first + s`` of ``win``, to which its own ``sub`` points instead (see ``_sync_hot``).
    ``remap`` maps raw ids to vocabulary ids (-1 = not in vocabulary), ``keep[w]`` is the subsampling
    threshold in [0, 2**32]. ``progress[tid]`` counts vocabulary words read by this thread; the
    learning rate decays linearly with ``sum(progress) / total_words`` (all threads), as in
    word2vec. ``losses[tid] += (loss sum, predictions)``. Hogwild: other threads update the same
    rows without locks. Returns OK, DIVERGED or STOPPED (``stop[0]`` was set).
    """
    dim = win.shape[1]
    sen = np.empty(MAX_SENT, np.int32)
    hidden = np.empty(dim, np.float32)
    grad = np.empty(dim, np.float32)
    total = np.empty(dim, np.float32)
    snap = np.empty((hot.shape[0], dim), np.float32)
    _sync_hot(win, hot, first, snap, True)
    since = 0
    x = rng[tid]
    n = tokens.shape[0]
    nthreads = progress.shape[0]
    i = 0
    status = OK
    lsum = 0.0
    lcount = 0
    while i < n and status == OK:
        if stop[0] != 0:
            status = STOPPED
            break
        i, slen, words, x = _read_sentence(tokens, i, n, remap, keep, sen, x)
        progress[tid] += words
        done = 0
        for k in range(nthreads):
            done += progress[k]
        lr = lr0 * max(1.0 - done / (total_words + 1.0), 1e-4)
        for pos in range(slen):
            since += 1
            if since == HOT_SYNC and hot.shape[0] != 0:
                _sync_hot(win, hot, first, snap, False)
                since = 0
            w = sen[pos]
            x = _xorshift(x)
            span = window - _u32(x) % window
            lo = max(pos - span, 0)
            hi = min(pos + span + 1, slen)
            if skipgram:
                a, b = ptr[w], ptr[w + 1]
                if b - a == 1:
                    # No subwords: classic per-pair updates of the word's own row.
                    x, l, cnt, status = _predict_window(win[sub[a]], total[:0], sen, pos, lo, hi, grad,
                                                        negative, wout, negtab, x, lr, sig, logsig)
                    lsum += l
                    lcount += cnt
                    if status != OK:
                        break
                    continue
                # Subwords: the center's bag mean predicts each context word. fastText adds each
                # pair's gradient to every bag row at once, which moves the bag mean by exactly that
                # gradient; so the mean is advanced in place and the rows get the window's sum once
                # (same updates, one pass over the bag instead of one per context word).
                hidden[:] = 0.0
                inv = np.float32(1.0 / _add_bag(hidden, win, sub, wts, a, b))
                for d in range(dim):
                    hidden[d] *= inv
                total[:] = 0.0
                x, l, cnt, status = _predict_window(hidden, total, sen, pos, lo, hi, grad, negative,
                                                    wout, negtab, x, lr, sig, logsig)
                lsum += l
                lcount += cnt
                if status != OK:
                    break
                _update_bag(win, sub, wts, a, b, total)
            else:
                hidden[:] = 0.0
                cnt = 0.0
                for c in range(lo, hi):
                    if c == pos:
                        continue
                    cw = sen[c]
                    cnt += _add_bag(hidden, win, sub, wts, ptr[cw], ptr[cw + 1])
                if cnt == 0.0:
                    continue
                inv = np.float32(1.0 / cnt)
                for d in range(dim):
                    hidden[d] *= inv
                grad[:] = 0.0
                x, l, st = _ns_update(hidden, grad, w, negative, wout, negtab, x, lr, sig, logsig)
                if st != OK:
                    status = st
                    break
                lsum += l
                lcount += 1
                # word2vec/fastText convention: every context row gets the unscaled gradient.
                for c in range(lo, hi):
                    if c == pos:
                        continue
                    cw = sen[c]
                    _update_bag(win, sub, wts, ptr[cw], ptr[cw + 1], grad)
    _sync_hot(win, hot, first, snap, False)
    rng[tid] = x
    losses[tid, 0] += lsum
    losses[tid, 1] += lcount
    return status


@njit(cache=True)
def remap_ids(raw_order, nraw):
    """remap[raw id] = vocabulary id for the kept words (given in vocabulary order), else -1."""
    remap = np.full(nraw, -1, np.int32)
    for v in range(raw_order.shape[0]):
        remap[raw_order[v]] = v
    return remap
