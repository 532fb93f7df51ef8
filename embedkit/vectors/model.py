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
        self.load_counts: dict[str, int] = {}
        self.load_warning: str | None = None
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
            index = {w: i for i, w in enumerate(self.words)}
            if len(index) != len(self.words):  # readers drop or refuse repeats; a lying .ekv
                seen: set[str] = set()
                first = next(w for w in self.words if w in seen or seen.add(w))
                raise InputError(self.path or "<vectors>",
                                 f"corrupt model: the word {first!r} is in the vocabulary twice")
            self._index = index
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
        v = np.asarray(self.vectors[i], dtype=np.float32) if i is not None else self.oov_vector(word)
        if not np.isfinite(v).all():  # a memory-mapped model is not scanned whole when opened
            raise InputError(self.path or "<vectors>",
                             f"non-finite value (NaN or inf) in the vector of {word!r}")
        return v

    def oov_vector(self, word: str) -> np.ndarray:
        """(Weighted) mean of the word's subword rows; raises ``UnknownWordError`` when it has
        none."""
        if self.scheme is None:
            raise UnknownWordError(word, "not in the vocabulary and the model has no subwords")
        rows = np.asarray(self.scheme.rows(word), dtype=np.int64)
        if rows.size == 0:
            raise UnknownWordError(word, "not in the vocabulary and it has no subwords")
        block = np.asarray(self.subword_rows[rows], dtype=np.float32)
        weigh = getattr(self.scheme, "row_weights", None)
        w = weigh(rows) if weigh is not None else None
        if w is None:
            return block.sum(axis=0, dtype=np.float32) * np.float32(1.0 / rows.size)
        return (w @ block) * np.float32(1.0 / w.sum(dtype=np.float64))

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
                          errors: str = "raise", restrict: int | None = None) -> list:
        """Answer many queries with one matrix product per batch.

        ``errors="raise"`` raises ``UnknownWordError`` for the first word without a vector;
        ``errors="collect"`` puts that error object in the word's place and answers the others.
        ``restrict=N`` answers from the N most frequent words only (gensim's ``restrict_vocab``);
        queries may still be any word.
        """
        _check_k(k)
        n_rows = _restricted(restrict, len(self.words))
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
                exclude.append([] if i is None or i >= n_rows else [i])
            else:
                v = np.asarray(q, dtype=np.float32).reshape(-1)
                if v.shape[0] != self.dim:
                    raise UsageError(f"query vector has {v.shape[0]} values, the model has {self.dim}")
                rows.append(v)
                exclude.append([])
        found = iter(search.top_k(self.vectors[:n_rows], self.inv_norms[:n_rows], np.stack(rows), k,
                                  exclude) if rows else [])
        return [failed[n] if n in failed else [(self.words[i], s) for i, s in next(found)]
                for n in range(len(queries))]

    def analogy(self, a: str, b: str, c: str, k: int = 10,
                restrict: int | None = None) -> list[tuple[str, float]]:
        """"a is to b as c is to ?": 3CosAdd, the words nearest to unit(b) - unit(a) + unit(c).

        The three query words are excluded from the answers (as in word2vec and gensim);
        ``restrict=N`` answers from the N most frequent words only.
        """
        _check_k(k)
        n = _restricted(restrict, len(self.words))
        units = search.unit(np.stack([self[a], self[b], self[c]]))
        target = units[1] - units[0] + units[2]
        skip = sorted({self.index[w] for w in (a, b, c) if self.index.get(w, n) < n})
        found = search.top_k(self.vectors[:n], self.inv_norms[:n], target[None, :], k, [skip])[0]
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


def _restricted(restrict: int | None, n: int) -> int:
    if restrict is None or restrict == 0:
        return n
    if not isinstance(restrict, (int, np.integer)) or restrict < 0:
        raise UsageError(f"--restrict must be >= 0 (got {restrict})")
    return min(int(restrict), n)


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"-k must be at least 1 (got {k})")


def load(path: str | os.PathLike, limit: int | None = None, unicode_errors: str = "keep",
         strict: bool = False) -> Vectors:
    """Open vectors of any supported format, detected from the file's content (never pickle).

    ``limit`` reads only the first N vectors of word2vec files (they are sorted by frequency).
    Files from the wild are read as gensim and fastText read them: ``unicode_errors`` says what
    to do with words that are not valid UTF-8 (``keep``: lossless, see ``WordPolicy``;
    ``replace``; ``strict``: refuse); duplicate words keep the first; text lines with more than
    D+1 fields have a word with spaces. ``strict=True`` refuses the last two. What was tolerated
    is counted in ``vectors.load_counts`` and summed up in ``vectors.load_warning`` (or None).
    """
    from .formats.checks import WordPolicy

    policy = WordPolicy(unicode_errors, strict)
    vectors = _load(path, limit, policy)
    vectors.path = os.fspath(path)
    vectors.load_counts = {"bad_utf8": policy.bad_utf8, "duplicates": policy.duplicates,
                           "joined": policy.joined}
    warning = policy.warning()
    vectors.load_warning = f"{vectors.path}: {warning}" if warning else None
    return vectors


def _load(path: str | os.PathLike, limit: int | None, policy) -> Vectors:
    from .formats.detect import detect

    fmt = detect(path)
    name = os.fspath(path)
    if fmt == "native":
        from ..subwords import scheme_from_meta
        from .formats.native import load_native

        meta, arrays = load_native(path)
        words = meta["words"]
        vec = arrays["vectors"]
        if limit is not None:
            words, vec = words[:limit], vec[:limit]
        try:
            scheme = scheme_from_meta(meta["subwords"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(path, f"corrupt native model: meta 'subwords': {e}") from None
        size = getattr(scheme, "size", None)
        if size is not None and size != arrays["subword_rows"].shape[0]:
            raise InputError(path, f"corrupt native model: meta 'subwords' has {size} "
                                   f"pieces but 'subword_rows' has "
                                   f"{arrays['subword_rows'].shape[0]} rows")
        return Vectors(words, vec, counts=arrays.get("counts"), scheme=scheme,
                       subword_rows=arrays.get("subword_rows"), input=arrays.get("input"),
                       output=arrays.get("output"), settings=meta.get("settings"),
                       source=f"native {name}")
    if fmt == "fasttext":
        from .formats import fasttext_bin

        return fasttext_bin.read(path, policy=policy).to_vectors(Vectors, source=f"fastText {name}")
    if fmt == "w2v-bin":
        from .formats import word2vec_bin

        words, vec = word2vec_bin.read(path, limit=limit, policy=policy)
        return Vectors(words, vec, source=f"word2vec binary {name}")
    from .formats import word2vec_text

    words, vec = word2vec_text.read(path, limit=limit, policy=policy)
    return Vectors(words, vec, source=f"word2vec text {name}")
