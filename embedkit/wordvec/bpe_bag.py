"""``--bpe-bag all``: a word's subwords are *every* BPE token it contains, not one segmentation.

This is the lecture's recipe ("given a set of character n-grams each word is treated as a bag of
character n-grams"): BPE only chooses which n-grams exist; the bag of a word is all of them that
occur in it, so ``cats`` shares ``Ġcat`` with ``cat`` even when both are single tokens.

How a word is seen: as the tokenizer sees it mid-text, with boundary markers that make prefixes
and suffixes n-grams of their own, as fastText's ``<`` ``>`` do —

- byte-level: ``" " + word`` in bytes (the token ``Ġcat`` is a prefix, ``cat`` is not), then an
  end-of-word symbol. GPT-2 vocabularies have no end marker, so every token ``t`` also stands for
  the suffix n-gram ``t⟩`` with its own row ``V + id(t)``: the subword table has ``2 V`` rows.
- word mode: the characters, then ``</w>`` (so ``ing</w>`` is a suffix, ``ing`` is not); the
  table has ``V`` rows.

Lengths are in characters, a marker (space, end of word) counting as one, like fastText's
``<``; tokens outside ``[min_len, max_len]`` (``max_len`` 0: no bound) are left out, and so are
special tokens and ``<unk>``. A byte-level token that is a partial UTF-8 character counts the
characters it starts. A token equal to the whole word *is* included: it is the prefix n-gram
that links ``cat`` to ``cats``, and the best signal for an unseen word that is a token. A token
occurring twice in a word is in its bag twice (fastText keeps repeated n-grams too). In training
a vocabulary word's own row comes ``OWN_WEIGHT`` times ahead of its n-grams.

Training finds the bags of all vocabulary words in one kernel call over a trie
(``bpe_bag_kernels``); an unseen word's bag is found in plain Python (a dictionary lookup of each
of its substrings), a few words at a time, and the tests hold the two to the same output.
"""
from __future__ import annotations

from itertools import chain

import numpy as np

from ..errors import InputError

BYTE_EOW = 256  # byte-level end-of-word symbol (after the 256 bytes)
CHAR_EOW = 0x110000  # word-mode end-of-word symbol (after every code point)
# The word's own row counts this many times in its bag (in-vocabulary words only: an unseen word
# has no row). With weight 1 the shared n-grams swamp the word: on dev.tok, skip-gram with 64k
# tokens reaches 57.6% on analogies but WS-353 ρ falls to 0.43 (no subwords: 0.46); weight 3 gives
# 48.5% and 0.50 (char n-grams: 51.7%, 0.51), and CBOW at 32k char's ρ with 15 more analogy
# points (README, "BPE bags").
OWN_WEIGHT = 3
# ``--bpe-bag weighted``: the bag's mean weighs token t by log(e + df(t)) ** -WEIGHT_ALPHA (df:
# how many of the vocabulary's bag entries are t), scaled to a mean of 1 over those entries, and
# every token that ends the word (``t⟩``, ``Ġw⟩``, ``ing</w>``) by WEIGHT_END; the own row weighs
# 1 (or OWN_UNTOKENED). Rare n-grams carry a word's meaning, frequent word-final ones its
# inflection. On dev.tok (skip-gram, 64k, 3 seeds) this moves the own-weight trade-off by about 6
# analogy points at the same WS-353 ρ (README, "BPE bags").
WEIGHT_ALPHA = 0.68
WEIGHT_END = 0.6
# ``--bpe-bag weighted``: the own row of a word that is not itself a BPE token weighs this much
# (a word that is a token: 1). A token-word's bag holds ``Ġw`` and ``Ġw⟩``, rows shared only with
# the words it begins, which act as more own rows; a word that is no token has only its own row to
# set it apart from the words spelled like it. With few tokens that is most words (dev.tok: 81% of
# the vocabulary with 8k tokens, 5% with 64k). With weight 1, skip-gram with 8k tokens was 0.09
# WS-353 ρ behind char n-grams; weight 3 leaves 0.02 and adds analogy points; every word's own
# row at 3 costs 7 analogy points instead (README, "BPE bags", stop 23).
OWN_UNTOKENED = 3.0


_CONTINUATION = bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes: they start no character


