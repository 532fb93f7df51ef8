"""Checks every reader applies to what it read: the problems a user's file can have, named by line.

Readers pass ``first_line``, the file line (1-based) of vector 0, and ``line_step`` so a row index
maps back to a line (text formats); binary formats pass ``None`` and get the entry index instead.
"""
from __future__ import annotations

import numpy as np

from ...corpus import open_file
from ...errors import InputError

MAX_DIM = 1 << 20  # a header claiming more is corrupt (and would ask for absurd memory)


def _where(i: int, first_line: int | None) -> tuple[int | None, str]:
    if first_line is None:
        return None, f" (entry {i + 1})"
    return first_line + i, ""


def check_model(path, words: list[str], vectors: np.ndarray, first_line: int | None = None) -> None:
    """Refuse empty models, duplicate words and non-finite values with a one-line error."""
    if len(words) == 0 or vectors.size == 0:
        raise InputError(path, "empty model: no vectors")
    if len(set(words)) != len(words):
        seen: dict[str, int] = {}
        for i, w in enumerate(words):
            if w in seen:
                line, extra = _where(i, first_line)
                first, _ = _where(seen[w], first_line)
                again = f"line {first}" if first is not None else f"entry {seen[w] + 1}"
                raise InputError(path, f"duplicate word {w!r}{extra} (first seen at {again})", line)
            seen[w] = i
    finite = np.isfinite(vectors).all(axis=1) if vectors.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        i = int(np.argmin(finite))
        line, extra = _where(i, first_line)
        raise InputError(path, f"non-finite value (NaN or inf) in the vector of {words[i]!r}{extra}",
                         line)


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


def decode_words(path, raw: list[bytes], first_line: int | None = None) -> list[str]:
    """UTF-8 decode all words at once (fast); on failure name the first bad one."""
    try:
        return b"\n".join(raw).decode("utf-8").split("\n")
    except UnicodeDecodeError:
        pass
    for i, w in enumerate(raw):
        try:
            w.decode("utf-8")
        except UnicodeDecodeError as e:
            line, extra = _where(i, first_line)
            raise InputError(path, f"word is not valid UTF-8 (byte {e.start + 1}: "
                                   f"{w[e.start:e.start + 1]!r}){extra}", line) from None
    raise AssertionError("unreachable")


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
