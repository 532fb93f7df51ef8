"""subword-nmt v0.2 codes: ``#version: 0.2`` then one merge a line, ``</w>`` glued to word ends."""
from __future__ import annotations

from ...errors import InputError
from .hf_pair import HEADER


def dump_codes(tokens: list[str], merges: list[tuple[int, int]]) -> str:
    """subword-nmt v0.2 codes: the same pairs (``</w>`` glued to word-final symbols)."""
    return "\n".join([HEADER] + [f"{tokens[a]} {tokens[b]}" for a, b in merges]) + "\n"


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


def read(text: str, where: str):
    """A word-mode tokenizer from codes (characters they never use are unknown)."""
    from .. import files
    from ..trainer import EOW, UNK, dedupe_merges
    from . import Parts

    base, pairs = parse_codes(text, where)
    chars = sorted({b[:-len(EOW)] if b.endswith(EOW) else b for b in base})
    tokens = [UNK, UNK + EOW] + chars + [c + EOW for c in chars]
    ids = {t: i for i, t in enumerate(tokens)}
    for a, b in pairs:
        if a + b not in ids:
            ids[a + b] = len(tokens)
            tokens.append(a + b)
    merges = []
    for n, (a, b) in enumerate(pairs, 2):
        for s in (a, b):
            if s not in ids:
                raise InputError(where, f"unknown symbol {s!r}: neither a character nor the "
                                        f"result of a merge", n)
        merges.append((ids[a], ids[b]))
    return Parts(tokens, dedupe_merges(merges), files.settings_for(False))
