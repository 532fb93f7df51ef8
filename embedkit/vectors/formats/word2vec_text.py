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
from .checks import (MAX_DIM, WordPolicy, check_model, decode_words, drop_duplicates,
                     opened)

_FORMAT_VALUES = 1 << 17  # values formatted per thread per step: bounds the write buffers (~5 MiB)
_KERNEL_MIN_BYTES = 8 << 20  # below this, importing Numba costs more than it saves
_BLOCK = 64 << 20  # bytes of whole lines parsed at a time


def _header(first: bytes) -> tuple[int, int] | None:
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def read(path: str | os.PathLike, limit: int | None = None, policy: WordPolicy | None = None
         ) -> tuple[list[str], np.ndarray]:
    """Return ``(words, float32 [N, D])``; accepts trailing spaces, CRLF, a BOM, no header.

    The file is streamed in blocks of whole lines (memory: the matrix plus one block), after a
    first pass that counts its lines: the matrix is sized by the lines really there, never by
    what a header claims. Odd words follow ``policy`` (default: ``WordPolicy()``).
    """
    policy = policy if policy is not None else WordPolicy()
    with opened(path) as f:
        try:
            return _read(path, f, limit, policy)
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror}") from None


def _read(path, f, limit, policy):
    size = os.fstat(f.fileno()).st_size
    bom = 3 if f.read(3) == b"\xef\xbb\xbf" else 0
    end = _content_end(f, size)
    if end <= bom:
        raise InputError(path, "empty model: no vectors")
    f.seek(bom)
    first = f.readline(end - bom)
    if b"\x00" in first:
        raise InputError(path, "NUL bytes in a text vector file (a binary file?)")
    head = _header(first)
    if head:
        n, dim = head
        if n == 0 or dim == 0:
            raise InputError(path, f"empty model: the header says {n} vectors of dimension {dim}", 1)
        if dim > MAX_DIM:
            raise InputError(path, f"implausible dimension {dim} in the header", 1)
        start = bom + len(first)
        # A vector line takes at least 2·D+1 bytes ("w 1 2 ... D"): a big file's lying header is
        # refused before the pass that counts lines (a small file's count names the shortfall).
        if n > (end - start + 1) // (2 * dim + 1) and end - start > _BLOCK:
            raise InputError(path, f"the header says {n} vectors of dimension {dim}, more than "
                                   f"the file's {size} bytes can hold", 1)
    else:
        dim = len(first.split()) - 1
        if dim <= 0:
            raise InputError(path, "no vector on the first line (expected 'word v1 ... vD')", 1)
        start = bom
    n_lines = _count_lines(f, start, end)
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
    vectors = np.empty((n_lines, dim), np.float32)
    raw_words: list[bytes] = []
    for block, row, count in _line_blocks(f, start, end, n_lines):
        if b"\x00" in block:
            raise InputError(path, "NUL bytes in a text vector file (a binary file?)")
        parse = _parse_fast if len(block) >= _KERNEL_MIN_BYTES else _parse
        raw_words += parse(path, block, count, dim, first_line + row, bool(head),
                           vectors[row:row + count], policy)
    words = decode_words(path, raw_words, first_line, policy)
    del raw_words  # a 2M-word file: ~100 MB of bytes objects
    check_model(path, words, vectors, first_line, duplicates_ok=not policy.strict)
    return drop_duplicates(words, vectors, policy)


def _content_end(f, size: int) -> int:
    """File offset just past the last byte that is not whitespace (read backwards in blocks)."""
    pos = size
    while pos > 0:
        lo = max(0, pos - (1 << 16))
        f.seek(lo)
        k = _rstrip_len(f.read(pos - lo))
        if k:
            return lo + k
        pos = lo
    return 0


def _count_lines(f, start: int, end: int) -> int:
    if end <= start:
        return 0
    f.seek(start)
    n, pos = 1, start
    while pos < end:
        chunk = f.read(min(_BLOCK, end - pos))
        if not chunk:
            break
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n


