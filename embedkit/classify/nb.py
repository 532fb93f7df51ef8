"""``NBClassifier``: NB-weighted logistic regression (Wang & Manning 2012, "Baselines and
Bigrams": NBSVM with a logistic loss), the strong linear baseline for sentiment-like tasks.

A line's features are its words and word n-grams (2..``word_ngrams``, hashed into ``buckets``
exactly as the fastText-style model hashes them), each present or absent (binarized); ``</s>``
is not a feature. Each one-vs-rest problem c scales feature j by its naive-Bayes log-count
ratio ``r_c[j] = log((p_j / |p|_1) / (q_j / |q|_1))``, with p, q = 1 + the number of lines with
/ without label c holding j, and fits an L2-regularised logistic regression (scikit-learn's
``LogisticRegression(C=l2)`` objective, bias unpenalised) on the scaled features to convergence.
Two labels (not ``ova``): one problem, P(labels[1]) = sigmoid. More: one problem per label,
``softmax`` = softmax over the one-vs-rest logits, ``ova`` = independent sigmoids (multi-label).

Model file: an ``embedkit.store`` of kind ``"nb-classifier"``. Meta: ``format`` (1),
``settings`` (model "nb", word_ngrams, buckets, loss, l2, label_prefix, lines, tokens...),
``words``, ``labels``, ``label_style``, ``lowercase``. Arrays: ``ratio`` and ``weight``
float32 [V + U, K] (K = 1 for two labels, else L; rows: words, then the U stored buckets),
``bias`` float64 [K], ``bucket_ids`` int32 [U] (sorted: buckets that training text hashed to),
``label_counts`` int64 [L] (training lines per label). Every field is checked on load.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..store import read_store, write_store
from .model import Classifier
from .modelfile import check_arrays, check_bucket_ids, check_vocabulary

KIND = "nb-classifier"
FORMAT = 1
LOSSES = ("softmax", "ova")


def outputs(n_labels: int, loss: str) -> int:
    """Weight columns: 1 for a two-label softmax model (NBSVM's binary case), else 1 per label."""
    return 1 if n_labels == 2 and loss == "softmax" else n_labels


class NBClassifier:
    """The trained model; a predictor (``labels``, ``label_style``, ``multilabel``,
    ``lowercase``, ``predict_proba``) with ``Classifier``'s ``predict`` and ``test``."""

    predict = Classifier.predict
    test = Classifier.test

    def __init__(self, settings: dict, words: list[str], labels: list[str],
                 label_counts: np.ndarray, bucket_ids: np.ndarray, ratio: np.ndarray,
                 weight: np.ndarray, bias: np.ndarray, label_style: str, lowercase: bool):
        self.settings = dict(settings)
        self.words, self.labels = words, labels
        self.label_counts = np.asarray(label_counts, np.int64)
        self.bucket_ids = np.asarray(bucket_ids, np.int32)
        self.ratio = np.asarray(ratio, np.float32)
        self.weight = np.asarray(weight, np.float32)
        self.bias = np.asarray(bias, np.float64)
        self.label_style, self.lowercase = label_style, bool(lowercase)
        self.history: list[dict] = []
        self._index = {w: i for i, w in enumerate(words)}
        self._v = self.ratio.astype(np.float64) * self.weight  # what a present feature adds
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def multilabel(self) -> bool:
        return self.settings["loss"] == "ova"

    @property
    def label_prefix(self) -> str:
        return self.settings["label_prefix"]

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The words' fastText hashes and the bucket -> column map, built on first use (a
        model only being trained or saved never needs them)."""
        if self._lookup is None:
            from .kernels import word_hashes
            from .tables import bucket_map, encoded

            V = len(self.words)
            self._lookup = (word_hashes(*encoded(self.words)),
                            bucket_map(int(self.settings["buckets"]), self.bucket_ids, V))
        return self._lookup

    def decision(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """float64 [n, K]: the one-vs-rest logits (K = 1 for a two-label softmax model); words
        are lower-cased if the model does so."""
        from .kernels import word_hashes
        from .tables import encoded, token_ids

        line_ptr, ids, unknown = token_ids(texts, self._index, self.lowercase, eos=False)
        hashB = word_hashes(*encoded(unknown)) if unknown else np.zeros(0, np.int64)
        return self._decision(line_ptr, ids, hashB)

    def _decision(self, line_ptr: np.ndarray, ids: np.ndarray, hashB: np.ndarray) -> np.ndarray:
        from . import nb_kernels as NK

        hashA, bucket_col = self._tables()
        z = np.empty((len(line_ptr) - 1, len(self.bias)), np.float64)
        NK.predict_scores(line_ptr, ids, hashA, hashB, int(self.settings["word_ngrams"]),
                          int(self.settings["buckets"]), bucket_col, self._v, self.bias, z)
        return z

    def byte_vocab(self):
        """For ``classify predict``: a ``byte_ids.ByteVocab`` for ``predict_ids`` (None for a
        lower-casing model, which needs the words as strings)."""
        if self.lowercase:
            return None
        from .byte_ids import ByteVocab

        return ByteVocab(self._index, len(self.words), "none")

    def predict_ids(self, line_ptr: np.ndarray, ids: np.ndarray, hashB: np.ndarray) -> np.ndarray:
        """``predict_proba`` of lines already turned into ids by ``byte_vocab()``."""
        return self._probabilities(self._decision(line_ptr, ids, hashB))

    def predict_proba(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 [n, labels]: sigmoid (two labels), softmax over the one-vs-rest logits
        (``softmax``) or independent sigmoids (``ova``)."""
        return self._probabilities(self.decision(texts))

    def _probabilities(self, z: np.ndarray) -> np.ndarray:
        from .logreg import probabilities, sigmoid

        if self.multilabel:
            return sigmoid(z).astype(np.float32)
        return probabilities(z, len(self.labels) == 2 and z.shape[1] == 1).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file atomically (an embedkit store of kind ``"nb-classifier"``)."""
        meta = {"format": FORMAT, "settings": self.settings, "words": self.words,
                "labels": self.labels, "label_style": self.label_style,
                "lowercase": self.lowercase}
        write_store(path, KIND, meta, {"ratio": self.ratio, "weight": self.weight,
                                       "bias": self.bias, "bucket_ids": self.bucket_ids,
                                       "label_counts": self.label_counts})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NBClassifier":
        return _read(os.fspath(path))


def _read(path: str) -> NBClassifier:
    meta, arrays = read_store(path, KIND, mmap=True)

    def bad(field: str, problem: str):
        return InputError(path, f"corrupt nb classifier: {field}: {problem}")

    if meta.get("format") != FORMAT:
        raise bad("format", f"version {meta.get('format')!r}, this embedkit reads {FORMAT}")
    s = meta.get("settings")
    if not isinstance(s, dict) or s.get("model") != "nb":
        raise bad("settings", "missing, or not of an nb model")
    n, b = s.get("word_ngrams"), s.get("buckets")
    if type(n) is not int or not 1 <= n <= 100:
        raise bad("settings.word_ngrams", f"{n!r} is not an integer in [1, 100]")
    if type(b) is not int or not (b == 0 if n == 1 else 1 <= b <= 2**31 - 1):
        raise bad("settings.buckets", f"{b!r} (0 with word_ngrams 1, else in [1, 2**31 - 1])")
    if s.get("loss") not in LOSSES:
        raise bad("settings.loss", f"{s.get('loss')!r} is not one of {', '.join(LOSSES)}")
    l2 = s.get("l2")
    if type(l2) not in (int, float) or not (math.isfinite(l2) and l2 > 0):
        raise bad("settings.l2", f"{l2!r} is not a positive number")
    prefix = s.get("label_prefix")
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise bad("settings.label_prefix", f"{prefix!r}")
    words, labels = check_vocabulary(meta, bad)
    for name in ("ratio", "weight", "bias", "bucket_ids", "label_counts"):
        if name not in arrays:
            raise bad(name, "missing")
    ids = check_bucket_ids(arrays["bucket_ids"], b, bad)
    F, K = len(words) + len(ids), outputs(len(labels), s["loss"])
    check_arrays(arrays, {"ratio": ((F, K), np.float32), "weight": ((F, K), np.float32),
                          "bias": ((K,), np.float64), "label_counts": ((len(labels),), np.int64)},
                 bad)
    for name in ("ratio", "weight", "bias"):
        if not np.isfinite(arrays[name]).all():
            raise bad(name, "holds NaN or inf")
    if np.any(arrays["label_counts"] < 0):
        raise bad("label_counts", "negative")
    return NBClassifier(s, words, labels, np.asarray(arrays["label_counts"]), np.asarray(ids),
                        np.asarray(arrays["ratio"]), np.asarray(arrays["weight"]),
                        np.asarray(arrays["bias"]), meta["label_style"], meta["lowercase"])
