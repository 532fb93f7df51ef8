"""word2vec text format (``.vec``/``.txt``): ``N D`` header (optional), then ``word v1 ... vD`` lines.

Small files are parsed in C without Numba: split into lines, cut each at its first space, and let
``np.fromstring`` parse all floats at once (a per-line space count checks the shape). Big files go
through a Numba parser (``vectors/kernels.py``) on all cores, several times faster still. Both
give exactly ``float32(strtod(token))``; lines that fail a fast check are re-read to name them.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from ...errors import InputError, UsageError
from ...io import atomic_write
from .checks import MAX_DIM, check_model, decode_words, read_bytes

_FORMAT_VALUES = 1 << 17  # values formatted per thread per step: bounds the write buffers (~5 MiB)
_KERNEL_MIN_BYTES = 8 << 20  # below this, importing Numba costs more than it saves


def _header(first: bytes) -> tuple[int, int] | None:
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def read(path: str | os.PathLike, limit: int | None = None, data: bytes | None = None
         ) -> tuple[list[str], np.ndarray]:
    """Return ``(words, float32 [N, D])``; accepts trailing spaces, CRLF, a BOM, no header."""
    if data is None:
        data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    end = _rstrip_len(data)
    if end == 0:
        raise InputError(path, "empty model: no vectors")
    if b"\x00" in data:
        raise InputError(path, "NUL bytes in a text vector file (a binary file?)")
    nl = data.find(b"\n")
    head = _header(data[:nl] if nl >= 0 else data)
    if head:
        n, dim = head
        if n == 0 or dim == 0:
            raise InputError(path, f"empty model: the header says {n} vectors of dimension {dim}", 1)
        if dim > MAX_DIM:
            raise InputError(path, f"implausible dimension {dim} in the header", 1)
    else:
        dim = len((data[:nl] if nl >= 0 else data).split()) - 1
        if dim <= 0:
            raise InputError(path, "no vector on the first line (expected 'word v1 ... vD')", 1)
    start = (nl + 1 if nl >= 0 else len(data)) if head else 0
    n_lines = data.count(b"\n", start, end) + 1 if end > start else 0
    if head:
        if n_lines < n:
            raise InputError(path, f"truncated: the header says {n} vectors but the file has "
                                   f"{n_lines}", 1)
        if n_lines > n and limit is None:
            raise InputError(path, f"the header says {n} vectors but the file has {n_lines} "
                                   f"lines of vectors", 1)
    if limit is not None:
        n_lines = min(n_lines, limit)
    first_line = 2 if head else 1
    if end - start >= _KERNEL_MIN_BYTES:
        raw_words, vectors = _parse_fast(path, data, start, end, n_lines, dim, first_line, bool(head))
    else:
        raw_words, vectors = _parse(path, data[start:end], n_lines, dim, first_line, bool(head))
    words = decode_words(path, raw_words, first_line)
    check_model(path, words, vectors, first_line)
    return words, vectors


def _parse(path, body: bytes, n_lines, dim, first_line, has_header):
    """Small files: C-level splits and one ``np.fromstring`` (no Numba import)."""
    split = [line.partition(b" ") for line in body.split(b"\n", n_lines)[:n_lines]]
    raw_words = [s[0].rstrip(b"\r") for s in split]
    rests = [s[2].strip() for s in split]
    counts = [r.count(b" ") for r in rests]
    if counts.count(dim - 1) != len(counts) or b"" in raw_words:
        _check_fields(path, raw_words, rests, dim, first_line, has_header)
    return raw_words, _floats(path, rests, dim, first_line, list(range(len(rests))))


def _floats(path, rests: list[bytes], dim: int, first_line: int, rows: list[int]) -> np.ndarray:
    """All values of ``rests`` (rows ``rows`` of the file) parsed by ``np.fromstring`` in one go."""
    try:
        flat = np.fromstring(b" ".join(rests), dtype=np.float32, sep=" ")
    except ValueError:
        flat = None
    if flat is None or flat.size != len(rests) * dim:
        _find_bad_value(path, rests, dim, [first_line + r for r in rows])
    return flat.reshape(len(rests), dim)


def _parse_fast(path, data: bytes, start, end, n_lines, dim, first_line, has_header):
    """Big files: the Numba parser (~15x faster), exact; odd lines re-parsed by ``_floats``."""
    from ..kernels import BAD_COUNT, RECHECK, parse_vec_lines

    vectors = np.empty((n_lines, dim), np.float32)
    ws = np.empty(n_lines, np.int64)
    we = np.empty(n_lines, np.int64)
    status = np.empty(n_lines, np.int8)
    jobs = []
    for lo, hi, first, count in _line_chunks(data, start, end, n_lines, os.cpu_count() or 1):
        buf = np.frombuffer(data, np.uint8, count=hi - lo, offset=lo)
        rows = slice(first, first + count)
        jobs.append((buf, count, dim, vectors[rows], ws[rows], we[rows], status[rows], lo))
    # The kernel releases the GIL: one thread per chunk of whole lines.
    threads = [threading.Thread(target=parse_vec_lines, args=j[:7]) for j in jobs[1:]]
    for t in threads:
        t.start()
    parse_vec_lines(*jobs[0][:7])
    for t in threads:
        t.join()
    for j in jobs:
        j[4][:] += j[7]
        j[5][:] += j[7]

    def line_parts(i):
        stop = data.find(b"\n", int(we[i]), end)
        return data[ws[i]:we[i]].rstrip(b"\r"), data[we[i]:stop if stop >= 0 else end].strip()

    bad = np.flatnonzero((status == BAD_COUNT) | (ws == we))
    if bad.size:
        i = int(bad[0])
        word, rest = line_parts(i)
        _check_fields(path, [word], [rest], dim, first_line + i, has_header)
    recheck = np.flatnonzero(status == RECHECK).tolist()
    if recheck:
        rests = [line_parts(i)[1] for i in recheck]
        vectors[recheck] = _floats(path, rests, dim, first_line, recheck)
    raw_words = [data[a:b] for a, b in zip(ws.tolist(), we.tolist())]
    return raw_words, vectors


def _rstrip_len(data: bytes) -> int:
    """Length of ``data`` without trailing whitespace (no 300 MB copy as ``rstrip`` would make)."""
    end = len(data)
    while end > 0 and data[end - 1] in b" \t\r\n":
        end -= 1
    return end


def _line_chunks(data: bytes, start: int, end: int, n_lines: int, parts: int):
    """Split lines [0, n_lines) of ``data[start:end]`` into ``parts`` byte ranges of whole lines."""
    parts = max(1, min(parts, n_lines // 10000 or 1))
    out, lo, first = [], start, 0
    for p in range(1, parts):
        cut = data.find(b"\n", start + (end - start) * p // parts, end)
        if cut < 0:
            break
        count = min(data.count(b"\n", lo, cut) + 1, n_lines - first)
        if count <= 0:
            break
        out.append((lo, cut + 1, first, count))
        lo, first = cut + 1, first + count
    out.append((lo, end, first, n_lines - first))
    return out


def _check_fields(path, raw_words, rests, dim, first_line, has_header) -> None:
    """Slow path: name the first line whose shape is wrong (tabs and double spaces are fine)."""
    for i, (w, r) in enumerate(zip(raw_words, rests)):
        line = first_line + i
        if not w.strip():
            raise InputError(path, "blank line or line starting with a space (expected a word)", line)
        got = len(r.split())
        if got != dim:
            said = " (the header says %d)" % dim if has_header else f" (the first line has {dim})"
            raise InputError(path, f"expected {dim} values after the word, found {got}{said}", line)


def _find_bad_value(path, rests, dim, lines) -> None:
    for r, line in zip(rests, lines):
        for tok in r.split():
            try:
                float(tok)
            except ValueError:
                raise InputError(path, f"not a number: {tok[:40].decode('utf-8', 'replace')!r}",
                                 line) from None
    raise InputError(path, f"could not parse the vectors (expected {dim} numbers per line)")


def write(path: str | os.PathLike, words: list[str], vectors: np.ndarray, header: bool = True) -> None:
    """gensim-style: ``N D`` header, single spaces, no trailing space, shortest round-trip floats.

    The decimals come from a Numba kernel (``kernels.format_rows``) on all cores: each value is
    the shortest that reads back as the same float32, ~5x faster than gensim's per-value repr.
    """
    from ..kernels import format_rows

    vectors = np.asarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n != len(words):
        raise ValueError(f"{len(words)} words but {n} vectors")
    for w in words:
        if not w or any(c in w for c in " \n\r") or w != w.strip():
            raise UsageError(f"cannot write {path}: the word {w!r} contains whitespace, which "
                             f"the word2vec text format cannot hold")
    workers = max(1, min(os.cpu_count() or 1, 4))
    rows = max(1, _FORMAT_VALUES // max(dim, 1))
    with atomic_write(path, "wb") as f:
        if header:
            f.write(f"{n} {dim}\n".encode())
        for start in range(0, n, rows * workers):
            blocks = []
            for lo in range(start, min(n, start + rows * workers), rows):
                block = np.ascontiguousarray(vectors[lo:lo + rows])
                blocks.append((lo, block, np.empty(block.size * 16 + len(block), np.uint8),
                               np.empty(len(block), np.int64)))
            threads = [threading.Thread(target=format_rows, args=b[1:]) for b in blocks[1:]]
            for t in threads:
                t.start()
            format_rows(*blocks[0][1:])
            for t in threads:
                t.join()
            for lo, block, out, ends in blocks:
                text = out[:ends[-1]].tobytes()
                starts = [0] + ends[:-1].tolist()
                f.write(b"".join([w.encode("utf-8") + b" " + text[a:b] for w, a, b in
                                  zip(words[lo:lo + len(block)], starts, ends.tolist())]))
