"""Word counts as a file (``bpe count-words``, ``bpe learn --from-counts``): learn again without
re-reading the corpus.

Line 1: ``#embedkit-word-counts {json}`` — the pre-tokenizer the words came from (mode, pattern,
lowercase), so a vocabulary learned from the file is the one learned from the corpus. Then one
``WORD<TAB>COUNT`` line per word (sentencepiece's TSV input), sorted by count descending, then the
word's UTF-8 bytes ascending: a total order, so the file is the same for any sharding.

Byte-level words hold any byte (spaces, tabs, newlines, invalid UTF-8), so WORD is escaped:
``\\`` → ``\\\\``, TAB → ``\\t``, LF → ``\\n``, CR → ``\\r``, and each byte that is not
part of valid UTF-8 → ``\\xHH``; everything else is written as UTF-8. Reading undoes exactly
that, so every word's bytes come back as they were.
"""
from __future__ import annotations

import json
import re
from collections import Counter

from ...errors import InputError
from ..pretokenize import GPT2_PATTERN, WHITESPACE
from ..trainer import word_bytes
from .text import read_bytes

MAGIC = "#embedkit-word-counts "
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_SPECIAL = re.compile(r"[\\\t\n\r\udc80-\udcff]")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.|$)", re.S)
_COUNT = re.compile(r"[1-9][0-9]{0,18}")
_MAX_COUNT = 2**63 - 1


def escape(word: str) -> str:
    text = word_bytes(word).decode("utf-8", "surrogateescape")
    return _SPECIAL.sub(lambda m: _ESCAPES.get(m.group()) or f"\\x{ord(m.group()) - 0xDC00:02x}",
                        text)


def unescape(text: str, where, line: int) -> str:
    def one(m):
        e = m.group(1)
        if e in _UNESCAPES:
            return _UNESCAPES[e]
        if len(e) == 3:
            return chr(0xDC00 + int(e[1:], 16))
        raise InputError(where, f"unknown escape {m.group()!r} in a word (\\\\ \\t \\n \\r \\xHH)",
                         line)

    word = _ESCAPE.sub(one, text) if "\\" in text else text
    return word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def settings(byte_level: bool, lowercase: bool, pattern: str | None) -> dict:
    return {"version": 1, "mode": "byte-level" if byte_level else "word",
            "pattern": (pattern or GPT2_PATTERN) if byte_level else WHITESPACE,
            "lowercase": bool(lowercase)}


def order(counts) -> list[tuple[str, int]]:
    """(word, count) by count descending, then UTF-8 bytes ascending."""
    return sorted(counts.items(), key=lambda wc: (-wc[1], word_bytes(wc[0])))


def dump(f, counts, meta: dict) -> None:
    """Write ``counts`` ({word: count}) to the text file ``f``."""
    f.write(MAGIC + json.dumps(meta, ensure_ascii=False) + "\n")
    for word, n in order(counts):
        f.write(f"{escape(word)}\t{n}\n")


def load(path) -> tuple[Counter, dict]:
    """(Counter of words, the header's settings) of a counts file; bad lines name the line."""
    data = read_bytes(path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines or not lines[0].startswith(MAGIC.encode()):
        raise InputError(path, f"not a word-counts file (no '{MAGIC.strip()}' first line; "
                               "write one with `embedkit bpe count-words`)", 1)
    meta = _header(lines[0], path)
    counts: Counter = Counter()
    for lineno, raw in enumerate(lines[1:], 2):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(path, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                   f"{e.start + 1})", lineno) from None
        word, tab, n = text.rpartition("\t")
        n = n[:-1] if n.endswith("\r") else n
        if not tab or not _COUNT.fullmatch(n) or int(n) > _MAX_COUNT:
            raise InputError(path, "expected WORD<TAB>COUNT with a count of 1 .. 2^63-1", lineno)
        if not word or "\t" in word:
            raise InputError(path, "empty word or an unescaped tab (write \\t)", lineno)
        word = unescape(word, path, lineno)
        if word in counts:
            raise InputError(path, f"word {text.rpartition(chr(9))[0][:40]!r} listed twice", lineno)
        counts[word] = int(n)
    if not counts:
        raise InputError(path, "no words: nothing to learn from")
    if meta["mode"] == "word" and any(any(c.isspace() for c in w) for w in counts):
        raise InputError(path, "a word-mode word holds whitespace")
    return counts, meta


def _header(raw: bytes, path) -> dict:
    try:
        meta = json.loads(raw[len(MAGIC):].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(path, "the first line's settings are not valid JSON", 1) from None
    if not isinstance(meta, dict) or meta.get("version") != 1 or \
            meta.get("mode") not in ("byte-level", "word") or \
            not isinstance(meta.get("pattern"), str) or not isinstance(meta.get("lowercase"), bool):
        raise InputError(path, "the first line's settings need version 1, mode byte-level|word, "
                               "pattern (a regex) and lowercase (true/false)", 1)
    if meta["mode"] == "byte-level":
        from ...errors import UsageError
        from ..pretokenize import resolve_pattern

        try:
            resolve_pattern(meta["pattern"], "pattern")
        except UsageError as e:
            raise InputError(path, str(e), 1) from None
    elif meta["pattern"] != WHITESPACE:
        raise InputError(path, f"word mode splits on {WHITESPACE!r}, not a pattern", 1)
    return meta
