"""What a classifier is (``Parts``: settings, vocabulary, matrices) and the lookup tables derived
from it for the kernels (``Tables``: word bags, hashes, the bucket -> row map, the Huffman tree).

Training builds the same bag tables over every word it read (rare words under ``min_count`` have
no row of their own but keep their subwords and their hash, as in fastText), prediction over the
vocabulary plus, per batch, the out-of-vocabulary words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Sequence

import numpy as np

from ..subwords import EOS

LOSS_CODES = {"softmax": 0, "ns": 1, "hs": 2, "ova": 3}


@dataclass
class Parts:
    settings: dict  # dim, loss, word_ngrams, buckets, subwords, minn, maxn, seed, ...
    words: list[str]  # by descending count; row i of ``input``
    word_counts: np.ndarray  # int64 [V]
    labels: list[str]  # without prefix, by descending count; row j of ``output``
    label_counts: np.ndarray  # int64 [L]
    input: np.ndarray  # float32 [V + P + U, D]: words, BPE pieces (P), stored buckets (U)
    output: np.ndarray  # float32 [L, D]
    bucket_ids: np.ndarray  # int32 [U], sorted: the bucket each stored bucket row stands for
    scheme: object = None  # subwords.CharNgrams, wordvec.bpe_subwords.BpePieces or None
    label_style: str = "fasttext"
    lowercase: bool = False
    warnings: list = field(default_factory=list)


def huffman(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fastText's ``HierarchicalSoftmaxLoss::buildTree`` over label counts sorted descending.

    Returns CSR ``(ptr, node, code)``: label j's path from leaf to root is the inner nodes
    ``node[ptr[j]:ptr[j+1]]`` (output rows) with branch bits ``code[...]`` (1 = right child).
    """
    osz = len(counts)
    n = 2 * osz - 1
    parent = np.full(max(n, 0), -1, np.int64)
    binary = np.zeros(max(n, 0), np.int8)
    count = np.full(max(n, 0), 1e15)
    count[:osz] = counts
    leaf, node = osz - 1, osz
    for i in range(osz, n):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j] = leaf
                leaf -= 1
            else:
                mini[j] = node
                node += 1
        count[i] = count[mini[0]] + count[mini[1]]
        parent[mini[0]] = i
        parent[mini[1]] = i
        binary[mini[1]] = 1
    paths, codes, ptr = [], [], [0]
    for i in range(osz):
        j = i
        while parent[j] != -1:
            paths.append(parent[j] - osz)
            codes.append(binary[j])
            j = parent[j]
        ptr.append(len(paths))
    return (np.array(ptr, np.int64), np.array(paths, np.int64).reshape(-1),
            np.array(codes, np.int8).reshape(-1))


