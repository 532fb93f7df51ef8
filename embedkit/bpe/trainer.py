"""Learn BPE merges from word counts: build the initial alphabet and symbol arrays, run the kernel.

Token ids follow HF tokenizers' ``BpeTrainer``: special tokens first, then the alphabet sorted by
code point (byte-level: all 256 byte symbols, so every input is encodable), then one id per new
merge result in the order learned. Because the kernel breaks count ties by the smallest pair of
these ids, embedkit learns the same merges as HF from the same counts.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from ..errors import UsageError
from .pretokenize import bytes_to_unicode, byte_alphabet

EOW = "</w>"
UNK = "<unk>"


def word_bytes(word: str) -> bytes:
    """UTF-8 bytes of a word; invalid input bytes kept by ``surrogateescape`` come back exactly."""
    try:
        return word.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return word.encode("utf-8", "surrogatepass")


class _Vocab:
    """Token strings in id order, first occurrence wins (a special token may equal a symbol)."""

    def __init__(self):
        self.tokens: list[str] = []
        self.ids: dict[str, int] = {}

    def add(self, token: str) -> int:
        if token not in self.ids:
            self.ids[token] = len(self.tokens)
            self.tokens.append(token)
        return self.ids[token]


def base_vocab(byte_level: bool, special_tokens, words=()) -> _Vocab:
    """Special tokens, then the alphabet. Word mode: ``<unk>``, ``<unk></w>``, every character
    seen, then each of them with the ``</w>`` end-of-word marker."""
    v = _Vocab()
    for t in special_tokens:
        v.add(t)
    if byte_level:
        for s in byte_alphabet():
            v.add(s)
        return v
    v.add(UNK)
    v.add(UNK + EOW)
    chars = sorted(set(itertools.chain.from_iterable(words)))
    for c in chars:
        v.add(c)
    for c in chars:  # every known character may end a word, even if none did in training
        v.add(c + EOW)
    return v


def _byte_ids(vocab: _Vocab) -> np.ndarray:
    """Token id of each byte's symbol."""
    return np.array([vocab.ids[c] for c in bytes_to_unicode()], np.int32)


def _symbols(words: list[str], vocab: _Vocab, byte_level: bool):
    """Flat int32 symbol ids of all words and the int64 start offsets (length len(words)+1)."""
    if byte_level:
        raw = [word_bytes(w) for w in words]
        sym = _byte_ids(vocab)[np.frombuffer(b"".join(raw), np.uint8)]
        lengths = np.fromiter(map(len, raw), np.int64, len(raw))
    else:
        sym = np.fromiter((vocab.ids[c] for w in words for c in w), np.int32)
        lengths = np.fromiter(map(len, words), np.int64, len(words))
    wstart = np.zeros(len(words) + 1, np.int64)
    np.cumsum(lengths, out=wstart[1:])
    if not byte_level:
        ends = wstart[1:] - 1
        sym[ends] = [vocab.ids[w[-1] + EOW] for w in words]
    return sym, wstart


def learn(counts, vocab_size: int, *, min_frequency: int = 2, byte_level: bool = True,
          special_tokens=(), release: bool = False) -> tuple[list[str], list[tuple[int, int]]]:
    """Return (tokens in id order, merges as (left id, right id) pairs in rank order).

    ``counts``: a Counter of words, or the ``scanner.WordCounter`` that ``count.count`` gives for
    byte-level files.

    ``release=True`` empties ``counts`` once it is turned into arrays (lower peak memory).
    """
    from .kernels import learn_merges

    table = not isinstance(counts, Mapping)  # a scanner.WordCounter (byte-level only)
    words = [] if table else list(counts)
    vocab = base_vocab(byte_level, special_tokens, () if byte_level else words)
    if vocab_size < len(vocab.tokens):
        what = "256 byte symbols" if byte_level else "characters of the corpus"
        raise UsageError(f"vocab size {vocab_size} is smaller than the base alphabet "
                         f"({len(vocab.tokens)}: special tokens + {what})")
    if table:
        sym, wstart = counts.symbols(_byte_ids(vocab))
        wcount = counts.counts()
    else:
        sym, wstart = _symbols(words, vocab, byte_level)
        wcount = np.fromiter(counts.values(), np.int64, len(words))
    del words
    # Each merge joins at least one adjacent pair of some word, so the corpus can give at most
    # that many new tokens: size the kernel's tables by this, not by a huge --vocab-size.
    vocab_size = min(vocab_size, len(vocab.tokens) + max(int(sym.size) - (len(wstart) - 1), 0))
    if release and not table:
        counts.clear()  # the kernel needs only the arrays: free the strings before it runs
    text = [t.encode("utf-8", "surrogatepass") for t in vocab.tokens]
    tok_off = np.zeros(len(text) + 1, np.int64)
    np.cumsum([len(t) for t in text], out=tok_off[1:])
    tok_buf = np.frombuffer(b"".join(text) or b"\0", np.uint8).copy()
    left, right, new = learn_merges(sym, wstart, wcount, tok_buf, tok_off, len(vocab.tokens),
                                    vocab_size, max(min_frequency, 1))
    tokens = vocab.tokens
    merges = []
    for a, b, n in zip(left.tolist(), right.tolist(), new.tolist()):
        if n == len(tokens):
            tokens.append(tokens[a] + tokens[b])
        merges.append((a, b))
    return tokens, dedupe_merges(merges)


def dedupe_merges(merges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the last rank of a pair merged twice (HF keeps a pair's last rank, one line per pair)."""
    last = {m: r for r, m in enumerate(merges)}
    if len(last) == len(merges):
        return merges
    return [m for r, m in enumerate(merges) if last[m] == r]
