"""word2vec binary format: ``N D`` header, then ``word`` + space + D little-endian float32 per entry.

Reads both writer styles (word2vec.c puts ``\\n`` after each vector, gensim does not); writes the
word2vec.c style, which both word2vec's ``distance`` and gensim read.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ...errors import InputError, UsageError
from ...io import atomic_write
from .checks import (MAX_DIM, WordPolicy, check_byte_order, check_model, decode_words,
                     drop_duplicates, read_bytes)

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f]")


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
    """``(words, float32 [N, D])``; odd words follow ``policy`` (default ``WordPolicy()``)."""
    policy = policy if policy is not None else WordPolicy()
    data = read_bytes(path)
    n, dim, pos = parse_header(path, data)
    want = n if limit is None else min(n, limit)
    rec = 4 * dim
    size = len(data)
    raw, offsets = [], []
    find = data.find
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
        offsets.append(sp + 1)
        pos = sp + 1 + rec
    if limit is None and data[pos:].strip(b"\n\r"):
        raise InputError(path, f"{size - pos} bytes left after the {n} vectors the header "
                               f"announces (does the header match the file?)")
    vectors = np.empty((want, dim), np.float32)
    for i, off in enumerate(offsets):
        vectors[i] = np.frombuffer(data, "<f4", dim, off)
    check_byte_order(path, vectors)
    words = decode_words(path, raw, policy=policy)
    check_model(path, words, vectors, duplicates_ok=not policy.strict)
    return drop_duplicates(words, vectors, policy)


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
