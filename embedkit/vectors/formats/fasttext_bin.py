"""fastText model files: ``.bin`` (v11/v12 and the pre-2017 format without magic) and ``.ftz``.

Unsupervised and supervised models alike hold word vectors: the input matrix. A word's vector is
rebuilt exactly as fastText's ``getWordVector`` does: the mean of the word's own input row and its
hashed character n-gram rows (only the own row when ``maxn`` is 0, the default of supervised
models; word n-gram buckets never take part). Quantized models (``fasttext quantize``) store the
input matrix product-quantized (see ``fasttext_pq``) and may be pruned (``-cutoff``): then only
some n-gram buckets keep a row, found through the ``pruneidx`` map the dictionary carries.
Dense matrices are memory-mapped: a 2M-bucket model is not read into memory to open it.
The classifier side of supervised models lives in ``embedkit.classify.fasttext``.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from ...errors import InputError, UsageError
from ...subwords import EOS, CharNgrams, char_ngram_rows
from .checks import check_model, decode_words, opened

MAGIC = 793712314
VERSION = 12  # the newest file version fastText writes (and reads)
SUPERVISED = 3
_ARGS = struct.Struct("<12id")
_ARG_NAMES = ("dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket",
              "minn", "maxn", "lrUpdateRate", "t")


@dataclass
class FastTextModel:
    args: dict
    words: list[str]
    counts: np.ndarray
    input: np.ndarray            # [nwords + n-gram rows, dim]; decoded when quantized
    output: np.ndarray | None    # [nwords, dim] (unsupervised) or [nlabels, dim]
    version: int | None          # None = pre-2017 format
    ntokens: int = 0
    raw_words: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)        # words as surrogateescape str (hashing)
    labels: list[bytes] = field(default_factory=list)   # label entries, prefix included
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    quantized: bool = False
    output_norms: np.ndarray | None = None  # quantized output with qnorm: dot products * norm
    prune_keys: np.ndarray | None = None    # pruned: sorted n-gram buckets that keep a row...
    prune_rows: np.ndarray | None = None    # ...and their row (after the nwords word rows)
    _vectors: np.ndarray | None = None

    @property
    def nwords(self) -> int:
        return len(self.raw_words)

    @property
    def supervised(self) -> bool:
        return self.args["model"] == SUPERVISED

    @property
    def vectors(self) -> np.ndarray:
        """Every dictionary word's vector, as fastText's ``get_word_vector`` gives it."""
        if self._vectors is None:
            ptr, ids = self.bags(self.keys, own_rows=True)
            from ...wordvec.kernels import UNWEIGHTED, bag_means

            out = np.empty((self.nwords, self.input.shape[1]), np.float32)
            bag_means(self.input, ptr, ids, UNWEIGHTED, out)
            self._vectors = out
        return self._vectors

    def map_buckets(self, buckets: np.ndarray) -> np.ndarray:
        """Input rows of n-gram buckets (``nwords + row``); -1 where a pruned model dropped one."""
        buckets = np.asarray(buckets, np.int64)
        if self.prune_keys is None:
            return self.nwords + buckets
        if self.prune_keys.size == 0:
            return np.full(buckets.shape, -1, np.int64)
        at = np.minimum(np.searchsorted(self.prune_keys, buckets), self.prune_keys.size - 1)
        hit = self.prune_keys[at] == buckets
        return np.where(hit, self.nwords + self.prune_rows[at].astype(np.int64), -1)

    def bags(self, words: list[str], own_rows: bool) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``(ptr, ids)`` of the input rows fastText averages for each word.

        ``own_rows``: ``words`` are the dictionary's, in order (row w first, then its n-grams);
        otherwise they are out-of-vocabulary words and get their n-gram rows only.
        """
        from ...wordvec.kernels import fnv1a_ngram_rows

        a = self.args
        enc = [b"" if w == EOS else ("<" + w + ">").encode("utf-8", "surrogateescape")
               for w in words]
        offsets = np.zeros(len(enc) + 1, np.int64)
        np.cumsum([len(e) for e in enc], out=offsets[1:])
        data = np.frombuffer(b"".join(enc), np.uint8)
        # Each bag: [w, n-gram buckets...] (first_row 0: bucket numbers, no int32 overflow).
        ptr, ids = fnv1a_ngram_rows(data, offsets, a["minn"], a["maxn"], a["bucket"], 0)
        ids = ids.astype(np.int64)
        grams = np.ones(ids.size, bool)
        grams[ptr[:-1]] = False
        keep = grams.copy() if not own_rows else np.ones(ids.size, bool)
        mapped = self.map_buckets(ids[grams])
        ids[grams] = mapped
        keep[grams] &= mapped >= 0
        if keep.all():
            return ptr, ids.astype(np.int32)
        word_of = np.repeat(np.arange(len(words)), np.diff(ptr))
        new_ptr = np.zeros(len(words) + 1, np.int64)
        np.cumsum(np.bincount(word_of[keep], minlength=len(words)), out=new_ptr[1:])
        return new_ptr, ids[keep].astype(np.int32)

    def to_vectors(self, cls, source: str = ""):
        nwords = self.nwords
        a = self.args
        scheme = None
        if a["maxn"] > 0 and a["bucket"] > 0:
            if self.prune_keys is None:
                scheme = CharNgrams(a["minn"], a["maxn"], a["bucket"])
            elif self.prune_keys.size:
                scheme = PrunedCharNgrams(self, source)
        settings = {**a, "format": "fasttext", "version": self.version, "ntokens": self.ntokens,
                    "labels": len(self.labels), "quantized": self.quantized,
                    "pruned": self.prune_keys is not None}
        output = None if self.supervised else self.output  # (label rows are not word rows)
        return cls(self.words, self.vectors, counts=self.counts, scheme=scheme,
                   subword_rows=self.input[nwords:] if scheme is not None else None,
                   input=self.input[:nwords], output=output, settings=settings, source=source)


