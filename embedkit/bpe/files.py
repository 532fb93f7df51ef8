"""embedkit's ``embedkit.json`` settings: how a vocabulary pre-tokenizes and encodes.

The readers and writers of each tokenizer file kind live in ``formats/`` (one module each,
chosen by ``formats/detect.py``); the names below stay importable from here.
"""
from __future__ import annotations

from ..errors import InputError
from .formats.hf_pair import MERGES, VOCAB  # noqa: F401  (re-exported)
from .formats.subword_nmt import dump_codes  # noqa: F401
from .formats.text import parse_json as _json, read_text  # noqa: F401
from .formats.tokdir import SETTINGS
from .pretokenize import GPT2_PATTERN, WHITESPACE


def dump(tokens: list[str], merges: list[tuple[int, int]], settings: dict) -> dict[str, str]:
    """The three files of a TOKDIR as text."""
    from .formats.tokdir import dump as dump_tokdir

    return dump_tokdir(tokens, merges, settings)


def settings_for(byte_level: bool, lowercase: bool = False, special_tokens=()) -> dict:
    return {"format": "embedkit-bpe", "version": 1,
            "mode": "byte-level" if byte_level else "word",
            "pattern": GPT2_PATTERN if byte_level else WHITESPACE,
            "lowercase": bool(lowercase), "special_tokens": list(special_tokens),
            "end_of_word_suffix": None if byte_level else "</w>"}


def parse_settings(text: str | None, where: str = SETTINGS) -> dict:
    """embedkit.json → settings; without it, HF's byte-level GPT-2 settings."""
    if text is None:
        return settings_for(True)
    s = _json(text, where)
    if not isinstance(s, dict) or s.get("format") != "embedkit-bpe":
        raise InputError(where, "not an embedkit BPE settings file (\"format\": \"embedkit-bpe\")")
    if s.get("mode") not in ("byte-level", "word", "sentencepiece"):
        raise InputError(where, f"unknown mode {s.get('mode')!r} (byte-level, word or sentencepiece)")
    base = settings_for(s["mode"] == "byte-level")
    base.update(s)
    if not isinstance(base["special_tokens"], list) or \
            not all(isinstance(t, str) and t for t in base["special_tokens"]):
        raise InputError(where, "special_tokens must be a list of non-empty strings")
    _check_setting_types(base, where)
    return base


def _check_setting_types(s: dict, where: str) -> None:
    """Each known field of the right type (a lying file is one error, not a crash in encode)."""
    import regex

    if type(s.get("version")) is not int:
        raise InputError(where, f"field 'version' must be an integer (got {s.get('version')!r})")
    if not isinstance(s["lowercase"], bool):
        raise InputError(where, f"field 'lowercase' must be true or false (got {s['lowercase']!r})")
    if s["end_of_word_suffix"] is not None and not isinstance(s["end_of_word_suffix"], str):
        raise InputError(where, "field 'end_of_word_suffix' must be a string or null")
    if not isinstance(s["pattern"], str):
        raise InputError(where, "field 'pattern' must be a regular expression string")
    try:
        regex.compile(s["pattern"])
    except (regex.error, RecursionError, OverflowError, ValueError) as e:
        raise InputError(where, f"field 'pattern' is not a valid regular expression: {e}") from None
