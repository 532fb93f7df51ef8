"""fastText ``.bin`` models (v11/v12 and the pre-2017 format without magic): dense, unsupervised.

Word vectors are rebuilt exactly as fastText's ``getWordVector`` does: the mean of the word's own
input row and its hashed character n-gram rows (with the training side's Numba kernels).
Matrices are memory-mapped: a 2M-bucket model is not read into memory to open it.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from ...errors import InputError
from ...subwords import CharNgrams
from .checks import check_model, decode_words, opened

MAGIC = 793712314
_ARGS = struct.Struct("<12id")
_ARG_NAMES = ("dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket",
              "minn", "maxn", "lrUpdateRate", "t")


@dataclass
class FastTextModel:
    args: dict
    words: list[str]
    counts: np.ndarray
    input: np.ndarray            # [nwords + bucket, dim]
    output: np.ndarray | None    # [nwords, dim]
    version: int | None          # None = pre-2017 format
    ntokens: int = 0
    vectors: np.ndarray = field(default=None)

    def to_vectors(self, cls, source: str = ""):
        nwords = len(self.words)
        a = self.args
        scheme = None
        if a["maxn"] > 0 and a["bucket"] > 0:
            scheme = CharNgrams(a["minn"], a["maxn"], a["bucket"])
        settings = {**a, "format": "fasttext", "version": self.version, "ntokens": self.ntokens}
        return cls(self.words, self.vectors, counts=self.counts, scheme=scheme,
                   subword_rows=self.input[nwords:] if scheme is not None else None,
                   input=self.input[:nwords], output=self.output, settings=settings, source=source)


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


def read(path: str | os.PathLike) -> FastTextModel:
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
        if version > 12:
            raise InputError(path, f"fastText file version {version} is newer than supported (12)")
        r.pos = 8
    else:
        version = None
    args = read_args(buf, r.pos)
    r.pos += _ARGS.size
    if not args_look_valid(args):
        raise InputError(path, "not a fastText model: implausible header values")
    if args["model"] == 3 or args["loss"] == 4:
        raise InputError(path, "supervised fastText models (classifiers) are not supported: "
                               "they hold label vectors, not word vectors")
    vsize, nwords, nlabels = r.take("3i", "dictionary header")
    (ntokens,) = r.take("q", "dictionary header")
    prune = -1
    if new:
        (prune,) = r.take("q", "dictionary header")
    if nlabels > 0:
        raise InputError(path, f"supervised fastText model ({nlabels} labels) is not supported: "
                               f"it holds label vectors, not word vectors")
    if vsize != nwords + nlabels or nwords <= 0 or vsize * 10 > size:  # an entry takes >= 10 bytes
        raise InputError(path, f"corrupt fastText dictionary: size {vsize}, {nwords} words, "
                               f"{nlabels} labels")
    if prune >= 0:
        raise InputError(path, "pruned or quantized fastText models (.ftz) are not supported")
    raw, counts = [], np.empty(nwords, np.int64)
    for i in range(vsize):
        end = buf.find(b"\x00", r.pos, r.pos + (1 << 16))
        if end < 0:
            raise InputError(path, f"truncated or corrupt fastText dictionary (entry {i + 1})")
        raw.append(buf[r.pos:end])
        r.pos = end + 1
        count, kind = r.take("qb", "dictionary")
        if kind != 0:
            raise InputError(path, "supervised fastText model (labels in the dictionary) is not "
                                   "supported")
        counts[i] = count
    words = decode_words(path, raw)
    nrows = nwords + args["bucket"]
    inp = _matrix(r, new, nrows, args["dim"], "input matrix")
    out = _matrix(r, new, nwords, args["dim"], "output matrix")
    if r.pos != size:
        raise InputError(path, f"{size - r.pos} unexpected bytes after the output matrix")
    model = FastTextModel(args, words, counts, inp, out, version, ntokens)
    model.vectors = word_vectors(words, inp, args["minn"], args["maxn"], args["bucket"])
    check_model(path, words, model.vectors)
    return model


def _matrix(r: _Reader, new: bool, rows: int, dim: int, what: str) -> np.ndarray:
    if new:
        (quant,) = r.take("?", what)
        if quant:
            raise InputError(r.path, "quantized fastText models (.ftz) are not supported")
    m, n = r.take("2q", what)
    if m != rows or n != dim:
        raise InputError(r.path, f"corrupt fastText {what}: {m} x {n}, expected {rows} x {dim}")
    nbytes = 4 * m * n
    if r.pos + nbytes > len(r.buf):
        raise InputError(r.path, f"truncated fastText file (ends in the {what})")
    a = np.frombuffer(r.buf, "<f4", m * n, r.pos).reshape(m, n)
    r.pos += nbytes
    return a


def word_vectors(words: list[str], inp: np.ndarray, minn: int, maxn: int, bucket: int) -> np.ndarray:
    """fastText's in-vocabulary word vectors: mean of the word row and its n-gram rows.

    Reuses the training kernels (the same bags training averages), so a 2M-word model's vectors
    are rebuilt in seconds, summed in float32 in fastText's order.
    """
    from ...wordvec.kernels import bag_means
    from ...wordvec.trainer import subword_table

    scheme = CharNgrams(minn, maxn, bucket) if maxn > 0 and bucket > 0 else None
    ptr, ids, _ = subword_table(scheme, words)
    out = np.empty((len(words), inp.shape[1]), np.float32)
    bag_means(inp, ptr, ids, out)
    return out
