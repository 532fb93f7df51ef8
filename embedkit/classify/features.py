"""Fixed-length features of text lines from what embedkit pretrains: word vectors or an encoder.

``open_features(path)`` tells the two apart by content: a folder holding ``encoder.ekm`` is an
encoder (ENCDIR); any file ``embedkit.load`` reads is word vectors. Other embedkit store kinds
(a classifier, a fine-tuned encoder classifier, an encoder checkpoint given as a file) are
refused with a message naming what they are.

- Vectors: a line's feature is the mean of its words' vectors; an out-of-vocabulary word gets its
  subword vector when the model has subwords; a word with no vector at all is skipped. A line
  with no known word gets zeros (counted in ``zero_lines``).
- Encoder: the words are joined with single spaces, encoded with the encoder's own BPE, and the
  hidden states of ``layer`` (0 = embeddings, 1..L, -1 = last) pooled: ``mean`` over all pieces
  (long lines run as windows of max_len pieces, as ``encoder embed``) or ``first`` (the first
  piece's state; the encoder has no [CLS] piece). A line without pieces gets zeros.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError
from ..progress import bar
from ..store import is_store, store_kind

POOLS = ("mean", "first")
_BATCH_LINES = 256
_OTHER_KINDS = {
    "classifier": "a classifier from `classify train`, not features",
    "encoder-classifier": "a fine-tuned classifier from `encoder finetune`, not features",
    "embedkit-encoder": "an encoder checkpoint file: give its folder (ENCDIR)",
}


class VectorFeatures:
    """Mean word vector of a line (subwords for OOV words when the model has them)."""

    kind = "vectors"

    def __init__(self, vectors, path: str):
        self.vectors = vectors
        self.path = path
        self.dim = vectors.dim
        self._cache: dict[str, np.ndarray | None] = {}

    def _vector(self, word: str) -> np.ndarray | None:
        v = self._cache.get(word, False)
        if v is False:
            from ..vectors.model import UnknownWordError

            try:
                v = np.asarray(self.vectors[word], np.float32)
            except UnknownWordError:
                v = None
            if v is not None and not np.isfinite(v).all():
                raise InputError(self.path, f"the vector of {word!r} holds NaN or inf")
            self._cache[word] = v
        return v

    def matrix(self, texts: list[list[str]], quiet: bool = True) -> tuple[np.ndarray, int]:
        """[n, D] float32 features and the number of lines that got zeros."""
        out = np.zeros((len(texts), self.dim), np.float32)
        zero = 0
        with bar(len(texts), "features", "lines", quiet) as progress:
            for i, words in enumerate(texts):
                rows = [v for v in map(self._vector, words) if v is not None]
                if rows:
                    out[i] = np.mean(rows, axis=0, dtype=np.float64)
                else:
                    zero += 1
                if i % _BATCH_LINES == _BATCH_LINES - 1 or i == len(texts) - 1:
                    progress.update(i % _BATCH_LINES + 1)
        return out, zero

    def describe(self) -> str:
        return f"vectors {self.path} ({len(self.vectors)} words x {self.dim})"


class EncoderFeatures:
    """Pooled hidden states of one encoder layer."""

    kind = "encoder"

    def __init__(self, encoder, path: str, pool: str = "mean", layer: int = -1,
                 batch_size: int = 32):
        n_layers = encoder.config["layers"]
        if not -(n_layers + 1) <= layer <= n_layers:
            raise UsageError(f"--layer must be in {-(n_layers + 1)}..{n_layers} (got {layer})")
        self.encoder = encoder
        self.path = path
        self.pool = pool
        self.layer = layer
        self.upto = layer % (n_layers + 1)
        self.batch_size = batch_size
        self.dim = encoder.dim

    def matrix(self, texts: list[list[str]], quiet: bool = True) -> tuple[np.ndarray, int]:
        out = np.zeros((len(texts), self.dim), np.float32)
        zero = 0
        enc = self.encoder
        with bar(len(texts), "features", "lines", quiet) as progress:
            for lo in range(0, len(texts), _BATCH_LINES):
                chunk = [" ".join(words) for words in texts[lo:lo + _BATCH_LINES]]
                ids = enc.vocab.encode_batch(chunk)
                if self.pool == "first":  # windows run on their own: only the first one counts
                    ids = [seq[:enc.config["max_len"]] for seq in ids]
                for k, h in enumerate(enc.encode_ids(ids, self.upto, self.batch_size)):
                    if not len(h):
                        zero += 1
                    elif self.pool == "first":
                        out[lo + k] = h[0]
                    else:
                        out[lo + k] = h.mean(axis=0, dtype=np.float64)
                progress.update(len(chunk))
        return out, zero

    def describe(self) -> str:
        c = self.encoder.config
        return (f"encoder {self.path} (layer {self.layer}, {self.pool} pool, {c['layers']} layers "
                f"x {self.dim})")


def open_features(path: str | os.PathLike, pool: str = "mean", layer: int | None = None):
    """A ``VectorFeatures`` or ``EncoderFeatures`` for ``path``, chosen by its content."""
    name = os.fspath(path)
    if pool not in POOLS:
        raise UsageError(f"--pool must be one of {', '.join(POOLS)} (got {pool!r})")
    p = Path(name)
    if p.is_dir():
        from ..encoder.model import Encoder

        return EncoderFeatures(Encoder.load(p), name, pool, -1 if layer is None else layer)
    if not p.exists():
        raise InputError(name, "no such file or folder (expected word vectors or an ENCDIR)")
    if is_store(p):
        kind = store_kind(p)
        if kind in _OTHER_KINDS:
            raise InputError(name, f"is {_OTHER_KINDS[kind]} (expected word vectors or an ENCDIR)")
    if layer is not None:
        raise UsageError("--layer applies to an encoder (ENCDIR), not to word vectors")
    if pool != "mean":
        raise UsageError(f"--pool {pool} applies to an encoder (ENCDIR); word vectors use the mean")
    from ..vectors.model import load

    return VectorFeatures(load(name), name)