def encoded(words: Sequence[str], brackets: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 (surrogateescape) of the words concatenated, and their offsets; ``brackets`` gives
    fastText's ``<word>`` (and nothing for ``</s>``, which has no n-grams)."""
    if brackets:
        enc = [b"" if w == EOS else ("<" + w + ">").encode("utf-8", "surrogateescape")
               for w in words]
    else:
        enc = [w.encode("utf-8", "surrogateescape") for w in words]
    offsets = np.zeros(len(enc) + 1, np.int64)
    np.cumsum([len(e) for e in enc], out=offsets[1:])
    return np.frombuffer(b"".join(enc), dtype=np.uint8), offsets


def subword_buckets(scheme, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """CSR of each word's raw subword ids: char n-gram buckets, or BPE piece ids."""
    if scheme is None:
        return np.zeros(len(words) + 1, np.int64), np.zeros(0, np.int64)
    if scheme.kind == "char":
        from ..wordvec.kernels import fnv1a_ngram_rows

        data, offsets = encoded(words, brackets=True)
        ptr, ids = fnv1a_ngram_rows(data, offsets, scheme.minn, scheme.maxn, scheme.buckets, 0)
        keep = np.ones(len(ids), bool)
        keep[ptr[:-1]] = False  # fnv1a_ngram_rows puts the word's own index first: drop it
        return ptr - np.arange(len(ptr)), ids[keep].astype(np.int64)
    rows = scheme.rows_many([w if w != EOS else "" for w in words])
    rows = [r if w != EOS else r[:0] for w, r in zip(words, rows)]
    ptr = np.zeros(len(words) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=ptr[1:])
    ids = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return ptr, ids


def make_bags(own: np.ndarray, sptr: np.ndarray, sids: np.ndarray, scheme, bucket_row: np.ndarray,
              piece_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR bags: word w's rows are its own row (``own[w] >= 0``) then its subword rows (char
    buckets through ``bucket_row``, an unstored bucket b as ``-(b + 1)``; BPE pieces at
    ``piece_offset + piece``)."""
    has = (own >= 0).astype(np.int64)
    nsub = np.diff(sptr)
    ptr = np.zeros(len(own) + 1, np.int64)
    np.cumsum(has + nsub, out=ptr[1:])
    bag = np.empty(ptr[-1], np.int64)
    starts = ptr[:-1]
    bag[starts[has == 1]] = own[has == 1]
    if len(sids):
        word_of = np.repeat(np.arange(len(own)), nsub)
        pos = starts[word_of] + has[word_of] + (np.arange(len(sids)) - sptr[word_of])
        if scheme.kind == "char":
            r = bucket_row[sids]
            bag[pos] = np.where(r >= 0, r, -(sids + 1))
        else:
            bag[pos] = piece_offset + sids
    return ptr, bag


def bucket_map(buckets: int, bucket_ids: np.ndarray, first_row: int) -> np.ndarray:
    """int32 [buckets]: stored bucket -> its input row, else -1."""
    m = np.full(max(buckets, 0), -1, np.int32)
    m[bucket_ids] = first_row + np.arange(len(bucket_ids), dtype=np.int32)
    return m


def token_ids(texts: Sequence[Sequence[str]], index: dict, lowercase: bool, eos: bool
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A batch as CSR ``(line_ptr, ids)``: a known word is its ``index`` id, an unknown one
    ``len(index)`` + its place in ``unknown`` (returned third, first-seen order); ``eos``
    appends ``</s>`` to every line (fastText's supervised lines end with it)."""
    flat: list[str] = []
    extend, append = flat.extend, flat.append
    for t in texts:
        extend(t)
        if eos:
            append(EOS)
    if lowercase:
        flat = [w.lower() for w in flat]  # </s> stays </s>
    line_ptr = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + int(eos), out=line_ptr[1:])
    ids = np.fromiter(map(index.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
    unknown: dict[str, int] = {}
    V = len(index)
    for j in np.flatnonzero(ids < 0).tolist():
        ids[j] = V + unknown.setdefault(flat[j], len(unknown))
    return line_ptr, ids, list(unknown)


class Tables:
    """Everything ``predict_proba`` needs beside the matrices, built once per loaded model."""

    def __init__(self, parts: Parts):
        from . import kernels as K

        s = parts.settings
        self.parts = parts
        self.loss = LOSS_CODES[s["loss"]]
        self.ngrams = int(s["word_ngrams"])
        self.buckets = int(s["buckets"])
        self.scheme = parts.scheme
        V = len(parts.words)
        self.V = V
        bpe = parts.scheme is not None and parts.scheme.kind == "bpe"
        self.pieces = parts.scheme.size if bpe else 0
        self.index = {w: i for i, w in enumerate(parts.words)}
        self.bucket_row = bucket_map(self.buckets, parts.bucket_ids, V + self.pieces)
        data, offsets = encoded(parts.words)
        self.hashA = K.word_hashes(data, offsets)
        sptr, sids = subword_buckets(self.scheme, parts.words)
        self.ptrA, self.bagA = make_bags(np.arange(V, dtype=np.int64), sptr, sids, self.scheme,
                                         self.bucket_row, V)
        self.maxbagA = int(np.diff(self.ptrA).max()) if V else 1
        if self.loss == 2:
            self.hs_ptr, self.hs_node, self.hs_code = huffman(parts.label_counts)
        else:
            self.hs_ptr, self.hs_node, self.hs_code = (np.zeros(1, np.int64), np.zeros(0, np.int64),
                                                       np.zeros(0, np.int8))
        self.table = K.sigmoid_table()

    def predict_proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 [n, L]; each text is a list of words, ``</s>`` is appended as in training."""
        from . import kernels as K

        line_ptr, ids, oov_words = token_ids(texts, self.index, self.parts.lowercase, eos=True)
        if not oov_words:
            return self.predict_ids(line_ptr, ids, np.zeros(0, np.int64))
        data, offsets = encoded(oov_words)
        sptr, sids = subword_buckets(self.scheme, oov_words)
        ptrB, bagB = make_bags(np.full(len(oov_words), -1, np.int64), sptr, sids, self.scheme,
                               self.bucket_row, self.V)
        return self._scores(line_ptr, ids, K.word_hashes(data, offsets), ptrB, bagB)

    def byte_vocab(self):
        """The ``byte_ids.ByteVocab`` of this model, or None when an unseen word needs more
        than its hash (subwords) or words are lower-cased."""
        if self.scheme is not None or self.parts.lowercase:
            return None
        from .byte_ids import ByteVocab

        return ByteVocab(self.index, self.V, "append")

    def predict_ids(self, line_ptr: np.ndarray, ids: np.ndarray, hashB: np.ndarray) -> np.ndarray:
        """``predict_proba`` of lines given as ids (``token_ids``' layout, ``</s>`` included);
        unseen words have only their hashes ``hashB`` (no subwords)."""
        return self._scores(line_ptr, ids, hashB, np.zeros(len(hashB) + 1, np.int64),
                            np.zeros(0, np.int64))

    def _scores(self, line_ptr, ids, hashB, ptrB, bagB) -> np.ndarray:
        from . import kernels as K

        maxbag = max(self.maxbagA, int(np.diff(ptrB).max()) if len(ptrB) > 1 else 0, 1)
        p = self.parts
        out = np.empty((len(line_ptr) - 1, len(p.labels)), np.float32)
        K.predict_batch(line_ptr, ids, self.ptrA, self.bagA, self.hashA, ptrB, bagB, hashB,
                        self.ngrams, self.buckets, self.bucket_row, p.input, p.output, self.loss,
                        self.hs_ptr, self.hs_node, self.hs_code, self.table, maxbag, out)
        return out
