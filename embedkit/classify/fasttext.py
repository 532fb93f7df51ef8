"""Supervised fastText models (``.bin`` and quantized ``.ftz``) as predictors for ``classify``.

Predictions are fastText's own (``predict`` of fastText 0.9.2, what ``fasttext predict`` and the
Python package print): a line is its words plus the end-of-line token ``</s>``, read as
``Dictionary::getLine`` does — a dictionary word adds its input row (and its char n-gram rows when
the model has ``maxn > 0``), an unknown word adds its char n-gram rows only, every word (known or
not) takes part in the hashed word n-grams up to ``wordNgrams``; tokens that are labels are
dropped, and a literal ``</s>`` ends the line as it does for fastText. The whole line counts:
the 1,024-token cut (``MAX_LINE_SIZE``) is in fastText's unsupervised ``getLine`` only. The
hidden vector is the mean of those rows; then softmax, the hierarchical softmax over the label
Huffman tree (each label's probability is the product along its path), or, for ``ns`` and
``ova``, one sigmoid per label from fastText's 512-step table. Probabilities are reported as
fastText prints them: ``exp(log(p + 1e-5))``.

fastText does not store its label prefix (``-label``) in the model: labels are stripped of
``__label__`` when they all carry it, otherwise of the prefix they share up to its last
punctuation character (``#pos``/``#neg`` -> ``#``), kept in ``label_prefix``. As in training,
an unknown token with that prefix is a label, not a word (fastText itself, once it has reloaded
such a model, only knows its default ``__label__``).
"""
from __future__ import annotations

import os
from itertools import repeat

import numpy as np

from ..errors import InputError
from ..subwords import EOS
from ..vectors.formats import fasttext_bin
from ..vectors.formats.checks import WordPolicy

LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
FASTTEXT_LABEL = "__label__"  # fastText's default -label
_BATCH = 8192
_THREADED_LINES = 256  # a batch this long is cut into one chunk per worker (nogil kernel)
_WORKERS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                       else os.cpu_count() or 1, 4))
_POOL: list = []


def _pool():
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(_WORKERS, thread_name_prefix="embedkit-fasttext"))
    return _POOL[0]


def load(path: str | os.PathLike) -> "FastTextClassifier":
    """A predictor (the ``classify`` protocol) for a supervised fastText ``.bin`` or ``.ftz``."""
    model = fasttext_bin.parse(path, WordPolicy("keep"))
    if not model.supervised:
        raise InputError(path, "an unsupervised fastText model (word vectors, no labels): "
                               "expected a supervised one (fasttext supervised)")
    if model.version is None:
        raise InputError(path, "a pre-2017 fastText model: fastText itself no longer reads it "
                               "(its word vectors still work with nn/vectors; retrain it to "
                               "classify)")
    if not model.labels:
        raise InputError(path, "supervised fastText model without labels")
    return FastTextClassifier(model, os.fspath(path))


def label_prefix(labels: list[str]) -> str:
    """The ``-label`` prefix a model was most likely trained with (see the module docstring)."""
    if all(lab.startswith(FASTTEXT_LABEL) for lab in labels):
        return FASTTEXT_LABEL
    common = os.path.commonprefix(labels)
    if len(labels) == 1:
        common = labels[0][:-1]
    cut = max((i + 1 for i, c in enumerate(common) if not c.isalnum()), default=0)
    return common[:cut]


