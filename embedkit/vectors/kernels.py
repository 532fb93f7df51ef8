"""Numba kernel for the one hot loop of the query side: parsing a big word2vec text file.

``np.fromstring`` spends ~250 ns per float (strtod); this kernel parses the common shapes of
decimal numbers in ~15 ns and returns exactly what ``float32(strtod(token))`` gives: the digits
become an exact int64, and one multiplication or division by an exact power of ten (<= 1e22) is
correctly rounded in float64. Anything else (more than 17 digits, big exponents, ``nan``, junk)
is flagged so Python re-parses that line with ``float()`` — or names it in an error.
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
