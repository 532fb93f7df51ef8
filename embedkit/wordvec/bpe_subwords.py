"""BPE subwords (``--subwords bpe``): ``--bpe-bag segmentation`` makes a word's subword rows its
BPE pieces; ``--bpe-bag all`` makes them every BPE token the word contains (``bpe_bag``).

How a word is split: as it appears in running text. A byte-level (GPT-2 style) tokenizer sees
almost every word after a space, so its merges build pieces such as ``Ġcat``; we therefore encode
``" " + word`` (with the leading space) — encoding the bare word would mostly produce the rarer
word-initial pieces learned from line starts. A word-mode (subword-nmt style) tokenizer has no
notion of the space and encodes the bare word. Piece ids are row indices in the subword table,
which has ``vocab_size`` rows. The tokenizer's own files travel inside the model's metadata, so a
saved ``.ekv`` needs nothing else to build vectors for unseen words.
"""
from __future__ import annotations

import os

import numpy as np


class BpePieces:
    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.leading_space = bool(tokenizer.byte_level)

    @classmethod
    def load(cls, tokdir: str | os.PathLike) -> "BpePieces":
        from ..bpe.model import BPETokenizer

        return cls(BPETokenizer.load(tokdir))

    @property
    def size(self) -> int:
        """Rows in the subword table: one per token of the BPE vocabulary."""
        return self.tokenizer.vocab_size

    def _text(self, word: str) -> str:
        return " " + word if self.leading_space else word

    def rows_many(self, words: list[str]) -> list[np.ndarray]:
        """Piece ids of many words in one batch (what training uses)."""
        out = []
        for ids in self.tokenizer.encode_batch([self._text(w) for w in words]):
            a = np.asarray(ids, dtype=np.int64)
            out.append(a[(a >= 0) & (a < self.size)])
        return out

    def rows(self, word: str) -> np.ndarray:
        return self.rows_many([word])[0]

    def to_meta(self) -> dict:
        return {"kind": self.kind, "bag": "segmentation", "leading_space": self.leading_space,
                "files": self.tokenizer.to_files()}

    @classmethod
    def from_meta(cls, meta: dict) -> "BpePieces":
        from ..bpe.model import BPETokenizer

        scheme = cls(BPETokenizer.from_files(meta["files"], "model subwords"))
        scheme.leading_space = bool(meta.get("leading_space", scheme.leading_space))
        return scheme


class BpeBag:
    """``--bpe-bag all``: a word's subword rows are all the BPE tokens it contains (see bpe_bag);
    ``--bpe-bag weighted``: the same rows, weighed in the bag's mean (``BagIndex.weigh``), and the
    own row of a word that is no token weighed up (``bpe_bag.OWN_UNTOKENED``)."""

    kind = "bpe"

    def __init__(self, tokenizer, min_len: int = 2, max_len: int = 0, where: str = "tokenizer",
                 own: int | None = None, bag: str = "all"):
        from .bpe_bag import OWN_WEIGHT, BagIndex

        self.tokenizer = tokenizer
        self.bag = bag
        if bag == "weighted":
            own = 1
        self.index = BagIndex(tokenizer, min_len, max_len, where, OWN_WEIGHT if own is None else own)

    @classmethod
    def load(cls, tokdir: str | os.PathLike, min_len: int = 2, max_len: int = 0,
             bag: str = "all") -> "BpeBag":
        from ..bpe.model import BPETokenizer

        return cls(BPETokenizer.load(tokdir), min_len, max_len, os.fspath(tokdir), bag=bag)

    @property
    def size(self) -> int:
        """Rows in the subword table (2 per token for byte-level: plain and suffix n-gram)."""
        return self.index.size

    def rows(self, word: str) -> np.ndarray:
        return self.index.rows(word)

    def row_weights(self, rows: np.ndarray) -> np.ndarray | None:
        """The weights of subword ``rows`` in a bag's mean (None: all 1)."""
        return None if self.index.weights is None else self.index.weights[rows]

    def table(self, words: list[str], first_row: int,
              prune: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bags of ``words`` and their entries' weights (empty: all 1); ``prune`` (training's
        call): afterwards the table has only the rows these bags use (``BagIndex.keep``), the ids
        are renumbered to match, and a weighted bag's weights come from these bags."""
        from .bpe_bag import OWN_UNTOKENED
        from .kernels import UNWEIGHTED

        ptr, ids, whole = self.index.table(words, first_row)
        sub = ids >= first_row
        if prune:
            used = np.unique(ids[sub]) - first_row
            ids[sub] = np.searchsorted(used, ids[sub] - first_row) + first_row
            self.index.keep(used)
            if self.bag == "weighted":
                self.index.weigh(ids[sub] - first_row)
        if self.index.weights is None:
            return ptr, ids, UNWEIGHTED
        wts = np.ones(len(ids), np.float32)
        wts[sub] = self.index.weights[ids[sub] - first_row]
        if self.bag == "weighted":
            wts[ptr[:-1]] = np.where(whole, 1.0, OWN_UNTOKENED)
        return ptr, ids, wts

    def to_meta(self) -> dict:
        meta = {"kind": self.kind, "bag": self.bag, "min_len": self.index.min_len,
                "max_len": self.index.max_len, "own_weight": self.index.own,
                "files": self.tokenizer.to_files()}
        if self.index.kept is not None:
            meta["rows"] = self.index.kept.tolist()
        if self.index.weights is not None:
            meta["weights"] = self.index.weights.tolist()  # float32 values: exact through JSON
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> "BpeBag":
        from ..bpe.model import BPETokenizer

        scheme = cls(BPETokenizer.from_files(meta["files"], "model subwords"),
                     int(meta["min_len"]), int(meta["max_len"]), "model subwords",
                     int(meta.get("own_weight", 1)), meta["bag"])
        if "rows" in meta:  # pruned in training; older models kept every row
            rows = np.asarray(meta["rows"], dtype=np.int64)
            if rows.ndim != 1 or np.any(np.diff(rows) <= 0) or \
                    (len(rows) and not 0 <= rows[0] <= rows[-1] < scheme.size):
                raise ValueError("'rows' is not an increasing list of token rows")
            scheme.index.keep(rows)
        if scheme.bag == "weighted":
            w = np.asarray(meta.get("weights", ()), dtype=np.float64)
            if w.shape != (scheme.size,) or not (np.isfinite(w).all() and (w > 0).all()):
                raise ValueError(f"'weights' must be {scheme.size} positive numbers, one per row")
            scheme.index.weights = w.astype(np.float32)
        return scheme


BAGS = ("all", "weighted")  # the --bpe-bag values that make a BpeBag (else: BpePieces)


def load_scheme(tokdir: str | os.PathLike, bag: str, min_len: int, max_len: int):
    """The ``--subwords bpe`` scheme for ``--bpe-bag`` ``bag``."""
    if bag in BAGS:
        return BpeBag.load(tokdir, min_len, max_len, bag)
    return BpePieces.load(tokdir)


def scheme_from_meta(meta: dict):
    """Models saved before ``--bpe-bag`` existed have no ``bag``: they are segmentations."""
    if meta.get("bag", "segmentation") in BAGS:
        return BpeBag.from_meta(meta)
    if meta.get("bag", "segmentation") != "segmentation":
        raise ValueError(f"unknown BPE bag {meta['bag']!r}")
    return BpePieces.from_meta(meta)
