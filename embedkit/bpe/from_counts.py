"""Learn a tokenizer from word counts that are already made: a counts file (``--from-counts``)
or a distributed count (``embedkit.cluster``). The same ``trainer.learn`` and settings as
``BPETokenizer.train``, which counts the corpus itself first."""
from __future__ import annotations

from ..errors import InputError, UsageError
from .pretokenize import GPT2_PATTERN, WHITESPACE


def check_vocab_size(vocab_size: int, byte_level: bool, special_tokens=()) -> None:
    """Refuse a byte-level --vocab-size below the alphabet before any counting is spent."""
    n = len(dict.fromkeys(special_tokens)) + 256
    if byte_level and vocab_size < n:
        raise UsageError(f"vocab size {vocab_size} is smaller than the base alphabet ({n}: "
                         f"special tokens + 256 byte symbols)")


def tokenizer(counts, vocab_size: int, *, min_frequency: int = 2, byte_level: bool = True,
              lowercase: bool = False, special_tokens=(), pattern: str | None = None,
              where: str = "corpus"):
    """A ``BPETokenizer`` learned from ``counts`` (a ``Counter`` or a ``scanner.WordCounter``)
    of words pre-tokenized with these settings (``pattern`` None: GPT-2's)."""
    from . import files
    from .model import BPETokenizer
    from .trainer import learn

    specials = list(dict.fromkeys(special_tokens))
    if any(not isinstance(t, str) or not t or any(c.isspace() for c in t) for t in specials):
        raise UsageError("special tokens must be non-empty strings without whitespace")
    if not counts:
        raise InputError(where, "empty corpus: no words to learn from")
    tokens, merges = learn(counts, int(vocab_size), min_frequency=min_frequency,
                           byte_level=byte_level, special_tokens=specials, release=True)
    settings = files.settings_for(byte_level, lowercase, specials)
    if byte_level and pattern not in (None, GPT2_PATTERN, WHITESPACE):
        settings["pattern"] = pattern
    return BPETokenizer(tokens, merges, settings)
