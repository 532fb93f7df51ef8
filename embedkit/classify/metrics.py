"""Scoring shared by every classifier kind (``classify``, fastText models, fine-tuned encoders).

The headline figures are exactly ``fasttext test``'s: for each line the predictions are the top-k
labels whose probability is >= ``threshold``; P@k = correct predictions / predictions and
R@k = correct predictions / gold labels, summed over all lines (micro averages). Ties between
equal probabilities go to the larger label index, as fastText's heap does.

One deliberate difference: fastText silently drops gold labels it never saw in training (and whole
lines whose labels are all unseen). Here they count as gold labels no model can predict, so they
lower recall and accuracy, and they are reported (``unseen_labels``, ``unseen_lines``).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

BATCH = 1024


def top_k_arrays(scores: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(label index [n, k], prob [n, k]) of each row's k best, best first; ties go to the larger
    index, as fastText's heap does."""
    scores = np.asarray(scores)
    n, nl = scores.shape
    k = max(0, min(int(k), nl))
    if k == 1:
        idx = (nl - 1 - np.argmax(scores[:, ::-1], axis=1))[:, None]  # argmax: first of ties
    else:
        # A stable sort of the reversed columns puts equal scores in descending index order.
        idx = nl - 1 - np.argsort(-scores[:, ::-1], axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(scores, idx, axis=1)


def top_k(scores: np.ndarray, k: int = 1, threshold: float = 0.0) -> list[list[tuple[int, float]]]:
    """Per row of ``scores`` [n, L]: up to ``k`` (label index, prob) pairs with prob >= threshold
    (NaN never passes), best first (ties: larger index first, as fastText)."""
    idx, probs = top_k_arrays(scores, k)
    keep = (probs >= threshold).cumprod(axis=1).sum(axis=1).tolist()
    idx, probs = idx.tolist(), probs.tolist()
    return [list(zip(i[:c], p[:c])) for i, p, c in zip(idx, probs, keep)]


class Scorer:
    """Accumulates fastText's counts plus accuracy, per-label counts and a confusion table."""

    def __init__(self, labels: Sequence[str], k: int = 1, threshold: float = 0.0):
        if k < 1:
            from ..errors import UsageError

            raise UsageError(f"-k {k}: must be at least 1")
        self.labels = list(labels)
        self.index = {name: i for i, name in enumerate(self.labels)}
        self.k, self.threshold = int(k), float(threshold)
        self.n = self.predicted = self.gold = self.correct = self.top1_correct = 0
        nl = len(self.labels)
        self.label_predicted = np.zeros(nl, np.int64)
        self.label_correct = np.zeros(nl, np.int64)
        self.label_gold = np.zeros(nl, np.int64)
        self.unseen: dict[str, int] = {}
        self.unseen_lines = 0
        self.confusion: dict[tuple[str, str | None], int] = {}

    def add(self, gold_labels: Sequence[Sequence[str]], scores: np.ndarray) -> None:
        """One batch: the gold labels of each line and the model's scores [n, L] for them."""
        scores = np.asarray(scores)
        if scores.shape != (len(gold_labels), len(self.labels)):
            raise ValueError(f"scores of shape {scores.shape}, expected "
                             f"{(len(gold_labels), len(self.labels))}")
        preds = top_k(scores, self.k, self.threshold)
        best = top_k(scores, 1, float("-inf"))
        for gold, row, b in zip(gold_labels, preds, best):
            self.n += 1
            ids = set()
            known = False
            for g in gold:
                i = self.index.get(g)
                if i is None:
                    self.unseen[g] = self.unseen.get(g, 0) + 1
                else:
                    ids.add(i)
                    self.label_gold[i] += 1
                    known = True
            if not known:
                self.unseen_lines += 1
            self.gold += len(gold)
            self.predicted += len(row)
            for i, _ in row:
                self.label_predicted[i] += 1
                if i in ids:
                    self.label_correct[i] += 1
                    self.correct += 1
            top = b[0][0] if b else None
            if top is not None and top in ids:
                self.top1_correct += 1
            name = None if top is None else self.labels[top]
            for g in gold:
                self.confusion[(g, name)] = self.confusion.get((g, name), 0) + 1

    def result(self) -> dict:
        """Strict-JSON-ready figures (None where a ratio is 0/0)."""
        per_label = {}
        for i, name in enumerate(self.labels):
            p = _ratio(self.label_correct[i], self.label_predicted[i])
            r = _ratio(self.label_correct[i], self.label_gold[i])
            per_label[name] = {"precision": p, "recall": r, "f1": _f1(p, r),
                               "support": int(self.label_gold[i]),
                               "predicted": int(self.label_predicted[i]),
                               "correct": int(self.label_correct[i])}
        for name, c in self.unseen.items():
            per_label[name] = {"precision": None, "recall": 0.0, "f1": None, "support": c,
                               "predicted": 0, "correct": 0}
        rows = self.labels + sorted(self.unseen)
        matrix = [[self.confusion.get((g, p), 0) for p in self.labels] for g in rows]
        no_pred = [self.confusion.get((g, None), 0) for g in rows]
        return {
            "n": self.n, "k": self.k, "threshold": self.threshold,
            "precision_at_k": _ratio(self.correct, self.predicted),
            "recall_at_k": _ratio(self.correct, self.gold),
            "accuracy": _ratio(self.top1_correct, self.n),
            "predicted": self.predicted, "gold": self.gold, "correct": self.correct,
            "unseen_labels": dict(sorted(self.unseen.items())), "unseen_lines": self.unseen_lines,
            "per_label": per_label,
            "confusion": {"gold": rows, "predicted": self.labels, "matrix": matrix,
                          "no_prediction": no_pred},
        }


def _ratio(a, b) -> float | None:
    return float(a) / float(b) if b else None


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def evaluate(predictor_or_scores, examples: Iterable, k: int = 1, threshold: float = 0.0,
             labels: Sequence[str] | None = None) -> dict:
    """Score a predictor (see ``model.load_model``) or a precomputed scores array on ``examples``.

    ``examples`` are ``data.Example`` (or anything with ``.labels`` and ``.words``); with a scores
    array [n, L], ``labels`` names its columns. Streams predictor input in batches of ``BATCH``.
    """
    if isinstance(predictor_or_scores, np.ndarray):
        if labels is None:
            raise ValueError("evaluate(scores, ...) needs labels= naming the score columns")
        sc = Scorer(labels, k, threshold)
        exs = list(examples)
        sc.add([e.labels for e in exs], predictor_or_scores)
        return sc.result()
    model = predictor_or_scores
    sc = Scorer(model.labels, k, threshold)
    batch = []
    for ex in examples:
        batch.append(ex)
        if len(batch) >= BATCH:
            sc.add([e.labels for e in batch], model.predict_proba([e.words for e in batch]))
            batch = []
    if batch:
        sc.add([e.labels for e in batch], model.predict_proba([e.words for e in batch]))
    return sc.result()


def fasttext_lines(result: dict) -> list[str]:
    """What ``fasttext test`` prints: N, P@k, R@k (3 significant digits)."""
    def g(x):
        return "nan" if x is None else f"{x:.3g}"
    return [f"N\t{result['n']}", f"P@{result['k']}\t{g(result['precision_at_k'])}",
            f"R@{result['k']}\t{g(result['recall_at_k'])}"]
