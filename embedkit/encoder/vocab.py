"""The encoder's vocabulary: the BPE tokenizer's pieces plus the special ids the encoder needs.

Policy: the encoder needs ``[PAD]`` (padding, never attended to), ``[MASK]`` (mlm blanks) and
``[SEP]`` (the end of a corpus line: training windows run across lines, and ``generate`` stops
there). When the TOKDIR already defines one of them as a special token its id is used; the
others are appended after the tokenizer's ids (ids vocab_size, vocab_size + 1, ...), so a plain
BPE TOKDIR works unchanged and text never turns into those ids by accident.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

EXTRAS = ("[PAD]", "[MASK]", "[SEP]")


def tokenizer_fingerprint(files: dict[str, str]) -> str:
    """A hash of the tokenizer's files, to refuse a TOKDIR that does not match a checkpoint."""
    blob = json.dumps(files, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()[:16]


class PieceVocab:
    """Ids of text pieces and of the encoder's special tokens, over a ``BPETokenizer``."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        base = tokenizer.vocab_size
        specials = set(tokenizer.special_tokens)
        self.special = {}
        n = base
        for name in EXTRAS:
            i = tokenizer.token_to_id(name) if name in specials else None
            if i is None:
                i, n = n, n + 1
            self.special[name] = i
        self.size = n
        self.pad, self.mask, self.sep = (self.special[k] for k in EXTRAS)
        self.is_regular = np.ones(n, bool)
        for name in specials:
            self.is_regular[tokenizer.token_to_id(name)] = False
        for i in self.special.values():
            self.is_regular[i] = False

    def encode_batch(self, lines: list[str]) -> list[list[int]]:
        return self.tokenizer.encode_batch(lines)

    def piece(self, i: int) -> str:
        """The piece's string as the tokenizer writes it (e.g. ``Ġcat``), or the special's name."""
        if i >= self.tokenizer.vocab_size:
            return EXTRAS[[self.special[k] for k in EXTRAS].index(i)]
        return self.tokenizer.id_to_token(i)

    def decode(self, ids) -> str:
        """Text of the ids; the encoder's own specials are left out."""
        base = self.tokenizer.vocab_size
        return self.tokenizer.decode([int(i) for i in ids if i < base])
