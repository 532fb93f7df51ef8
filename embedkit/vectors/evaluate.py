"""Similarity (Spearman) and analogy (3CosAdd accuracy) evaluation with gensim's conventions.

Matching gensim matters more than any "better" choice here: people compare numbers across papers.
So: vocabulary restricted to the ``restrict`` most frequent words; case-insensitive lookup by
``str.upper()`` with the most frequent spelling winning; pairs/questions with a word outside the
restricted vocabulary are skipped and reported as coverage; an analogy's answer is the best of
the top 5 (after dropping the question words' rows) that is not a question word.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import InputError
from . import search
from .formats.checks import read_bytes

_ANALOGY_BATCH = 256


def rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span (as Spearman needs)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    denom = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denom) if denom > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(rank_average(x), rank_average(y))


def _restricted_index(vectors, restrict: int | None, case_insensitive: bool) -> dict[str, int]:
    keys = vectors.words[:restrict] if restrict else vectors.words
    if not case_insensitive:
        return {w: i for i, w in enumerate(keys)}
    index: dict[str, int] = {}
    for i, w in enumerate(keys):
        index.setdefault(w.upper(), i)
    return index


def _lines(path) -> list[str]:
    data = read_bytes(path, expected="a file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(path, "not valid UTF-8", line) from None
    return text.lstrip("\ufeff").splitlines()


def evaluate_similarity(vectors, path: str | os.PathLike, *, restrict: int | None,
                        case_insensitive: bool) -> dict[str, Any]:
    """``word1 word2 score`` lines, TAB- or whitespace-separated (``#`` comments); gensim
    ``evaluate_word_pairs``. TABs win when a line has exactly three TAB fields (phrases).
    The defaults live in ``Vectors.evaluate_similarity``."""
    index = _restricted_index(vectors, restrict, case_insensitive)
    gold, pairs, oov, invalid = [], [], 0, 0
    for line in _lines(path):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            parts = line.split()
        try:
            a, b, sim = parts
            sim = float(sim)
        except ValueError:
            invalid += 1
            continue
        if not math.isfinite(sim):  # a NaN gold score would silently poison the rank correlation
            invalid += 1
            continue
        if case_insensitive:
            a, b = a.upper(), b.upper()
        if a not in index or b not in index:
            oov += 1
            continue
        gold.append(sim)
        pairs.append((index[a], index[b]))
    total = len(gold) + oov
    if total == 0:
        raise InputError(path, "no word pairs found (expected 'word1 word2 score' lines)")
    result = {"file": os.fspath(path), "pairs": total, "used": len(gold), "invalid_lines": invalid,
              "coverage": len(gold) / total, "oov_ratio": 100.0 * oov / total,
              "spearman": float("nan"), "pearson": float("nan")}
    if len(gold) >= 2:
        rows = np.array(pairs, dtype=np.int64)
        ua = search.unit(np.asarray(vectors.vectors[rows[:, 0]]))
        ub = search.unit(np.asarray(vectors.vectors[rows[:, 1]]))
        model = np.einsum("ij,ij->i", ua, ub)
        result["spearman"] = spearman(gold, model)
        result["pearson"] = pearson(gold, model)
    return result


def evaluate_analogies(vectors, path: str | os.PathLike, *, restrict: int | None,
                       case_insensitive: bool) -> dict[str, Any]:
    """``: section`` headers and ``a b c d`` lines; gensim ``evaluate_word_analogies`` (3CosAdd).
    The defaults live in ``Vectors.evaluate_analogies``."""
    index = _restricted_index(vectors, restrict, case_insensitive)
    sections: list[dict] = []
    questions, oov, seen = [], 0, 0
    for lineno, line in enumerate(_lines(path), 1):
        if line.startswith(": "):
            sections.append({"section": line[2:].strip(), "correct": 0, "incorrect": 0})
            continue
        if not line.strip():
            continue
        if not sections:
            raise InputError(path, "missing ': section' header before the first question", lineno)
        words = line.split()
        if len(words) != 4:
            continue
        seen += 1
        if case_insensitive:
            words = [w.upper() for w in words]
        if any(w not in index for w in words):
            oov += 1
            continue
        questions.append((len(sections) - 1, words))
    if seen == 0:
        raise InputError(path, "no analogy questions found (expected ': section' and 'a b c d' lines)")
    _solve(vectors, index, questions, sections, restrict, case_insensitive)
    return _summary(path, sections, seen, oov)


def _solve(vectors, index, questions, sections, restrict, case_insensitive) -> None:
    n = min(len(vectors), restrict) if restrict else len(vectors)
    matrix = vectors.vectors[:n]
    inv = vectors.inv_norms[:n]
    units = search.unit(np.asarray(matrix)) if questions else None
    for lo in range(0, len(questions), _ANALOGY_BATCH):
        batch = questions[lo:lo + _ANALOGY_BATCH]
        ids = np.array([[index[w] for w in q[:3]] for _, q in batch], dtype=np.int64)
        target = units[ids[:, 1]] - units[ids[:, 0]] + units[ids[:, 2]]
        # gensim: the top (5 + 3) rows, question rows dropped, first 5 kept.
        found = search.top_k(matrix, inv, target, 5, [list(r) for r in ids])
        for (sec, (a, b, c, expected)), cands in zip(batch, found):
            predicted = None
            for i, _ in cands:
                predicted = vectors.words[i].upper() if case_insensitive else vectors.words[i]
                if predicted in index and predicted not in (a, b, c):
                    break
            sections[sec]["correct" if predicted == expected else "incorrect"] += 1


def _summary(path, sections, seen, oov) -> dict[str, Any]:
    def acc(c, i):
        return c / (c + i) if c + i else 0.0

    for s in sections:
        s["accuracy"] = acc(s["correct"], s["incorrect"])
    groups = {}
    for name, pick in (("semantic", lambda s: not s["section"].startswith("gram")),
                       ("syntactic", lambda s: s["section"].startswith("gram")),
                       ("total", lambda s: True)):
        c = sum(s["correct"] for s in sections if pick(s))
        i = sum(s["incorrect"] for s in sections if pick(s))
        groups[name] = {"correct": c, "incorrect": i, "accuracy": acc(c, i)}
    used = groups["total"]["correct"] + groups["total"]["incorrect"]
    return {"file": os.fspath(path), "questions": seen, "used": used, "coverage": used / seen,
            "oov_ratio": 100.0 * oov / seen, "accuracy": groups["total"]["accuracy"],
            "semantic": groups["semantic"], "syntactic": groups["syntactic"],
            "sections": sections}