class BagIndex:
    """The tokens that may be in a bag, as symbol sequences, and how words become symbols."""

    def __init__(self, tokenizer, min_len: int = 2, max_len: int = 0, where: str = "tokenizer",
                 own: int = OWN_WEIGHT):
        from ..bpe.pretokenize import from_symbols
        from ..bpe.trainer import EOW, UNK

        self.byte_level = bool(tokenizer.byte_level)
        self.lowercase = tokenizer.lowercase
        self.min_len, self.max_len, self.own = int(min_len), int(max_len), int(own)
        vocab = tokenizer.vocab_size
        skip = set(tokenizer.special_tokens) | ({UNK, UNK + EOW} if not self.byte_level else set())
        seqs: list[tuple[int, ...]] = []
        rows: list[int] = []
        for i in range(vocab):
            t = tokenizer.id_to_token(i)
            if t in skip:
                continue
            if self.byte_level:
                raw = from_symbols(t)
                if raw is None:
                    if t.startswith(("<", "[")) and t.endswith((">", "]")):
                        continue  # a special token HF's vocab.json does not declare as one
                    raise InputError(where, f"token {t!r} is not made of GPT-2 byte symbols: not "
                                            f"a byte-level BPE vocabulary (--bpe-bag all needs "
                                            f"byte-level or word-mode BPE)")
                n = len(raw.translate(None, _CONTINUATION))
                self._add(seqs, rows, tuple(raw), n, i)
                self._add(seqs, rows, tuple(raw) + (BYTE_EOW,), n + 1, vocab + i)
            else:
                end = t.endswith(EOW)
                core = t[:-len(EOW)] if end else t
                if not core:
                    continue
                seq = tuple(map(ord, core)) + ((CHAR_EOW,) if end else ())
                self._add(seqs, rows, seq, len(core) + end, i)
        if not seqs:
            raise InputError(where, f"no BPE token of {self.min_len} to "
                                    f"{self.max_len or 'any'} characters: the bags would be empty")
        self.alphabet = BYTE_EOW + 1 if self.byte_level else CHAR_EOW + 1
        self.kept = None  # the token rows kept by ``keep`` (None: all)
        self.weights = None  # float32 weight of each row (``weigh``; None: every row weighs 1)
        self._set(seqs, rows, 2 * vocab if self.byte_level else vocab)

    def _set(self, seqs, rows, size) -> None:
        self.seqs, self.token_rows, self.size = seqs, rows, size
        self.lookup = dict(zip(seqs, rows))
        self.longest = max(map(len, seqs), default=0)
        self._trie = None

    def keep(self, used: np.ndarray) -> None:
        """Keep only the token rows ``used`` (sorted), renumbered 0..len(used)-1: the n-grams
        no vocabulary word contains would stay untrained, and their random rows would only add
        noise to an unseen word's bag (for byte-level GPT-2 vocabularies most of the suffix rows
        ``t⟩`` are such rows)."""
        used = np.asarray(used, dtype=np.int64)
        new = {int(r): i for i, r in enumerate(used.tolist())}
        pairs = [(q, new[r]) for q, r in zip(self.seqs, self.token_rows) if r in new]
        self.kept = used
        self._set([q for q, _ in pairs], [r for _, r in pairs], len(used))

    def weigh(self, entries: np.ndarray) -> None:
        """Set ``weights`` from the token rows of all the vocabulary's bag entries (see
        WEIGHT_ALPHA); called after ``keep``, so every row is in some bag."""
        entries = np.asarray(entries, dtype=np.int64)
        df = np.bincount(entries, minlength=self.size).astype(np.float64)
        w = np.log(np.e + df) ** -WEIGHT_ALPHA
        if entries.size:
            w /= w[entries].mean()
        ends = np.zeros(self.size, bool)
        ends[np.fromiter((r for q, r in zip(self.seqs, self.token_rows)
                          if q[-1] in (BYTE_EOW, CHAR_EOW)), np.int64)] = True
        w[ends] = WEIGHT_END
        self.weights = w.astype(np.float32)

    def _add(self, seqs, rows, seq, n, row) -> None:
        if n >= self.min_len and (self.max_len == 0 or n <= self.max_len):
            seqs.append(seq)
            rows.append(row)

    def symbols(self, word: str) -> list[int]:
        """The word as the bag sees it: marker, symbols, end-of-word symbol."""
        from ..bpe.trainer import word_bytes

        if self.lowercase:
            word = word.lower()
        if self.byte_level:
            return [0x20, *word_bytes(word), BYTE_EOW]
        return [*map(ord, word), CHAR_EOW]

    def rows(self, word: str) -> np.ndarray:
        """Rows of the tokens in ``word``, by start position then length (the kernel's order)."""
        s = self.symbols(word)
        get = self.lookup.get
        out = []
        for i in range(len(s)):
            for j in range(i + 1, min(len(s), i + self.longest) + 1):
                r = get(tuple(s[i:j]))
                if r is not None:
                    out.append(r)
        return np.array(out, dtype=np.int64)

    def table(self, words: list[str],
              first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR bags of many words: ``own`` copies of row ``w``, then ``first_row`` + token rows
        (``first_row`` >= ``len(words)``); and whether each word is a token of the bag, with or
        without the end marker (``weighted`` weighs the own row of the others OWN_UNTOKENED)."""
        from . import bpe_bag_kernels as K

        if self._trie is None:
            off = np.zeros(len(self.seqs) + 1, np.int64)
            np.cumsum([len(s) for s in self.seqs], out=off[1:])
            sym = np.fromiter(chain.from_iterable(self.seqs), np.int64, off[-1])
            self._trie = K.build_trie(sym, off, np.array(self.token_rows, np.int32), self.alphabet)
        seqs = [self.symbols(w) for w in words]
        off = np.zeros(len(seqs) + 1, np.int64)
        np.cumsum([len(s) for s in seqs], out=off[1:])
        sym = np.fromiter(chain.from_iterable(seqs), np.int64, off[-1])
        lookup = self.lookup
        whole = np.fromiter((tuple(q) in lookup or tuple(q[:-1]) in lookup for q in seqs), bool,
                            len(seqs))
        return (*K.bag_table(sym, off, *self._trie, self.alphabet, first_row, self.own), whole)
