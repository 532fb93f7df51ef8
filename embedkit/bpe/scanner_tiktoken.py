"""tiktoken's cl100k and o200k pre-tokenization and word counting in one compiled pass.

The same idea as ``scanner.py`` (whose hash table, merge and byte kernels these counters reuse):
walk the code points once and count words in place of ``regex.findall`` per line. The regex path
splits each line (line ending included) on its own, so the kernels cut the text into lines first
and a match never looks past a line's end (``$`` in cl100k is the end of the line's string).

Character classes come from the ``regex`` module: the base classes (letter, number, space, other)
are ``scanner.char_classes``; ``case_classes`` adds what these patterns ask for besides — the
case-insensitive contraction letters (``(?i:s)`` also matches U+017F ſ) and o200k's two
letter-case sets. Alternatives, first match wins (possessive quantifiers never give back, greedy
ones backtrack, which the kernels follow):

cl100k: ``'(?i:[sdmt]|ll|ve|re)`` · ``[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++`` · ``\\p{N}{1,3}+`` ·
`` ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+`` · ``\\s++$`` ·
``\\s*[\\r\\n]`` · ``\\s+(?!\\S)`` · ``\\s``.

o200k: ``[^\\r\\n\\p{L}\\p{N}]?U*W+C?`` · ``[^\\r\\n\\p{L}\\p{N}]?U+W*C?`` · ``\\p{N}{1,3}`` ·
`` ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*`` · ``\\s*[\\r\\n]+`` · ``\\s+(?!\\S)`` · ``\\s+``, where
U = ``[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]``, W = ``[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]`` and C the
contractions ``(?i:'s|'t|'re|'ve|'m|'ll|'d)``.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit

from .scanner import LETTER, NUMBER, OTHER, SPACE, WordCounter, _hash, _insert, _run_end, \
    cached_table

# case_classes(): bits 0-3 the contraction letter (index + 1 in FOLDS), then the two case sets
FOLDS = "sdmtlvre"
_S, _D, _M, _T, _L, _V, _R, _E = range(1, 9)
UPPER, LOWER = 16, 32
_NL, _CR, _SP, _QUOTE, _SLASH = 10, 13, 32, 39, 47


def _fill_case(chars: str, table: np.ndarray) -> None:
    import regex

    for k, letter in enumerate(FOLDS, 1):  # case-fold classes are disjoint: one letter each
        for m in regex.finditer(f"(?i:{letter})", chars):
            table[m.start():m.end()] |= k
    for bit, pattern in ((UPPER, r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"),
                         (LOWER, r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]+")):
        for m in regex.finditer(pattern, chars):
            table[m.start():m.end()] |= bit


@functools.lru_cache(maxsize=1)
def case_classes() -> np.ndarray:
    """uint8 per code point: the contraction letter it matches case-insensitively, and its
    o200k case sets (``UPPER``, ``LOWER``), all per the ``regex`` module."""
    return cached_table("caseclass", _fill_case)


@njit(cache=True, inline="always")
def _is_crlf(c):
    return c == _NL or c == _CR


@njit(cache=True)
def _contraction_end(text, i, t, case):
    """End of ``'s 't 'm 'd 're 've 'll`` (any case) at ``i``, or ``i`` when there is none."""
    if i + 1 >= t or text[i] != _QUOTE:
        return i
    f = case[text[i + 1]] & 15
    if f == _S or f == _D or f == _M or f == _T:
        return i + 2
    if i + 2 < t:
        g = case[text[i + 2]] & 15
        if (f == _L and g == _L) or (g == _E and (f == _V or f == _R)):
            return i + 3
    return i


@njit(cache=True)
def _space_end(text, i, t, cls, to_line_end):
    """The whitespace alternatives at ``i`` (a space). ``to_line_end``: cl100k's ``\\s++$`` first
    (a run to the end of the line is one word). Then ``\\s*[\\r\\n]`` ends after the run's last
    line break; else the run less its last space unless it ends the line (``\\s+(?!\\S)``); else
    one space."""
    e = _run_end(text, i + 1, t, cls, SPACE)
    if to_line_end and e == t:
        return e
    for j in range(e - 1, i - 1, -1):
        if _is_crlf(text[j]):
            return j + 1
    if e == t or e - i < 2:
        return e
    return e - 1


@njit(cache=True)
def _digits_end(text, i, t, cls):
    e = i + 1
    while e < t and e < i + 3 and cls[text[e]] == NUMBER:
        e += 1
    return e


