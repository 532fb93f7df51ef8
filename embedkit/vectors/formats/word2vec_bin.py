"""word2vec binary format: ``N D`` header, then ``word`` + space + D little-endian float32 per entry.

Reads both writer styles (word2vec.c puts ``\\n`` after each vector, gensim does not); writes the
word2vec.c style, which both word2vec's ``distance`` and gensim read.
"""
from __future__ import annotations

import mmap
import os
import re

import numpy as np

from ...errors import InputError, UsageError
from ...io import atomic_write
from .checks import (MAX_DIM, WordPolicy, check_byte_order, check_model, decode_words,
                     drop_duplicates, opened)

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f]")
_RELEASE = 64 << 20  # bytes of the mapped file given back at a time


def parse_header(path, data: bytes) -> tuple[int, int, int]:
    """``(n, dim, offset of the first entry)``; the header is the ASCII line ``N D``."""
    nl = data.find(b"\n", 0, 256)
    parts = data[:nl].split() if nl > 0 else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(path, "not a word2vec binary file: the first line is not 'N D'", 1)
    n, dim = int(parts[0]), int(parts[1])
    if n == 0 or dim == 0:
        raise InputError(path, f"empty model: the header says {n} vectors of dimension {dim}", 1)
    if dim > MAX_DIM:
        raise InputError(path, f"implausible dimension {dim} in the header", 1)
    return n, dim, nl + 1


def read(path: str | os.PathLike, limit: int | None = None, policy: WordPolicy | None = None
         ) -> tuple[list[str], np.ndarray]:
    """``(words, float32 [N, D])``; odd words follow ``policy`` (default ``WordPolicy()``).

    The file is memory-mapped and read once, each row copied into the matrix; the pages already
    copied are given back as it goes, so peak memory is the matrix, not the matrix plus the file
    (GoogleNews is 3.6 GB of each).
    """
    policy = policy if policy is not None else WordPolicy()
    with opened(path) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror}") from None
    n, dim, pos = parse_header(path, data)
    rec = 4 * dim
    if n > (size - pos) // (rec + 2):  # an entry is at least "w" + " " + D floats
        raise InputError(path, f"truncated: the header says {n} vectors of dimension {dim}, "
                               f"more than the file's {size} bytes can hold", 1)
    want = n if limit is None else min(n, limit)
    vectors = np.empty((want, dim), np.float32)
    raw = []
    find = data.find
    released = 0
    for i in range(want):
        while pos < size and data[pos] == 10:
            pos += 1
        sp = find(b" ", pos, pos + 4096)
        if sp < 0 or sp + 1 + rec > size:
            raise InputError(path, f"truncated: the header says {n} vectors of dimension {dim} "
                                   f"but the file ends in entry {i + 1}")
        word = data[pos:sp]
        if not word or _CONTROL.search(word):
            raise InputError(path, f"corrupt entry {i + 1}: the word holds control bytes (does the "
                                   f"header's dimension {dim} match the file?)")
        raw.append(word)
        vectors[i] = np.frombuffer(data, "<f4", dim, sp + 1)
        pos = sp + 1 + rec
        if pos - released > _RELEASE:
            released = _release(data, released, pos)
    if limit is None and pos < size:
        tail = data[pos:pos + 4096]
        if size - pos > len(tail) or tail.strip(b"\n\r"):
            raise InputError(path, f"{size - pos} bytes left after the {n} vectors the header "
                                   f"announces (does the header match the file?)")
    check_byte_order(path, vectors)
    words = decode_words(path, raw, policy=policy)
    check_model(path, words, vectors, duplicates_ok=not policy.strict)
    return drop_duplicates(words, vectors, policy)


def _release(data, lo: int, hi: int) -> int:
    """Drop the mapped pages of bytes [lo, hi) from this process (they stay in the page cache)."""
    hi -= hi % mmap.PAGESIZE
    try:
        data.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    except (AttributeError, OSError, ValueError):
        pass  # not on this platform: the kernel reclaims the clean pages under pressure anyway
    return hi


def write(path: str | os.PathLike, words: list[str], vectors: np.ndarray) -> None:
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    n, dim = vectors.shape
    if n != len(words):
        raise ValueError(f"{len(words)} words but {n} vectors")
    for w in words:
        if not w or any(c in w for c in " \n") or w[0] == "\r":
            raise UsageError(f"cannot write {path}: the word {w!r} contains whitespace, which "
                             f"the word2vec binary format cannot hold")
    with atomic_write(path, "wb") as f:
        f.write(f"{n} {dim}\n".encode())
        parts = []
        for i, w in enumerate(words):
            parts.append(w.encode("utf-8", "surrogateescape") + b" " + vectors[i].tobytes() + b"\n")
            if len(parts) == 4096:
                f.write(b"".join(parts))
                parts = []
        f.write(b"".join(parts))
