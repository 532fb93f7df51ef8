"""A TOKDIR: ``vocab.json`` + ``merges.txt`` (+ ``embedkit.json``); without ``embedkit.json`` it is
an HF folder and GPT-2's byte-level settings are assumed."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import InputError
from . import Parts, hf_pair
from .text import read_text

SETTINGS = "embedkit.json"
NAMES = (hf_pair.VOCAB, hf_pair.MERGES, SETTINGS)


def read_dir(path: str | os.PathLike) -> dict[str, str]:
    """The tokenizer files of a TOKDIR as text (``embedkit.json`` only if present)."""
    d = Path(path)
    if not d.exists():
        raise InputError(d, "no such tokenizer folder")
    if not d.is_dir():
        raise InputError(d, "expected a tokenizer folder (vocab.json + merges.txt), got a file")
    out = {}
    for name in NAMES:
        f = d / name
        if name == SETTINGS and not f.exists():
            continue
        if not f.exists():
            raise InputError(d, f"tokenizer folder has no {name}")
        out[name] = read_text(f)
    return out


def from_texts(d: dict[str, str], where: str | os.PathLike = "") -> Parts:
    """Parts from file texts {name: text}: vocab.json + merges.txt (+ embedkit.json)."""
    from .. import files
    from ..trainer import EOW, UNK

    def at(name):
        return str(Path(where) / name) if where else name

    for name in (hf_pair.VOCAB, hf_pair.MERGES):
        if name not in d:
            raise InputError(where or "tokenizer", f"missing {name}")
    settings = files.parse_settings(d.get(SETTINGS), at(SETTINGS))
    tokens = hf_pair.parse_vocab(d[hf_pair.VOCAB], at(hf_pair.VOCAB))
    ids = {t: i for i, t in enumerate(tokens)}
    merges = hf_pair.parse_merges(d[hf_pair.MERGES], ids, at(hf_pair.MERGES),
                                  check_result=settings["mode"] != "sentencepiece")
    if settings["mode"] == "word" and (UNK not in ids or UNK + EOW not in ids):
        raise InputError(at(hf_pair.VOCAB), f"word-mode vocabulary lacks {UNK} or {UNK + EOW}")
    missing = [t for t in settings["special_tokens"] if t not in ids]
    if missing:
        raise InputError(at(SETTINGS), f"special token {missing[0]!r} is not in {hf_pair.VOCAB}")
    return Parts(tokens, merges, settings)


def read(path: str | os.PathLike) -> Parts:
    return from_texts(read_dir(path), path)


def dump(tokens: list[str], merges: list[tuple[int, int]], settings: dict) -> dict[str, str]:
    """The three files' text."""
    return {hf_pair.VOCAB: hf_pair.dump_vocab(tokens),
            hf_pair.MERGES: hf_pair.dump_merges(tokens, merges),
            SETTINGS: json.dumps(settings, ensure_ascii=False, indent=1) + "\n"}