class PrunedCharNgrams:
    """Char n-grams of a pruned ``.ftz``: only the buckets the ``pruneidx`` map kept have a row.

    ``rows`` are positions in the model's n-gram rows (the Vectors' ``subword_rows``).
    """

    kind = "char-pruned"

    def __init__(self, model: FastTextModel, source: str = ""):
        a = model.args
        self.minn, self.maxn, self.buckets = a["minn"], a["maxn"], a["bucket"]
        self.model, self.source = model, source

    def rows(self, word: str) -> np.ndarray:
        r = self.model.map_buckets(char_ngram_rows(word, self.minn, self.maxn, self.buckets))
        return r[r >= 0] - self.model.nwords

    def rows_many(self, words: list[str]) -> list[np.ndarray]:
        return [self.rows(w) for w in words]

    def to_meta(self) -> dict:
        raise UsageError(f"{self.source or 'this model'}: a pruned quantized fastText model keeps "
                         f"n-gram rows for some buckets only, which a native model cannot hold; "
                         f"convert it with --to vec (word vectors only)")


def args_look_valid(a: dict) -> bool:
    """Plausible header values (used to sniff the old format, which has no magic number)."""
    return (0 < a["dim"] <= 100000 and 0 < a["ws"] <= 10000 and 0 < a["epoch"] <= 100000
            and a["loss"] in (1, 2, 3, 4) and a["model"] in (1, 2, 3) and a["bucket"] >= 0
            and 0 <= a["minn"] <= 100 and 0 <= a["maxn"] <= 100 and a["neg"] >= 0)


def read_args(buf, offset: int) -> dict:
    return dict(zip(_ARG_NAMES, _ARGS.unpack_from(buf, offset)))


class _Reader:
    def __init__(self, path, buf):
        self.path, self.buf, self.pos = path, buf, 0

    def take(self, fmt: str, what: str):
        s = struct.calcsize("<" + fmt)
        if self.pos + s > len(self.buf):
            raise InputError(self.path, f"truncated fastText file (ends in the {what})")
        v = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += s
        return v


def read(path: str | os.PathLike, policy=None) -> FastTextModel:
    """``parse`` plus the word vectors, checked (finite, no duplicates), for the query commands."""
    model = parse(path, policy)
    check_model(path, model.words, model.vectors)
    return model


