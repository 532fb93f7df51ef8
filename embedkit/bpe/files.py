"""BPE files: HF/GPT-2 ``vocab.json`` + ``merges.txt``, embedkit's ``embedkit.json`` settings, and
subword-nmt ``codes`` — parsed from text with errors that name the file and line.

Everything here works on text, so a tokenizer can live in a folder (``read_dir``) or be embedded
in another model file (a dict of file name → text).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..corpus import open_file
from ..errors import InputError
from .pretokenize import GPT2_PATTERN, WHITESPACE

VOCAB, MERGES, SETTINGS = "vocab.json", "merges.txt", "embedkit.json"
HEADER = "#version: 0.2"


def settings_for(byte_level: bool, lowercase: bool = False, special_tokens=()) -> dict:
    return {"format": "embedkit-bpe", "version": 1,
            "mode": "byte-level" if byte_level else "word",
            "pattern": GPT2_PATTERN if byte_level else WHITESPACE,
            "lowercase": bool(lowercase), "special_tokens": list(special_tokens),
            "end_of_word_suffix": None if byte_level else "</w>"}


def dump(tokens: list[str], merges: list[tuple[int, int]], settings: dict) -> dict[str, str]:
    """The three files' text; merges.txt has the header HF and GPT-2 readers expect, final \\n."""
    vocab = json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False)
    lines = [HEADER] + [f"{tokens[a]} {tokens[b]}" for a, b in merges]
    return {VOCAB: vocab + "\n", MERGES: "\n".join(lines) + "\n",
            SETTINGS: json.dumps(settings, ensure_ascii=False, indent=1) + "\n"}


def dump_codes(tokens: list[str], merges: list[tuple[int, int]]) -> str:
    """subword-nmt v0.2 codes: the same pairs (``</w>`` glued to word-final symbols)."""
    return "\n".join([HEADER] + [f"{tokens[a]} {tokens[b]}" for a, b in merges]) + "\n"


def _json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"invalid JSON: {e.msg} (column {e.colno})", e.lineno) from None


def parse_vocab(text: str, where: str = VOCAB) -> list[str]:
    """vocab.json → tokens in id order; ids must be 0..n-1, each used once."""
    vocab = _json(text, where)
    if not isinstance(vocab, dict) or not vocab:
        raise InputError(where, "expected a non-empty JSON object {token: id}")
    tokens: list[str | None] = [None] * len(vocab)
    for tok, i in vocab.items():
        if type(i) is not int or not 0 <= i < len(vocab):
            raise InputError(where, f"token {tok!r} has id {i!r}; ids must be 0..{len(vocab) - 1}")
        if tokens[i] is not None:
            raise InputError(where, f"id {i} is used twice ({tokens[i]!r} and {tok!r})")
        tokens[i] = tok
    return tokens  # type: ignore[return-value]


def parse_merges(text: str, ids: dict[str, int], where: str = MERGES,
                 check_result: bool = True) -> list[tuple[int, int]]:
    """merges.txt (or codes) → (left id, right id) in rank order; a repeated pair keeps its last rank."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    merges = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if n == 1 and line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError(where, f"bad merge line {line[:40]!r}: expected two symbols separated "
                                    f"by one space", n)
        for p in parts:
            if p not in ids:
                raise InputError(where, f"unknown symbol {p!r} (not in {VOCAB})", n)
        if check_result and parts[0] + parts[1] not in ids:
            raise InputError(where, f"merge result {parts[0] + parts[1]!r} is not in {VOCAB}", n)
        merges.append((ids[parts[0]], ids[parts[1]]))
    from .trainer import dedupe_merges

    return dedupe_merges(merges)


def parse_settings(text: str | None, where: str = SETTINGS) -> dict:
    """embedkit.json → settings; without it, HF's byte-level GPT-2 settings."""
    if text is None:
        return settings_for(True)
    s = _json(text, where)
    if not isinstance(s, dict) or s.get("format") != "embedkit-bpe":
        raise InputError(where, "not an embedkit BPE settings file (\"format\": \"embedkit-bpe\")")
    if s.get("mode") not in ("byte-level", "word"):
        raise InputError(where, f"unknown mode {s.get('mode')!r} (byte-level or word)")
    base = settings_for(s["mode"] == "byte-level")
    base.update(s)
    if not isinstance(base["special_tokens"], list) or \
            not all(isinstance(t, str) and t for t in base["special_tokens"]):
        raise InputError(where, "special_tokens must be a list of non-empty strings")
    return base


def read_text(path: Path) -> str:
    with open_file(path) as f:
        try:
            data = f.read()
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(path, f"invalid UTF-8 (byte 0x{data[e.start]:02x})", line) from None


def read_dir(path: str | os.PathLike) -> dict[str, str]:
    """The tokenizer files of a TOKDIR as text (``embedkit.json`` only if present)."""
    d = Path(path)
    if not d.exists():
        raise InputError(d, "no such tokenizer folder")
    if not d.is_dir():
        raise InputError(d, "expected a tokenizer folder (vocab.json + merges.txt), got a file")
    out = {}
    for name in (VOCAB, MERGES, SETTINGS):
        f = d / name
        if name == SETTINGS and not f.exists():
            continue
        if not f.exists():
            raise InputError(d, f"tokenizer folder has no {name}")
        out[name] = read_text(f)
    return out


def parse_codes(text: str, where: str = "codes") -> tuple[list[str], list[tuple[str, str]]]:
    """subword-nmt v0.2 codes → (base symbols, merge pairs as strings).

    Base symbols are the single characters (with or without ``</w>``) the merges use; v0.1 files
    (no header, ``</w>`` as a separate symbol) and byte-mode codes are refused with a clear message.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].startswith("#version:"):
        raise InputError(where, "not a TOKDIR nor subword-nmt codes: no '#version: 0.2' header "
                                "(subword-nmt v0.1 codes are not supported)", 1)
    version = lines[0].split()[-1]
    if version == "byte" or version.rstrip(".0") != "0.2":
        raise InputError(where, f"unsupported codes version {lines[0][9:].strip()!r} "
                                "(0.2 text codes only)", 1)
    pairs = []
    base = set()
    for n, line in enumerate(lines[1:], 2):
        parts = line.rstrip("\r").split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError(where, f"bad merge line {line[:40]!r}: expected two symbols separated "
                                    f"by one space", n)
        for p in parts:
            if len(p[:-4] if p.endswith("</w>") else p) == 1:
                base.add(p)
        pairs.append((parts[0], parts[1]))
    return sorted(base, key=lambda s: (s.endswith("</w>"), s)), pairs
