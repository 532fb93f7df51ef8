"""Streaming corpus reader shared by bpe/, train/ and encoder/.

Reads files, ``-`` (stdin) and gzip files (detected by their magic bytes) in large binary blocks so
memory stays bounded by the block size, never by the file or by its longest line: a line longer
than ``max_line`` bytes is cut into pieces at a whitespace boundary (just before the last
whitespace character of a run, which keeps GPT-2 style pre-tokenization of the pieces identical to
that of the whole line), or at a UTF-8 character boundary when it has no whitespace at all.
Errors name the file and line.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import sys
import zlib
from typing import BinaryIO, Iterable, Iterator, NamedTuple

from .errors import InputError

BLOCK_BYTES = 1 << 22
MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
_WS = b" \t\n\r\x0b\x0c"


class Block(NamedTuple):
    """A run of whole lines (``complete``) or one piece of a line longer than ``max_line``."""

    path: str
    lineno: int  # 1-based number of the first line in ``data``
    data: bytes
    complete: bool  # False: the line goes on in the next block


class Line(NamedTuple):
    path: str
    lineno: int
    text: str  # without its line ending
    end: bool  # False: a piece of a long line that goes on in the next Line


@contextlib.contextmanager
def open_file(path: str | os.PathLike, expected: str = "a file") -> Iterator[BinaryIO]:
    """``open(path, "rb")`` with a missing file, a folder or an OS error as a one-line InputError.

    Every reader of user files goes through here so the three messages read the same everywhere.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InputError(name, f"is a folder, expected {expected}")
    try:
        f = open(name, "rb")
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except OSError as e:
        raise InputError(name, f"cannot read: {e.strerror}") from None
    with f:
        yield f


@contextlib.contextmanager
def open_input(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a corpus file for binary reading: ``-`` is stdin, gzip is recognised by content."""
    name = os.fspath(path)
    if name == "-":
        yield sys.stdin.buffer
        return
    with open_file(name) as raw:
        if raw.peek(2)[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw) as gz:
                yield gz
        else:
            yield raw


def _cut_point(buf: bytes, limit: int) -> int:
    """Where to cut a line longer than ``limit``: before a whitespace byte that precedes a
    non-whitespace byte, else at a UTF-8 character boundary."""
    for i in range(limit - 1, max(limit // 2, 1) - 1, -1):
        if buf[i] in _WS and buf[i + 1] not in _WS:
            return i
    i = limit
    while i > 1 and (buf[i] & 0xC0) == 0x80:
        i -= 1
    return i


def iter_blocks(path: str | os.PathLike, block_bytes: int = BLOCK_BYTES,
                max_line: int = MAX_LINE_BYTES, keep_bom: bool = False) -> Iterator[Block]:
    """Yield the file as blocks of whole lines (a UTF-8 BOM at the start is dropped unless
    ``keep_bom``)."""
    name = os.fspath(path)
    lineno = 1
    carry = b""
    first = True
    try:
        with open_input(name) as f:
            while True:
                data = f.read(block_bytes)
                if first:
                    if data.startswith(_BOM) and not keep_bom:
                        data = data[3:]
                    first = False
                if not data:
                    if carry:
                        yield Block(name, lineno, carry, True)
                    return
                buf = carry + data if carry else data
                cut = buf.rfind(b"\n")
                if cut >= 0:
                    block, carry = buf[:cut + 1], buf[cut + 1:]
                    yield Block(name, lineno, block, True)
                    lineno += block.count(b"\n")
                else:
                    carry = buf
                while len(carry) > max_line:
                    cut = _cut_point(carry, max_line)
                    yield Block(name, lineno, carry[:cut], False)
                    carry = carry[cut:]
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(name, f"corrupt gzip data: {e}", lineno) from None
    except OSError as e:
        raise InputError(name, f"cannot read: {e.strerror or e}", lineno) from None


def decode(block: Block, errors: str = "strict") -> str:
    """Decode a block as UTF-8; ``strict`` reports the line and byte offset of the first bad byte.

    ``surrogateescape`` keeps invalid bytes recoverable (``str.encode('utf-8', 'surrogateescape')``
    gives back the exact bytes), which byte-level BPE relies on.
    """
    try:
        return block.data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        line_start = block.data.rfind(b"\n", 0, e.start) + 1
        line = block.lineno + block.data.count(b"\n", 0, e.start)
        raise InputError(block.path, f"invalid UTF-8 (byte 0x{block.data[e.start]:02x} at column "
                                     f"{e.start - line_start + 1})", line) from None


def check_no_nul(block: Block) -> None:
    """Refuse binary input: a NUL byte is never part of a text corpus."""
    i = block.data.find(b"\0")
    if i >= 0:
        line = block.lineno + block.data.count(b"\n", 0, i)
        raise InputError(block.path, "NUL byte: this looks like a binary file, not text", line)


def iter_lines(paths: Iterable[str | os.PathLike], errors: str = "strict", allow_nul: bool = False,
               block_bytes: int = BLOCK_BYTES, max_line: int = MAX_LINE_BYTES,
               keep_ends: bool = False) -> Iterator[Line]:
    """Yield every line of every file without its line ending (``\\n`` or ``\\r\\n``).

    ``keep_ends``: every byte is kept, for exact round trips — the text ends with its ``\\n``
    (none on a last line without one), a ``\\r`` is content and a BOM is not dropped.
    """
    for path in paths:
        for block in iter_blocks(path, block_bytes, max_line, keep_bom=keep_ends):
            if not allow_nul:
                check_no_nul(block)
            text = decode(block, errors)
            if not block.complete:
                yield Line(block.path, block.lineno, text, False)
                continue
            if keep_ends:
                for i, line in enumerate(_split_keep_nl(text)):
                    yield Line(block.path, block.lineno + i, line, True)
                continue
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            for i, line in enumerate(lines):
                if line.endswith("\r"):
                    line = line[:-1]
                yield Line(block.path, block.lineno + i, line, True)


def _split_keep_nl(text: str) -> list[str]:
    """Lines cut after each ``\\n`` (not ``str.splitlines``: it also cuts at ``\\r``, form feeds
    and Unicode line separators, which are content here)."""
    lines = text.split("\n")
    last = lines.pop()
    out = [line + "\n" for line in lines]
    if last:
        out.append(last)
    return out