def parse(path: str | os.PathLike, policy=None) -> FastTextModel:
    """Parse and check a fastText model file (word vectors are built on first use).

    ``policy`` (a ``checks.WordPolicy``) says what to do with words that are not valid UTF-8.
    """
    name = os.fspath(path)
    with opened(name) as f:
        size = os.fstat(f.fileno()).st_size
        if size < 64:
            raise InputError(path, "truncated fastText file (shorter than its header)")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    r = _Reader(path, buf)
    magic, version = struct.unpack_from("<2i", buf, 0)
    new = magic == MAGIC
    if new:
        if version > VERSION:
            raise InputError(path, f"fastText file version {version} is newer than supported "
                                   f"({VERSION})")
        r.pos = 8
    else:
        version = None
    args = read_args(buf, r.pos)
    r.pos += _ARGS.size
    if not args_look_valid(args):
        raise InputError(path, "not a fastText model: implausible header values")
    if version == 11 and args["model"] == SUPERVISED:
        args["maxn"] = 0  # fastText's own rule: v11 supervised models had no char n-grams
    vsize, nwords, nlabels = r.take("3i", "dictionary header")
    (ntokens,) = r.take("q", "dictionary header")
    prune = -1
    if new:
        (prune,) = r.take("q", "dictionary header")
    # An entry takes >= 10 bytes, a pruned-bucket pair 8; fastText's row ids are int32.
    if (nwords <= 0 or nlabels < 0 or vsize != nwords + nlabels or vsize * 10 > size
            or not -1 <= prune <= size // 8 or nwords + args["bucket"] >= 1 << 31):
        raise InputError(path, f"corrupt fastText dictionary: size {vsize}, {nwords} words, "
                               f"{nlabels} labels, {prune} pruned buckets")
    raw, counts = [], np.empty(vsize, np.int64)
    for i in range(vsize):
        end = buf.find(b"\x00", r.pos, r.pos + (1 << 16))
        if end < 0:
            raise InputError(path, f"truncated or corrupt fastText dictionary (entry {i + 1})")
        raw.append(buf[r.pos:end])
        r.pos = end + 1
        count, kind = r.take("qb", "dictionary")
        if kind != (i >= nwords):  # words (0) first, then labels (1), as fastText sorts them
            raise InputError(path, f"corrupt fastText dictionary: entry {i + 1} has type {kind}")
        counts[i] = count
    prune_keys = prune_rows = None
    if prune >= 0:
        if r.pos + 8 * prune > size:
            raise InputError(path, "truncated fastText file (ends in the pruned bucket map)")
        pairs = np.frombuffer(buf, "<i4", 2 * prune, r.pos).reshape(prune, 2)
        r.pos += 8 * prune
        order = np.argsort(pairs[:, 0], kind="stable")
        prune_keys = pairs[order, 0].astype(np.int64)
        prune_rows = pairs[order, 1].astype(np.int32)
        if prune and (prune_keys[0] < 0 or prune_keys[-1] >= args["bucket"]
                      or (np.diff(prune_keys) == 0).any() or prune_rows.min() < 0
                      or prune_rows.max() >= prune):
            raise InputError(path, "corrupt fastText pruned bucket map (buckets or rows out of "
                                   "range, or repeated)")
    words = decode_words(path, raw[:nwords], None, policy)
    nrows = nwords + (args["bucket"] if prune < 0 else prune)
    quantized = False
    if new:
        (quantized,) = r.take("?", "input matrix")
    if quantized:
        from .fasttext_pq import read_quantized

        inp = read_quantized(r, nrows, args["dim"], "input matrix").scaled()
    else:
        if prune >= 0:
            raise InputError(path, "pruned fastText model whose input matrix is not quantized "
                                   "(fastText refuses it too: an invalid model file)")
        inp = _dense(r, nrows, args["dim"], "input matrix")
    nout = nlabels if args["model"] == SUPERVISED else nwords
    qout = False
    if new:
        (qout,) = r.take("?", "output matrix")
    out_norms = None
    if quantized and qout:
        from .fasttext_pq import read_quantized

        q = read_quantized(r, nout, args["dim"], "output matrix")
        out, out_norms = q.rows, q.norms
    else:
        out = _dense(r, nout, args["dim"], "output matrix")
    if r.pos != size:
        raise InputError(path, f"{size - r.pos} unexpected bytes after the output matrix")
    keys = words
    if policy is not None and policy.unicode_errors == "replace":
        keys = [w.decode("utf-8", "surrogateescape") for w in raw[:nwords]]
    return FastTextModel(args, words, counts[:nwords], inp, out, version, ntokens,
                          raw_words=raw[:nwords], keys=keys, labels=raw[nwords:],
                          label_counts=counts[nwords:], quantized=bool(quantized),
                          output_norms=out_norms, prune_keys=prune_keys, prune_rows=prune_rows)


def _dense(r: _Reader, rows: int, dim: int, what: str) -> np.ndarray:
    m, n = r.take("2q", what)
    if m != rows or n != dim:
        raise InputError(r.path, f"corrupt fastText {what}: {m} x {n}, expected {rows} x {dim}")
    nbytes = 4 * m * n
    if r.pos + nbytes > len(r.buf):
        raise InputError(r.path, f"truncated fastText file (ends in the {what})")
    a = np.frombuffer(r.buf, "<f4", m * n, r.pos).reshape(m, n)
    r.pos += nbytes
    return a
