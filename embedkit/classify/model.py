"""``Classifier``: a trained fastText-style supervised model, and ``load_model``, the one sniffer
that opens any classifier embedkit can apply (its own, fastText ``.bin``/``.ftz``, a fine-tuned
encoder) as a predictor (``labels``, ``label_style``, ``multilabel``, ``lowercase``,
``predict_proba(texts)``).

The model file (``modelfile``) is an ``embedkit.store`` of kind ``"classifier"``. Only the
n-gram buckets that training text hashed to are stored (``bucket_ids`` names them); a bucket
first seen at prediction counts as a zero row in the mean (fastText's keeps its initial value,
which is 0 for most rows when it trains with < 10 threads), so a 2M-bucket model takes MBs
instead of 2M x dim floats.
"""
from __future__ import annotations

import os
import struct
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError, UsageError

FASTTEXT_MAGIC = 793712314


def _sniff(path: str) -> tuple[str, str | None]:
    """("fasttext" | "store" | "other", the store's kind)."""
    from ..corpus import open_file
    from ..store import store_kind

    with open_file(path, expected="a classifier model file") as f:
        head = f.read(4)
    if len(head) == 4 and struct.unpack("<i", head)[0] == FASTTEXT_MAGIC:
        return "fasttext", None
    kind = store_kind(path)
    return ("other", None) if kind is None else ("store", kind)


def load_model(path: str | os.PathLike):
    """Open MODEL for ``classify test`` / ``predict``: an embedkit classifier, a fastText
    supervised ``.bin``/``.ftz`` or a fine-tuned encoder; anything else is a one-line InputError."""
    name = os.fspath(path)
    if os.path.isdir(name):
        from ..encoder.checkpoint import FILE

        what = ("an encoder folder (ENCDIR)" if os.path.exists(os.path.join(name, FILE)) else
                "a tokenizer folder (TOKDIR)" if os.path.exists(os.path.join(name, "merges.txt"))
                else "a folder")
        raise InputError(name, f"is {what}, expected a classifier model file "
                               "(from `classify train`, `encoder finetune` or fastText supervised)")
    fmt, kind = _sniff(name)
    if fmt == "fasttext":
        from . import fasttext

        return fasttext.load(name)
    if fmt == "store" and kind == "classifier":
        return Classifier.load(name)
    if fmt == "store" and kind == "encoder-classifier":
        from . import finetune

        return finetune.load(name)
    if fmt == "store" and kind == "nb-classifier":
        from .nb import NBClassifier

        return NBClassifier.load(name)
    what = f"an embedkit {kind!r} file" if fmt == "store" else "not a model file embedkit knows"
    if fmt == "store" and kind == "vectors":
        what = "a word-vectors model"
    raise InputError(name, f"{what}, expected a classifier (from `classify train`, "
                           "`encoder finetune` or fastText supervised .bin/.ftz)")


