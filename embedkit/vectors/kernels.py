"""Numba kernels of the vectors side: parse and format big ``.vec`` files, top-k of big batches.

Each is used only where it pays for importing Numba (big files, batches of hundreds of queries);
small inputs take NumPy paths, so ``embedkit nn model.ekv word`` never imports Numba.

Parsing: ``np.fromstring`` spends ~250 ns per float (strtod); ``parse_vec_lines`` is several
times faster and returns exactly what ``float32(strtod(token))`` gives: the digits become an
exact int64, and one multiplication or division by an exact power of ten (<= 1e22) is correctly
rounded in float64. Anything else (more than 17 digits, big exponents, ``nan``, junk) is flagged
so Python re-parses that line — or names it in an error.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)  # all exactly representable

OK, BAD_COUNT, RECHECK = 0, 1, 2


@njit(cache=True, nogil=True)
def parse_vec_lines(buf, n_lines, dim, out, word_start, word_end, status):
    """Parse up to ``n_lines`` lines ``word v1 ... vD`` of ``buf`` (uint8) into ``out`` [n, dim].

    Fills the byte span of each word and a status per line (OK, BAD_COUNT, RECHECK); returns the
    number of lines seen.
    """
    size = buf.shape[0]
    pos = 0
    line = 0
    while line < n_lines and pos < size:
        ws = pos
        while pos < size and buf[pos] != 32 and buf[pos] != 10:
            pos += 1
        word_start[line] = ws
        word_end[line] = pos
        col = 0
        st = OK
        while True:
            while pos < size and (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13):
                pos += 1
            if pos >= size or buf[pos] == 10:
                break
            neg = False
            if buf[pos] == 45:
                neg = True
                pos += 1
            elif buf[pos] == 43:
                pos += 1
            mant = np.int64(0)
            digits = 0
            exp10 = 0
            exact = True
            while pos < size and 48 <= buf[pos] <= 57:
                if mant < 100_000_000_000_000_000:
                    mant = mant * 10 + (buf[pos] - 48)
                elif buf[pos] != 48:
                    exact = False
                else:
                    exp10 += 1
                digits += 1
                pos += 1
            if pos < size and buf[pos] == 46:
                pos += 1
                while pos < size and 48 <= buf[pos] <= 57:
                    if mant < 100_000_000_000_000_000:
                        mant = mant * 10 + (buf[pos] - 48)
                        exp10 -= 1
                    elif buf[pos] != 48:
                        exact = False
                    digits += 1
                    pos += 1
            if digits == 0:
                exact = False
            if pos < size and (buf[pos] == 101 or buf[pos] == 69):
                pos += 1
                eneg = False
                if pos < size and (buf[pos] == 45 or buf[pos] == 43):
                    eneg = buf[pos] == 45
                    pos += 1
                e = 0
                edigits = 0
                while pos < size and 48 <= buf[pos] <= 57:
                    if e < 100000:
                        e = e * 10 + (buf[pos] - 48)
                    edigits += 1
                    pos += 1
                if edigits == 0:
                    exact = False
                exp10 += -e if eneg else e
            if pos < size and not (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13
                                   or buf[pos] == 10):
                exact = False
                while pos < size and not (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13
                                          or buf[pos] == 10):
                    pos += 1
            value = 0.0
            if mant == 0:
                value = 0.0
            elif mant < 9007199254740992 and -22 <= exp10 <= 22:
                if exp10 >= 0:
                    value = mant * _POW10[exp10]
                else:
                    value = mant / _POW10[-exp10]
            else:
                exact = False
            if not exact:
                st = RECHECK
            if col < dim:
                out[line, col] = np.float32(-value if neg else value)
            col += 1
        if col != dim:
            st = BAD_COUNT
        status[line] = st
        pos += 1
        line += 1
    return line


@njit(cache=True, nogil=True)
def top_candidates(scores, want, idx):
    """For each row of ``scores`` [Q, N], the columns of its ``want`` largest values (unordered).

    One pass with a ``want``-slot buffer and its current minimum: ~25x faster than
    ``argpartition`` for small ``want`` (the buffer is rescanned only on replacement).
    Ties at the boundary keep the lower column.
    """
    n = scores.shape[1]
    vals = np.empty(want, np.float32)
    for r in range(scores.shape[0]):
        row = scores[r]
        for t in range(want):
            vals[t] = -np.inf
            idx[r, t] = -1
        mpos = 0
        mval = -np.inf
        for j in range(n):
            x = row[j]
            if x > mval:
                vals[mpos] = x
                idx[r, mpos] = j
                mpos = 0
                mval = vals[0]
                for t in range(1, want):
                    if vals[t] < mval:
                        mval = vals[t]
                        mpos = t


_POW10_ALL = np.array([10.0 ** k for k in range(-60, 61)], dtype=np.float64)  # index k + 60


@njit(cache=True, nogil=True)
def _pow10(k):
    return _POW10_ALL[k + 60]


@njit(cache=True, nogil=True)
def _parses_to(d, k, v):
    """Whether the decimal ``d * 10**k`` reads back (strtod, then float32) as ``v``."""
    if k >= 0:
        x = d * _POW10[k]
    else:
        x = d / _POW10[-k]
    return np.float32(x) == v


@njit(cache=True, nogil=True)
def _digits(a, e, p):
    """The p-significant-digit decimal nearest to ``a`` (first digit at 10**e) as ``(d, k)``."""
    k = e - p + 1
    d = np.int64(np.round(a / _pow10(k)))
    if d >= np.int64(_POW10[p]):
        d //= 10
        k += 1
    return d, k


@njit(cache=True, nogil=True)
def _put_int(out, pos, n, width):
    for i in range(width - 1, -1, -1):
        out[pos + i] = 48 + n % 10
        n //= 10
    return pos + width


@njit(cache=True, nogil=True)
def _format_one(v, out, pos):
    """Write the shortest decimal that reads back as float32 ``v`` (Python ``repr`` layout)."""
    if v != v:
        out[pos:pos + 3] = np.frombuffer(b"nan", np.uint8)
        return pos + 3
    if v < 0 or (v == 0 and np.signbit(v)):
        out[pos] = 45
        pos += 1
        v = -v
    if v == np.inf:
        out[pos:pos + 3] = np.frombuffer(b"inf", np.uint8)
        return pos + 3
    if v == 0:
        out[pos] = 48
        return pos + 1
    a = np.float64(v)
    e = int(np.floor(np.log10(a)))
    if _pow10(e) > a:
        e -= 1
    elif _pow10(e + 1) <= a:
        e += 1
    # If p digits read back as v, so do p + 1: binary-search the shortest p in 1..9 (9 always does).
    lo, hi = 1, 9
    while lo < hi:
        mid = (lo + hi) // 2
        d, k = _digits(a, e, mid)
        if -22 <= k <= 22 and _parses_to(d, k, v):
            hi = mid
        else:
            lo = mid + 1
    d, k = _digits(a, e, hi)
    while d % 10 == 0:
        d //= 10
        k += 1
    nd = 1
    t = d
    while t >= 10:
        t //= 10
        nd += 1
    exp = k + nd - 1  # decimal exponent of the first digit
    if exp < -4 or exp >= 16:
        first = d // np.int64(_POW10[nd - 1])
        pos = _put_int(out, pos, first, 1)
        if nd > 1:
            out[pos] = 46
            pos = _put_int(out, pos + 1, d - first * np.int64(_POW10[nd - 1]), nd - 1)
        out[pos] = 101
        out[pos + 1] = 45 if exp < 0 else 43
        ae = -exp if exp < 0 else exp
        return _put_int(out, pos + 2, ae, 2 if ae < 100 else 3)
    if k >= 0:
        pos = _put_int(out, pos, d, nd)
        for _ in range(k):
            out[pos] = 48
            pos += 1
        return pos
    point = nd + k  # digits before the decimal point
    if point > 0:
        whole = d // np.int64(_POW10[-k])
        pos = _put_int(out, pos, whole, point)
        out[pos] = 46
        return _put_int(out, pos + 1, d - whole * np.int64(_POW10[-k]), -k)
    out[pos] = 48
    out[pos + 1] = 46
    pos += 2
    for _ in range(-point):
        out[pos] = 48
        pos += 1
    return _put_int(out, pos, d, nd)


@njit(cache=True, nogil=True)
def format_rows(vectors, out, ends):
    """Each row as ``v1 v2 ... vD\\n`` (shortest round-trip decimals) into ``out``; ``ends[r]`` is
    the end of row r. ``out`` needs 16 bytes per value."""
    pos = 0
    for r in range(vectors.shape[0]):
        for c in range(vectors.shape[1]):
            if c:
                out[pos] = 32
                pos += 1
            pos = _format_one(vectors[r, c], out, pos)
        out[pos] = 10
        pos += 1
        ends[r] = pos
