"""Reading tokenizer files as text or JSON with errors that name the file and line."""
from __future__ import annotations

import json
from pathlib import Path

from ...corpus import open_file
from ...errors import InputError


def read_bytes(path: str | Path) -> bytes:
    with open_file(path) as f:
        try:
            return f.read()
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror}") from None


def decode_text(data: bytes, where) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(where, f"invalid UTF-8 (byte 0x{data[e.start]:02x})", line) from None


def read_text(path: str | Path) -> str:
    return decode_text(read_bytes(path), path)


def parse_json(text: str, where):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"invalid JSON: {e.msg} (column {e.colno})", e.lineno) from None
    except RecursionError:
        raise InputError(where, "invalid JSON: nested too deeply") from None
