"""HF / GPT-2 ``vocab.json`` (``{token: id}``) + ``merges.txt`` (``#version: 0.2``, one pair a line)."""
from __future__ import annotations

import json

from ...errors import InputError
from .text import parse_json

VOCAB, MERGES = "vocab.json", "merges.txt"
HEADER = "#version: 0.2"


def parse_vocab(text: str, where: str = VOCAB) -> list[str]:
    """vocab.json → tokens in id order; ids must be 0..n-1, each used once."""
    vocab = parse_json(text, where)
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
        merges.append(check_pair(parts[0], parts[1], ids, where, n, check_result))
    from ..trainer import dedupe_merges

    return dedupe_merges(merges)


def check_pair(a: str, b: str, ids: dict[str, int], where, line, check_result=True,
               vocab: str = VOCAB):
    for p in (a, b):
        if p not in ids:
            raise InputError(where, f"unknown symbol {p!r} (not in {vocab})", line)
    if check_result and a + b not in ids:
        raise InputError(where, f"merge result {a + b!r} is not in {vocab}", line)
    return ids[a], ids[b]


def dump_vocab(tokens: list[str]) -> str:
    return json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False) + "\n"


def dump_merges(tokens: list[str], merges: list[tuple[int, int]]) -> str:
    """The header HF and GPT-2 readers expect, one ``left right`` a line, final newline."""
    return "\n".join([HEADER] + [f"{tokens[a]} {tokens[b]}" for a, b in merges]) + "\n"