@njit(cache=True)
def _cl100k_end(text, i, t, cls, case):
    """End of the cl100k word that starts at ``i`` (``t``: end of the line)."""
    e = _contraction_end(text, i, t, case)
    if e > i:
        return e
    c = text[i]
    k = cls[c]
    if k == LETTER:
        return _run_end(text, i + 1, t, cls, LETTER)
    if k == NUMBER:
        return _digits_end(text, i, t, cls)
    if not _is_crlf(c) and i + 1 < t and cls[text[i + 1]] == LETTER:  # possessive ?+: no retry
        return _run_end(text, i + 2, t, cls, LETTER)
    if k == OTHER or (c == _SP and i + 1 < t and cls[text[i + 1]] == OTHER):
        e = _run_end(text, i + 1, t, cls, OTHER)
        while e < t and _is_crlf(text[e]):
            e += 1
        return e
    return _space_end(text, i, t, cls, True)


@njit(cache=True)
def _lower_word(text, a, t, case):
    """``U*W+`` from ``a``: its end, or -1. Greedy ``U*`` gives back letters until ``W+`` can
    start, so ``W+`` starts at the last W in or just after the U run."""
    u = a
    while u < t and case[text[u]] & UPPER:
        u += 1
    p = u
    if not (u < t and case[text[u]] & LOWER):
        p = u - 1
        while p >= a and not case[text[p]] & LOWER:
            p -= 1
        if p < a:
            return -1
    w = p + 1
    while w < t and case[text[w]] & LOWER:
        w += 1
    return w


@njit(cache=True)
def _upper_word(text, a, t, case):
    """``U+W*`` from ``a``: its end, or -1."""
    if a >= t or not case[text[a]] & UPPER:
        return -1
    u = a + 1
    while u < t and case[text[u]] & UPPER:
        u += 1
    while u < t and case[text[u]] & LOWER:
        u += 1
    return u


@njit(cache=True)
def _o200k_end(text, i, t, cls, case):
    """End of the o200k word that starts at ``i`` (``t``: end of the line)."""
    c = text[i]
    k = cls[c]
    prefix = not _is_crlf(c) and k != LETTER and k != NUMBER  # [^\r\n\p{L}\p{N}]? (greedy)
    for alt in range(2):
        for a in range(i + 1 if prefix else i, i - 1, -1):  # with the prefix first
            e = _lower_word(text, a, t, case) if alt == 0 else _upper_word(text, a, t, case)
            if e >= 0:
                return _contraction_end(text, e, t, case)
    if k == NUMBER:
        return _digits_end(text, i, t, cls)
    if k == OTHER or (c == _SP and i + 1 < t and cls[text[i + 1]] == OTHER):
        e = _run_end(text, i + 1, t, cls, OTHER)
        while e < t and (_is_crlf(text[e]) or text[e] == _SLASH):
            e += 1
        return e
    return _space_end(text, i, t, cls, False)


@njit(cache=True, nogil=True)
def scan_lines(text, cls, case, o200k, slots, whash, woff, keys, wcount, nw):
    """``scanner.scan_words`` for the cl100k pattern (``o200k`` false) or the o200k pattern,
    line by line: the regex path matches each line on its own, so ``$`` is a line's end."""
    n = text.shape[0]
    i = 0
    while i < n:
        t = i
        while t < n and text[t] != _NL:
            t += 1
        t = min(t + 1, n)
        while i < t:
            e = _o200k_end(text, i, t, cls, case) if o200k else _cl100k_end(text, i, t, cls, case)
            slots, whash, woff, keys, wcount, nw = _insert(text, i, e, _hash(text, i, e), 1,
                                                           slots, whash, woff, keys, wcount, nw)
            i = e
    return slots, whash, woff, keys, wcount, nw


class Cl100kCounter(WordCounter):
    """A ``scanner.WordCounter`` of cl100k-pattern words (line by line, as the regex path)."""

    o200k = False

    def __init__(self):
        super().__init__()
        self.case = case_classes()

    def _scan(self, cps: np.ndarray) -> None:
        *table, self.nw = scan_lines(cps, self.cls, self.case, self.o200k, *self.table, self.nw)
        self.table = tuple(table)


class O200kCounter(Cl100kCounter):
    """A ``scanner.WordCounter`` of o200k-pattern words (line by line, as the regex path)."""

    o200k = True

