"""Checks every reader applies to what it read: the problems a user's file can have, named by line.

Readers pass ``first_line``, the file line (1-based) of vector 0, and ``line_step`` so a row index
maps back to a line (text formats); binary formats pass ``None`` and get the entry index instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...corpus import open_file
from ...errors import InputError, UsageError

MAX_DIM = 1 << 20  # a header claiming more is corrupt (and would ask for absurd memory)
UNICODE_ERRORS = ("keep", "replace", "strict")
_DECODE = {"keep": "surrogateescape", "replace": "replace", "strict": "strict"}
_FINITE_ROWS = 1 << 16  # rows checked at a time: no [V, D] boolean temporary on a big model


@dataclass
class WordPolicy:
    """How readers treat the odd words of files from the wild, and how many of each they met.

    ``unicode_errors``: ``keep`` (default) decodes invalid UTF-8 with ``surrogateescape``, so
    writing the word back gives the original bytes; ``replace`` puts U+FFFD in; ``strict``
    refuses the file. ``strict=True`` also refuses duplicate words and text lines with more than
    D+1 fields, which are otherwise accepted (first duplicate kept; leading fields = the word).
    """

    unicode_errors: str = "keep"
    strict: bool = False
    bad_utf8: int = 0
    duplicates: int = 0
    joined: int = 0

    def __post_init__(self):
        if self.unicode_errors not in UNICODE_ERRORS:
            raise UsageError(f"unicode_errors must be one of {', '.join(UNICODE_ERRORS)} "
                             f"(got {self.unicode_errors!r})")

    def warning(self) -> str | None:
        """The one line a user sees about what was tolerated (``None``: nothing was)."""
        parts = []
        if self.bad_utf8:
            how = "kept byte-exact, shown with U+FFFD" if self.unicode_errors == "keep" \
                else "invalid bytes replaced by U+FFFD"
            parts.append(f"{_n(self.bad_utf8, 'word')} not valid UTF-8 ({how})")
        if self.duplicates:
            parts.append(f"{_n(self.duplicates, 'duplicate word')} (the first of each kept)")
        if self.joined:
            parts.append(f"{_n(self.joined, 'line')} with more than D+1 fields (the leading "
                         f"fields, joined by a space, taken as the word)")
        return "; ".join(parts) or None


def _n(k: int, what: str) -> str:
    return f"{k} {what}{'' if k == 1 else 's'}"


def _where(i: int, first_line: int | None) -> tuple[int | None, str]:
    if first_line is None:
        return None, f" (entry {i + 1})"
    return first_line + i, ""


def check_model(path, words: list[str], vectors: np.ndarray, first_line: int | None = None,
                duplicates_ok: bool = False) -> None:
    """Refuse empty models, duplicate words (unless ``duplicates_ok``: ``drop_duplicates`` runs
    next) and non-finite values with a one-line error."""
    if len(words) == 0 or vectors.size == 0:
        raise InputError(path, "empty model: no vectors")
    if not duplicates_ok and len(set(words)) != len(words):
        seen: dict[str, int] = {}
        for i, w in enumerate(words):
            if w in seen:
                line, extra = _where(i, first_line)
                first, _ = _where(seen[w], first_line)
                again = f"line {first}" if first is not None else f"entry {seen[w] + 1}"
                raise InputError(path, f"duplicate word {w!r}{extra} (first seen at {again})", line)
            seen[w] = i
    i = first_non_finite(vectors)
    if i is not None:
        line, extra = _where(i, first_line)
        raise InputError(path, f"non-finite value (NaN or inf) in the vector of {words[i]!r}{extra}",
                         line)


def first_non_finite(vectors: np.ndarray) -> int | None:
    """Index of the first row holding NaN or inf, checked a block of rows at a time."""
    if vectors.dtype.kind != "f":
        return None
    for lo in range(0, len(vectors), _FINITE_ROWS):
        ok = np.isfinite(vectors[lo:lo + _FINITE_ROWS]).all(axis=1)
        if not ok.all():
            return lo + int(np.argmin(ok))
    return None


def drop_duplicates(words: list[str], vectors: np.ndarray, policy: "WordPolicy"
                    ) -> tuple[list[str], np.ndarray]:
    """Keep the first of each repeated word (as gensim does), counting the others in ``policy``."""
    if len(set(words)) == len(words):
        return words, vectors
    seen: set[str] = set()
    keep = np.ones(len(words), bool)
    for i, w in enumerate(words):
        if w in seen:
            keep[i] = False
        seen.add(w)
    policy.duplicates += int((~keep).sum())
    return [w for w, k in zip(words, keep.tolist()) if k], vectors[keep]


def check_byte_order(path, vectors: np.ndarray) -> None:
    """Binary formats record no byte order: refuse values that only make sense byte-swapped."""
    sample = np.asarray(vectors[:1000], dtype=np.float32)
    with np.errstate(all="ignore"):
        odd = not np.isfinite(sample).all() or np.abs(sample).max() > 1e4
        if not odd:
            return
        swapped = sample.byteswap()
        if np.isfinite(swapped).all() and 0 < np.abs(swapped).max() <= 1e4:
            raise InputError(path, "the values look byte-swapped (a big-endian file?); only "
                                   "little-endian files are supported")


def decode_words(path, raw: list[bytes], first_line: int | None = None,
                 policy: WordPolicy | None = None) -> list[str]:
    """UTF-8 decode all words at once (fast); invalid words as ``policy`` says (none: refused,
    naming the first bad one)."""
    try:
        words = b"\n".join(raw).decode("utf-8").split("\n")
        if len(words) == len(raw):  # else a word holds a newline: decode one by one
            return words
    except UnicodeDecodeError:
        pass
    if policy is not None and policy.unicode_errors != "strict":
        errors = _DECODE[policy.unicode_errors]
        out = []
        for w in raw:
            try:
                out.append(w.decode("utf-8"))
            except UnicodeDecodeError:
                policy.bad_utf8 += 1
                out.append(w.decode("utf-8", errors))
        return out
    for i, w in enumerate(raw):
        try:
            w.decode("utf-8")
        except UnicodeDecodeError as e:
            line, extra = _where(i, first_line)
            raise InputError(path, f"word is not valid UTF-8 (byte {e.start + 1}: "
                                   f"{w[e.start:e.start + 1]!r}){extra}; use --unicode-errors "
                                   f"keep or replace to read it", line) from None
    return [w.decode("utf-8") for w in raw]


def opened(path, expected: str = "a vector file"):
    """``open(path, "rb")`` with a missing file, a folder or an OS error as a one-line error."""
    return open_file(path, expected)


def read_bytes(path, size: int = -1, expected: str = "a vector file") -> bytes:
    """The whole file (or its first ``size`` bytes)."""
    with opened(path, expected) as f:
        try:
            return f.read(size)
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror}") from None