class Classifier:
    """fastText's supervised model: mean of input rows (words, word n-grams, subwords) -> linear
    layer -> softmax / hierarchical softmax / negative sampling / one-vs-all sigmoids.

    ``Classifier.train(...)`` fits one (see ``options.ClassifyOptions`` for every option),
    ``load`` / ``save`` read and write the model file, ``predict`` gives top-k labels and
    ``test`` scores labelled data the way ``fasttext test`` does (``metrics.evaluate``).
    """

    def __init__(self, parts):
        from .tables import Tables

        self.parts = parts  # tables.Parts: settings, vocabulary and matrices
        self.tables = Tables(parts)
        self.history: list[dict] = []  # per epoch of training: loss, valid_accuracy

    # -- the predictor protocol -------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return self.parts.labels

    @property
    def label_style(self) -> str:
        return self.parts.label_style

    @property
    def multilabel(self) -> bool:
        return self.parts.settings["loss"] == "ova"

    @property
    def lowercase(self) -> bool:
        return bool(self.parts.lowercase)

    @property
    def label_prefix(self) -> str:
        return self.parts.settings.get("label_prefix", "__label__")

    @property
    def words(self) -> list[str]:
        return self.parts.words

    @property
    def settings(self) -> dict:
        return dict(self.parts.settings)

    def predict_proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 [n, labels]: each line's label probabilities (texts already split into words)."""
        return self.tables.predict_proba(texts)

    def byte_vocab(self):
        """For ``classify predict``: a ``byte_ids.ByteVocab`` turning input bytes into the ids
        ``predict_ids`` takes, or None when this model needs the words as strings."""
        return self.tables.byte_vocab()

    def predict_ids(self, line_ptr: np.ndarray, ids: np.ndarray, hashB: np.ndarray) -> np.ndarray:
        """``predict_proba`` of lines already turned into ids by ``byte_vocab()``."""
        return self.tables.predict_ids(line_ptr, ids, hashB)

    # -- public API -------------------------------------------------------------------------
    @classmethod
    def train(cls, train, *, warn=None, on_epoch=None, **options) -> "Classifier":
        """Train on ``train`` (a path, ``'-'`` for stdin, or a list of paths).

        Options (fastText's supervised defaults): ``dim=100, lr=0.1, epochs=5, word_ngrams=1,
        buckets=2_000_000, min_count=1, min_count_label=1, loss='softmax', neg=5,
        subwords='none', minn=3, maxn=6, tokenizer=None, pretrained_vectors=None, valid=None,
        label_prefix='__label__', lowercase=False, threads=1, seed=0, quiet=True``.
        ``model='nb'`` (with ``l2=1.0`` or ``"auto"``, ``word_ngrams`` 2 unless given; no
        dim/lr/epochs/neg/subword options)
        trains an ``nb.NBClassifier`` instead (NB-weighted logistic regression), which has the
        same predictor protocol, ``predict``, ``test`` and ``save``.
        ``warn(line)`` receives warnings (default: ``warnings.warn``), ``on_epoch(record)``
        each epoch's loss and validation accuracy; ``model.history`` keeps the records.
        """
        from .options import ClassifyOptions

        try:
            opts = ClassifyOptions(**options)
        except TypeError as e:
            raise UsageError(str(e)) from None
        return cls.train_with(train, opts, warn=warn, on_epoch=on_epoch)

    @classmethod
    def train_with(cls, train, opts, warn=None, on_epoch=None) -> "Classifier":
        """``train`` with a ready ``options.ClassifyOptions`` (what the CLI builds)."""
        from .trainer import fit

        paths = [os.fspath(p) for p in
                 ([train] if isinstance(train, (str, os.PathLike)) else list(train))]
        if opts.validate().model == "nb":
            from .nb_trainer import fit as fit_nb

            return fit_nb(paths, opts, warn=warn, on_epoch=on_epoch)
        result = fit(paths, opts, warn=warn, on_epoch=on_epoch)
        model = cls(result.parts)
        model.history = result.history
        return model

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Classifier":
        from .modelfile import read_model

        return cls(read_model(os.fspath(path)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically (an embedkit store of kind ``"classifier"``)."""
        from .modelfile import write_model

        write_model(os.fspath(path), self.parts)

    def predict(self, texts: Iterable, k: int = 1, threshold: float = 0.0
                ) -> list[list[tuple[str, float]]]:
        """Top-k ``(label, probability)`` per text (a str line, or a list of words), best first."""
        from .data import split_words
        from .metrics import top_k

        if k < 1:
            raise UsageError(f"k={k}: must be at least 1")
        lines = [split_words(t) if isinstance(t, str) else list(t) for t in texts]
        out = []
        for i in range(0, len(lines), 1024):
            scores = self.predict_proba(lines[i:i + 1024])
            out.extend([[(self.labels[j], p) for j, p in row]
                        for row in top_k(scores, k, threshold)])
        return out

    def test(self, data, k: int = 1, threshold: float = 0.0) -> dict:
        """Score labelled data (a path or list of paths, or ``data.Example`` items): see
        ``metrics.evaluate`` for the figures."""
        from .data import Reader
        from .metrics import evaluate

        if isinstance(data, (str, os.PathLike)):
            data = [data]
        data = list(data)
        if data and all(isinstance(d, (str, os.PathLike)) for d in data):
            reader = Reader(self.label_prefix)
            return evaluate(self, reader(data), k, threshold)
        return evaluate(self, data, k, threshold)


__all__ = ["Classifier", "load_model"]
