"""Which reader a tokenizer needs, decided from content (names and extensions lie or are missing).

Folders: ``embedkit.json`` → TOKDIR; ``vocab.json`` + ``merges.txt`` → HF pair; else a
``tokenizer.json`` or ``tokenizer.model`` inside. Files: JSON with ``model`` → HF tokenizer.json,
with ``config`` + ``vocab`` → tekken; ``#version`` → subword-nmt codes; ``base64 rank`` lines →
.tiktoken; a protobuf whose first field is a piece → sentencepiece. Parsed results are cached by
content hash (``cache.py``), so a big vocabulary is parsed once.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import InputError
from . import Parts, cache, hf_pair, sentencepiece, tokdir
from .text import decode_text, parse_json, read_bytes

KINDS = ("tokdir", "hf-pair", "tokenizer.json", "tekken", "tiktoken", "sentencepiece", "codes")
_CACHE_MIN_BYTES = 1 << 16  # smaller files parse faster than a cache lookup
_TIKTOKEN_LINE = re.compile(rb"^[A-Za-z0-9+/=]+ [0-9]+\r?$")


def sniff(path: str | os.PathLike, head: bytes | None = None) -> str:
    """One of ``KINDS``; a folder gives the kind of the files it holds."""
    p = Path(path)
    if p.is_dir():
        if (p / tokdir.SETTINGS).is_file():
            return "tokdir"
        if (p / hf_pair.VOCAB).is_file() or (p / hf_pair.MERGES).is_file():
            return "hf-pair"
        raise InputError(p, "not a tokenizer folder: no embedkit.json, vocab.json + merges.txt, "
                            "tokenizer.json or tokenizer.model in it")
    if head is None:
        with open(p, "rb") as f:
            head = f.read(1 << 16)
    if not head.strip():
        raise InputError(p, "empty tokenizer file")
    if head[:2] == b"\x1f\x8b":
        raise InputError(p, "gzip-compressed; decompress it first (gunzip)")
    if sentencepiece.looks_like(head):
        return "sentencepiece"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    first = text.lstrip()[:1]
    if first == b"{":
        return "json"
    line = text.split(b"\n", 1)[0]
    if line.startswith(b"#version"):
        return "codes"
    if _TIKTOKEN_LINE.match(line):
        return "tiktoken"
    if b"\0" in head:
        raise InputError(p, "unrecognised binary file: not a sentencepiece BPE .model")
    raise InputError(p, "unrecognised tokenizer file: not tokenizer.json, .tiktoken, tekken JSON "
                        "or a sentencepiece .model, and no '#version: 0.2' header (subword-nmt "
                        "codes)", 1)


def _inner(p: Path) -> Path:
    """A model folder holding only tokenizer.json / tokenizer.model stands for that file."""
    if p.is_dir() and not (p / tokdir.SETTINGS).is_file() and not (p / hf_pair.VOCAB).is_file() \
            and not (p / hf_pair.MERGES).is_file():
        for name in ("tokenizer.json", "tokenizer.model"):
            if (p / name).is_file():
                return p / name
    return p


def read(path: str | os.PathLike, pattern: str | None = None) -> Parts:
    """Parts of any supported tokenizer; ``pattern`` overrides the pre-tokenizer (a .tiktoken
    file that is not one of the published ones needs it)."""
    p = _inner(Path(path))
    if not p.exists():
        raise InputError(p, "no such tokenizer folder or file")
    if p.is_dir():
        kind = sniff(p)
        parts = tokdir.read(p)
        return _with_pattern(parts, pattern)
    data = read_bytes(p)
    kind = sniff(p, data[:1 << 16])
    key = cache.key(data, kind, pattern or "") if len(data) >= _CACHE_MIN_BYTES else None
    if key is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    parts = _parse(kind, data, p, pattern)
    if key is not None:
        cache.put(key, parts)
    return parts


def _parse(kind: str, data: bytes, p: Path, pattern: str | None) -> Parts:
    if kind == "sentencepiece":
        parts = sentencepiece.read(data, p)
        if pattern is not None:
            raise InputError(p, "--pattern does not apply to a sentencepiece model")
        return parts
    text = decode_text(data, p)
    if kind == "codes":
        from . import subword_nmt

        return _with_pattern(subword_nmt.read(text, str(p)), pattern)
    if kind == "tiktoken":
        from . import tiktoken

        return tiktoken.read(text, cache.key(data), p, pattern)
    obj = parse_json(text, p)
    if not isinstance(obj, dict):
        raise InputError(p, "unrecognised JSON tokenizer: not an object")
    if "model" in obj:
        from . import tokenizer_json

        return _with_pattern(tokenizer_json.read(text, obj, p), pattern)
    if "config" in obj and "vocab" in obj:
        from . import tiktoken

        return tiktoken.read_tekken(obj, p, pattern)
    raise InputError(p, "unrecognised JSON tokenizer: neither a tokenizer.json (\"model\") nor a "
                        "tekken file (\"config\" + \"vocab\")")


def _with_pattern(parts: Parts, pattern: str | None) -> Parts:
    if pattern is None:
        return parts
    if parts.settings["mode"] != "byte-level":
        raise InputError("--pattern", "applies to byte-level vocabularies only")
    settings = dict(parts.settings, pattern=pattern)
    return Parts(parts.tokens, parts.merges, settings)
