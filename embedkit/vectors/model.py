"""``Vectors``: word vectors of any supported format, with lookup (OOV via subwords), search and eval.

One object for every source (native, word2vec text/binary, fastText ``.bin``) so queries and
evaluation behave the same whatever tool made the vectors. A native model stays memory-mapped:
opening it reads the vocabulary and computes nothing until a query needs the row norms.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from ..errors import EmbedkitError, InputError, UsageError
from . import search


class UnknownWordError(EmbedkitError, KeyError):
    """A word has no vector: not in the vocabulary and no subwords to build one from."""

    def __init__(self, word: str, reason: str = ""):
        self.word = word
        super().__init__(f"unknown word {word!r}" + (f" ({reason})" if reason else ""))

    def __str__(self) -> str:
        return self.args[0]


class Vectors:
    """Word vectors plus what is needed to answer for unseen words (a subword scheme and its rows).

    ``in`` means "in the vocabulary"; ``vectors[word]`` also answers for out-of-vocabulary words
    when the model has subwords (mean of the word's subword rows, as fastText does).
    """

    def __init__(self, words: list[str], vectors: np.ndarray, *, counts=None, scheme=None,
                 subword_rows=None, input=None, output=None, settings=None, source: str = ""):
        self.words = list(words)
        self.vectors = vectors
        self.counts = counts
        self.scheme = scheme
        self.subword_rows = subword_rows
        self.input = input
        self.output = output
        self.settings = dict(settings or {})
        self.source = source
        self.path = ""
        self._index: dict[str, int] | None = None
        self._inv_norms: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, words, vectors, *, counts=None, scheme=None, subword_rows=None,
                    input=None, output=None, settings=None) -> "Vectors":
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"vectors shape {vectors.shape} does not match {len(words)} words")
        if scheme is not None and subword_rows is None:
            raise ValueError("a subword scheme needs subword_rows")
        return cls(words, vectors, counts=counts, scheme=scheme, subword_rows=subword_rows,
                   input=input, output=output, settings=settings)

    # ----- lookup ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.words)}
        return self._index

    @property
    def inv_norms(self) -> np.ndarray:
        if self._inv_norms is None:
            inv = search.inverse_norms(self.vectors)
            bad = ~np.isfinite(inv)
            if bad.any():
                word = self.words[int(np.argmax(bad))]
                raise InputError(self.path or "<vectors>",
                                 f"non-finite value (NaN or inf) in the vector of {word!r}")
            self._inv_norms = inv
        return self._inv_norms

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __iter__(self):
        return iter(self.words)

    def __repr__(self) -> str:
        sub = self.scheme.kind if self.scheme is not None else "none"
        return f"<Vectors {len(self)} x {self.dim}, subwords={sub}{', ' + self.source if self.source else ''}>"

    def __getitem__(self, word: str) -> np.ndarray:
        i = self.index.get(word)
        if i is not None:
            return np.asarray(self.vectors[i], dtype=np.float32)
        return self.oov_vector(word)

    def oov_vector(self, word: str) -> np.ndarray:
        """Mean of the word's subword rows; raises ``UnknownWordError`` when it has none."""
        if self.scheme is None:
            raise UnknownWordError(word, "not in the vocabulary and the model has no subwords")
        rows = np.asarray(self.scheme.rows(word), dtype=np.int64)
        if rows.size == 0:
            raise UnknownWordError(word, "not in the vocabulary and it has no subwords")
        block = np.asarray(self.subword_rows[rows], dtype=np.float32)
        return block.sum(axis=0, dtype=np.float32) * np.float32(1.0 / rows.size)

    def has_vector(self, word: str) -> bool:
        try:
            self[word]
        except UnknownWordError:
            return False
        return True

    # ----- search ---------------------------------------------------------------------------
    def most_similar(self, word_or_vector: str | np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` nearest words by cosine; a query word is excluded from its own results."""
        return self.most_similar_many([word_or_vector], k)[0]

    def most_similar_many(self, queries: Iterable[str | np.ndarray], k: int = 10,
                          errors: str = "raise") -> list:
        """Answer many queries with one matrix product per batch.

        ``errors="raise"`` raises ``UnknownWordError`` for the first word without a vector;
        ``errors="collect"`` puts that error object in the word's place and answers the others.
        """
        _check_k(k)
        queries = list(queries)
        rows, exclude, failed = [], [], {}
        for n, q in enumerate(queries):
            if isinstance(q, str):
                try:
                    rows.append(self[q])
                except UnknownWordError as e:
                    if errors == "raise":
                        raise
                    failed[n] = e
                    continue
                i = self.index.get(q)
                exclude.append([] if i is None else [i])
            else:
                v = np.asarray(q, dtype=np.float32).reshape(-1)
                if v.shape[0] != self.dim:
                    raise UsageError(f"query vector has {v.shape[0]} values, the model has {self.dim}")
                rows.append(v)
                exclude.append([])
        found = iter(search.top_k(self.vectors, self.inv_norms, np.stack(rows), k, exclude)
                     if rows else [])
        return [failed[n] if n in failed else [(self.words[i], s) for i, s in next(found)]
                for n in range(len(queries))]

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
        """"a is to b as c is to ?": 3CosAdd, the words nearest to unit(b) - unit(a) + unit(c).

        The three query words are excluded from the answers (as in word2vec and gensim).
        """
        _check_k(k)
        units = search.unit(np.stack([self[a], self[b], self[c]]))
        target = units[1] - units[0] + units[2]
        skip = sorted({self.index[w] for w in (a, b, c) if w in self.index})
        found = search.top_k(self.vectors, self.inv_norms, target[None, :], k, [skip])[0]
        return [(self.words[i], s) for i, s in found]

    def similarity(self, a: str, b: str) -> float:
        u = search.unit(np.stack([self[a], self[b]]))
        return float(u[0] @ u[1])

    # ----- evaluation -----------------------------------------------------------------------
    def evaluate_similarity(self, path: str | os.PathLike, restrict: int | None = 300000,
                            case_insensitive: bool = True) -> dict[str, Any]:
        """Spearman/Pearson on a word-pair file, with gensim's ``evaluate_word_pairs`` conventions."""
        from .evaluate import evaluate_similarity

        return evaluate_similarity(self, path, restrict=restrict, case_insensitive=case_insensitive)

    def evaluate_analogies(self, path: str | os.PathLike, restrict: int | None = 30000,
                           case_insensitive: bool = True) -> dict[str, Any]:
        """3CosAdd accuracy per section, with gensim's ``evaluate_word_analogies`` conventions."""
        from .evaluate import evaluate_analogies

        return evaluate_analogies(self, path, restrict=restrict, case_insensitive=case_insensitive)

    # ----- saving ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, format: str = "native") -> None:
        savers = {"native": self.save_native, "vec": self.save_vec, "w2v-bin": self.save_w2v_bin}
        if format not in savers:
            raise UsageError(f"unknown format {format!r}; choose one of {', '.join(savers)}")
        savers[format](path)

    def save_native(self, path: str | os.PathLike) -> None:
        from .formats.native import save_native

        save_native(path, self.words, self.vectors, counts=self.counts,
                    subwords=self.scheme.to_meta() if self.scheme is not None else None,
                    subword_rows=self.subword_rows if self.scheme is not None else None,
                    input=self.input, output=self.output, settings=self.settings)

    def save_vec(self, path: str | os.PathLike) -> None:
        from .formats import word2vec_text

        word2vec_text.write(path, self.words, self.vectors)

    def save_w2v_bin(self, path: str | os.PathLike) -> None:
        from .formats import word2vec_bin

        word2vec_bin.write(path, self.words, self.vectors)


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"-k must be at least 1 (got {k})")


def load(path: str | os.PathLike, limit: int | None = None) -> Vectors:
    """Open vectors of any supported format, detected from the file's content (never pickle).

    ``limit`` reads only the first N vectors of word2vec files (they are sorted by frequency).
    """
    vectors = _load(path, limit)
    vectors.path = os.fspath(path)
    return vectors


def _load(path: str | os.PathLike, limit: int | None) -> Vectors:
    from .formats.detect import detect

    fmt = detect(path)
    name = os.fspath(path)
    if fmt == "native":
        from ..subwords import scheme_from_meta
        from .formats.native import load_native

        meta, arrays = load_native(path)
        words = meta["words"]
        vec = arrays["vectors"]
        if not words or vec.size == 0:
            raise InputError(path, "empty model: no vectors")
        if limit is not None:
            words, vec = words[:limit], vec[:limit]
        try:
            scheme = scheme_from_meta(meta.get("subwords"))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(path, f"corrupt subword settings: {e}") from None
        return Vectors(words, vec, counts=arrays.get("counts"), scheme=scheme,
                       subword_rows=arrays.get("subword_rows"), input=arrays.get("input"),
                       output=arrays.get("output"), settings=meta.get("settings"),
                       source=f"native {name}")
    if fmt == "fasttext":
        from .formats import fasttext_bin

        return fasttext_bin.read(path).to_vectors(Vectors, source=f"fastText {name}")
    if fmt == "w2v-bin":
        from .formats import word2vec_bin

        words, vec = word2vec_bin.read(path, limit=limit)
        return Vectors(words, vec, source=f"word2vec binary {name}")
    from .formats import word2vec_text

    words, vec = word2vec_text.read(path, limit=limit)
    return Vectors(words, vec, source=f"word2vec text {name}")
