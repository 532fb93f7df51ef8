"""embedkit: word embeddings and tokenization — BPE, word vectors, queries, a NumPy encoder.

The public API is small and imported lazily (so ``import embedkit`` and ``embedkit --help`` stay
fast and never load numba):

- ``BPETokenizer``: train / encode / decode / save / load byte-level or word BPE.
- ``train(...)``: train word vectors (CBOW / skip-gram, negative sampling, char or BPE subwords).
- ``load(path)``: open vectors of any supported format for queries and evaluation.
- ``Encoder``: a small transformer encoder, trained and queried with NumPy.
- ``Classifier``: fastText-style supervised text classification (train / test / predict);
  ``model="nb"`` trains NB-weighted logistic regression instead.
- ``probe(features, train, test)``: linear-probe accuracy of frozen vectors or encoder features.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "BPETokenizer": ("embedkit.bpe.model", "BPETokenizer"),
    "train": ("embedkit.wordvec.trainer", "train"),
    "load": ("embedkit.vectors.model", "load"),
    "Vectors": ("embedkit.vectors.model", "Vectors"),
    "Encoder": ("embedkit.encoder.model", "Encoder"),
    "Classifier": ("embedkit.classify.model", "Classifier"),
    "probe": ("embedkit.classify.probe", "probe"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedkit' has no attribute {name!r}")
