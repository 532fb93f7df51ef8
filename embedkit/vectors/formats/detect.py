"""Which reader a vector file needs, decided from its first bytes (extensions lie or are missing)."""
from __future__ import annotations

import os
import re
import struct

from ...errors import InputError
from .checks import read_bytes
from .fasttext_bin import MAGIC, args_look_valid, read_args

FORMATS = ("native", "fasttext", "w2v-bin", "vec")
_TEXT_NUMBER = re.compile(rb"^[-+0-9.eEnaNiIfF \t\r\n]*$")


def detect(path: str | os.PathLike) -> str:
    """One of ``FORMATS``; raises ``InputError`` for missing, empty or unknown files."""
    head = read_bytes(path, 1 << 16)
    if not head.strip():
        raise InputError(path, "empty model: the file is empty")
    if head.startswith(b"EMBEDKIT"):
        return "native"
    if head[:2] == b"\x1f\x8b":
        raise InputError(path, "gzip-compressed; decompress it first (gunzip)")
    if len(head) >= 8:
        magic_le, = struct.unpack_from("<i", head)
        magic_be, = struct.unpack_from(">i", head)
        if magic_le == MAGIC:
            return "fasttext"
        if magic_be == MAGIC:
            raise InputError(path, "big-endian fastText file: only little-endian files are supported")
    # Pre-2017 fastText has no magic: small little-endian int32s (NUL bytes) that make sense.
    if len(head) >= 56 and b"\x00" in head[:56] and args_look_valid(read_args(head, 0)):
        return "fasttext"
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    nl = body.find(b"\n")
    first = body[:nl] if nl >= 0 else body
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        sp = body.find(b" ", nl + 1)
        if sp < 0:
            return "vec"
        # Text if the rest of the first entry's line is numbers; D float32s are not (in practice).
        end = body.find(b"\n", sp + 1)
        rest = body[sp + 1:end if end >= 0 else len(body)]
        return "vec" if _TEXT_NUMBER.match(rest) and rest.strip() else "w2v-bin"
    if len(parts) >= 2 and b"\x00" not in first and _TEXT_NUMBER.match(b" ".join(parts[1:4])):
        return "vec"
    raise InputError(path, "unrecognised vector file (expected an embedkit .ekv, word2vec text or "
                           "binary, or a fastText .bin model)")
