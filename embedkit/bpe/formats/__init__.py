"""Tokenizer files: one module per kind, chosen by content (``detect.py``), never by name.

Every reader returns :class:`Parts` — tokens in id order, merges as (left id, right id) in rank
order, and the settings ``BPETokenizer`` encodes with — so one fast encoder serves them all.
"""
from __future__ import annotations

from typing import NamedTuple


class Parts(NamedTuple):
    tokens: list[str]
    merges: list[tuple[int, int]]
    settings: dict


def reserved(i: int) -> str:
    """Placeholder for an id no token uses (tiktoken's and HF's vocabularies may have holes)."""
    return f"<|embedkit:reserved:{i}|>"