def huffman_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Children (left, right) of fastText's hierarchical-softmax tree over label counts
    (``HierarchicalSoftmaxLoss::buildTree``): leaves 0..L-1, internal node i uses output row
    i - L, the root is 2L - 2."""
    osz = len(counts)
    size = 2 * osz - 1
    count = np.full(size, 10 ** 15, np.int64)
    count[:osz] = counts
    left = np.full(size, -1, np.int64)
    right = np.full(size, -1, np.int64)
    leaf, node = osz - 1, osz
    for i in range(osz, size):
        pick = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pick.append(leaf)
                leaf -= 1
            elif node < i:
                pick.append(node)
                node += 1
            else:  # only counts fastText never writes (>= 1e15) get here
                raise ValueError("label counts do not make a Huffman tree")
        left[i], right[i] = pick
        count[i] = count[pick[0]] + count[pick[1]]
    return left, right


class FastTextClassifier:
    """fastText's supervised model answering ``predict_proba`` as fastText's ``predict`` does."""

    label_style = "fasttext"
    lowercase = False

    def __init__(self, model: fasttext_bin.FastTextModel, path: str = ""):
        from . import fasttext_kernels as K

        self.model, self.path = model, path
        a = model.args
        self.loss = LOSSES[a["loss"]]
        self.multilabel = self.loss == "ova"
        full = [lab.decode("utf-8", "surrogateescape") for lab in model.labels]
        self.label_prefix = label_prefix(full)
        self.labels = [lab[len(self.label_prefix):] for lab in full]
        nw = model.nwords
        self._ids = {w: i for i, w in enumerate(model.keys)}
        for j, lab in enumerate(full):
            self._ids.setdefault(lab, nw + j)
        self._nvocab = nw + len(full)
        self._vptr, self._vids = model.bags(model.keys, own_rows=True)
        self._vhash = _hashes(model.keys)
        if self.loss == "hs":
            try:
                self._left, self._right = huffman_tree(model.label_counts)
            except ValueError as e:
                raise InputError(path, f"corrupt fastText dictionary: {e}") from None
        else:
            self._left = self._right = np.zeros(1, np.int64)
        self._table = K.sigmoid_table()
        nl = len(full)
        self._scale = (model.output_norms if model.output_norms is not None
                       else np.ones(nl, np.float32)).astype(np.float32)
        self._out = np.ascontiguousarray(model.output, dtype=np.float32)
        if not (np.isfinite(self._out).all() and np.isfinite(self._scale).all()):
            raise InputError(path, "non-finite value (NaN or inf) in the output matrix")
        self._inp = model.input
        pruned = model.prune_keys is not None
        self._prune = (pruned, model.prune_keys if pruned else np.zeros(0, np.int64),
                       model.prune_rows if pruned else np.zeros(0, np.int32))

    def __repr__(self) -> str:
        m = self.model
        return (f"<fastText classifier {len(self.labels)} labels, loss {self.loss}, "
                f"{m.nwords} words, dim {m.args['dim']}{', quantized' if m.quantized else ''}>")

    def predict_proba(self, texts: list[list[str]]) -> np.ndarray:
        """float32 [len(texts), len(labels)]: fastText's probability of each label per line."""
        texts = list(texts)
        result = np.empty((len(texts), len(self.labels)), np.float32)
        for lo in range(0, len(texts), _BATCH):
            self._predict(texts[lo:lo + _BATCH], result[lo:lo + _BATCH])
        return self._checked(result)

    def byte_vocab(self):
        """For ``classify predict``: a ``byte_ids.ByteVocab`` for ``predict_ids``, or None when
        the model has char n-grams (an unseen word needs its string for them)."""
        if self.model.args["maxn"] > 0:
            return None
        from .byte_ids import ByteVocab

        prefix = self.label_prefix
        return ByteVocab(self._ids, self._nvocab, "fasttext", (prefix,) if prefix else ())

    def predict_ids(self, line_ptr: np.ndarray, ids: np.ndarray, hashB: np.ndarray) -> np.ndarray:
        """``predict_proba`` of lines already turned into ids by ``byte_vocab()``."""
        n = len(line_ptr) - 1
        result = np.empty((n, len(self.labels)), np.float32)
        self._run(line_ptr, ids, np.zeros(len(hashB) + 1, np.int64), np.zeros(0, np.int32),
                  hashB, np.zeros(len(hashB), np.bool_), result)
        return self._checked(result)

    def _checked(self, result: np.ndarray) -> np.ndarray:
        if not np.isfinite(result).all():
            raise InputError(self.path, "non-finite value (NaN or inf) in the model's input "
                                        "matrix: the predictions are undefined")
        return result

    def _predict(self, texts: list[list[str]], result: np.ndarray) -> None:
        flat: list[str] = []
        sizes = np.empty(len(texts), np.int64)
        for i, words in enumerate(texts):
            if EOS in words:  # fastText's line ends at the first </s>
                words = words[:words.index(EOS)]
            flat.extend(words)
            flat.append(EOS)
            sizes[i] = len(words) + 1
        line_ptr = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(sizes, out=line_ptr[1:])
        seq = np.fromiter(map(self._ids.get, flat, repeat(-1)), np.int64, len(flat))
        oov: dict[str, int] = {}
        nvocab = self._nvocab
        for at in np.flatnonzero(seq < 0).tolist():
            seq[at] = nvocab + oov.setdefault(flat[at], len(oov))
        oov_words = list(oov)
        if oov_words:
            optr, oids = self.model.bags(oov_words, own_rows=False)
            ohash = _hashes(oov_words)
        else:
            optr, oids, ohash = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
        prefix = self.label_prefix
        olabel = np.array([bool(prefix) and w.startswith(prefix) for w in oov_words], np.bool_)
        self._run(line_ptr, seq, optr, oids, ohash, olabel, result)

    def _run(self, line_ptr, seq, optr, oids, ohash, olabel, result) -> None:
        from . import fasttext_kernels as K

        a = self.model.args
        pruned, pkeys, prows = self._prune

        def run(lo: int, hi: int) -> None:
            K.predict_lines(line_ptr[lo:hi + 1], seq, self.model.nwords, self._nvocab,
                            self._vptr, self._vids, self._vhash, optr, oids, ohash, olabel,
                            max(a["wordNgrams"], 1), a["bucket"], pruned, pkeys, prows,
                            self._inp, self._out, self._scale, a["loss"], self._table,
                            self._left, self._right, result[lo:hi])

        n = len(line_ptr) - 1
        if n < _THREADED_LINES or _WORKERS < 2:
            run(0, n)
            return
        cuts = [n * t // _WORKERS for t in range(_WORKERS + 1)]  # lines are independent: any
        list(_pool().map(run, cuts[:-1], cuts[1:]))             # split gives the same result


def _hashes(words: list[str]) -> np.ndarray:
    """fastText's hash of each word (its UTF-8 bytes, as the dictionary stores them)."""
    from .kernels import word_hashes
    from .tables import encoded

    return word_hashes(*encoded(words))