def _line_blocks(f, start: int, end: int, n_lines: int):
    """``(block, first row, lines)``: whole lines of ``[start, end)``, about ``_BLOCK`` bytes
    each, without their final newline, until ``n_lines`` lines were given."""
    f.seek(start)
    pos, row, carry = start, 0, b""
    while pos < end and row < n_lines:
        chunk = f.read(min(_BLOCK, end - pos))
        if not chunk:
            break
        pos += len(chunk)
        data = carry + chunk if carry else chunk
        cut = len(data) if pos >= end else data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut + 1:]
        count = min(block.count(b"\n") + 1, n_lines - row)
        yield block, row, count
        row += count


def _parse(path, body: bytes, n_lines, dim, first_line, has_header, out, policy) -> list[bytes]:
    """Small blocks: C-level splits and one ``np.fromstring`` (no Numba import)."""
    split = [line.partition(b" ") for line in body.split(b"\n", n_lines)[:n_lines]]
    raw_words = [s[0].rstrip(b"\r") for s in split]
    rests = [s[2].strip() for s in split]
    counts = [r.count(b" ") for r in rests]
    if counts.count(dim - 1) != len(counts) or b"" in raw_words:
        for i, (c, w) in enumerate(zip(counts, raw_words)):
            if c != dim - 1 or not w:
                raw_words[i], rests[i] = _fields(path, w, rests[i], dim, first_line + i,
                                                 has_header, policy)
    out[:] = _floats(path, rests, dim, first_line, list(range(len(rests))))
    return raw_words


def _floats(path, rests: list[bytes], dim: int, first_line: int, rows: list[int]) -> np.ndarray:
    """All values of ``rests`` (rows ``rows`` of the file) parsed by ``np.fromstring`` in one go."""
    try:
        flat = np.fromstring(b" ".join(rests), dtype=np.float32, sep=" ")
    except ValueError:
        flat = None
    if flat is None or flat.size != len(rests) * dim:
        _find_bad_value(path, rests, dim, [first_line + r for r in rows])
    return flat.reshape(len(rests), dim)


def _parse_fast(path, data: bytes, n_lines, dim, first_line, has_header, vectors, policy
                ) -> list[bytes]:
    """Big blocks: the Numba parser (~15x faster), exact; odd lines re-parsed by ``_floats``."""
    from ..kernels import BAD_COUNT, RECHECK, parse_vec_lines

    start, end = 0, len(data)
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

    raw_words = [data[a:b] for a, b in zip(ws.tolist(), we.tolist())]
    for i in np.flatnonzero((status == BAD_COUNT) | (ws == we)).tolist():
        raw_words[i], rest = _fields(path, *line_parts(i), dim, first_line + i, has_header, policy)
        vectors[i] = _floats(path, [rest], dim, first_line, [i])[0]
    recheck = np.flatnonzero(status == RECHECK).tolist()
    if recheck:
        rests = [line_parts(i)[1] for i in recheck]
        vectors[recheck] = _floats(path, rests, dim, first_line, recheck)
    return raw_words


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


def _fields(path, word: bytes, rest: bytes, dim, line, has_header, policy) -> tuple[bytes, bytes]:
    """``(word, values)`` of a line whose shape the fast check doubted; tabs and double spaces
    are fine. More than D values: the leading fields are the word (GloVe 840B has words with
    spaces), unless ``policy.strict``."""
    if not word.strip():
        raise InputError(path, "blank line or line starting with a space (expected a word)", line)
    toks = rest.split()
    got = len(toks)
    if got == dim:
        return word, rest
    if got > dim and not policy.strict:
        policy.joined += 1
        return b" ".join([word] + toks[:got - dim]), b" ".join(toks[got - dim:])
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
                f.write(b"".join([w.encode("utf-8", "surrogateescape") + b" " + text[a:b] for w, a, b in
                                  zip(words[lo:lo + len(block)], starts, ends.tolist())]))
