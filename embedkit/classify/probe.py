"""Linear probes: how well a logistic regression on frozen features separates the labels.

Protocol (SentEval's): the L2 strength C is chosen from ``C_GRID`` by stratified k-fold
cross-validation on TRAIN (highest mean fold accuracy; ties to the smaller C, the stronger
regularisation), then a model is fitted on all of TRAIN with it and scored on TEST. Without
TEST the whole protocol is nested in an outer stratified k-fold (SentEval's
``InnerKFoldClassifier``): each outer fold chooses C on its own training part, and the reported
accuracy is the mean over outer folds. Folds are seeded and deterministic; features are
standardised with the statistics of the part a model is fitted on, never of the part it is
scored on.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ..errors import UsageError
from .data import LABEL_PREFIX, Reader, read_classes, read_single_label
from .features import open_features
from .logreg import LogReg
from .metrics import Scorer

C_GRID = tuple(2.0 ** k for k in range(-8, 5))  # 1/256 .. 16


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """[n] labels -> [n] fold ids in 0..k-1: each label's examples shuffled (seeded) and dealt
    round-robin, the deal continuing from label to label, so fold sizes differ by at most one and
    each label's count per fold by at most one."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(y), np.int64)
    start = 0
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        folds[idx] = (start + np.arange(len(idx))) % k
        start += len(idx)
    return folds


def choose_c(x: np.ndarray, y: np.ndarray, n_classes: int, k: int, seed: int,
             grid=C_GRID) -> tuple[float, dict[float, float]]:
    """Best C by k-fold CV on (x, y) and the mean fold accuracy of every C in the grid."""
    folds = stratified_folds(y, k, seed)
    grid = sorted(grid)
    acc = np.zeros((k, len(grid)))
    for f in range(k):
        fit, held = folds != f, folds == f
        xf, yf = x[fit], y[fit]
        for j, model in enumerate(LogReg.fit_path(xf, yf, n_classes, grid)):
            acc[f, j] = np.mean(model.predict(x[held]) == y[held])
    means = acc.mean(axis=0)
    best = int(np.argmax(means))
    return grid[best], dict(zip(grid, means.tolist()))


def _check_kfold(k: int, n: int) -> None:
    if k < 2:
        raise UsageError(f"--kfold must be at least 2 (got {k})")
    if k > n:
        raise UsageError(f"--kfold {k} needs at least {k} labelled training lines (TRAIN has {n})")


def probe(features, train, test=None, *, pool: str = "mean", layer: int | None = None,
          kfold: int = 10, label_prefix: str = LABEL_PREFIX, lowercase: bool = False,
          threads: int | None = None, seed: int = 0, grid=C_GRID, quiet: bool = True) -> dict:
    """Linear-probe accuracy of ``features`` (a vectors file, an ENCDIR, or an object from
    ``features.open_features``) on the labelled lines of ``train`` (and ``test``).

    Returns a dict: ``cv_accuracy`` (inner CV at the chosen C with TEST, outer CV without),
    ``test_accuracy`` (None without TEST), ``c`` (None without TEST: see ``c_per_fold``),
    ``cv_accuracy_per_c``, ``n_train``, ``n_test``, ``labels``, ``dim``, ``features``, the counts
    ``zero_feature_lines``, ``skipped_unlabelled``, ``test_unseen_labels``, and ``warnings``
    (one line each, for the CLI to show).
    """
    train = os.fspath(train)
    reader = Reader(label_prefix, lowercase)
    texts, gold, labels = read_classes(train, reader, "a probe")
    _check_kfold(kfold, len(gold))
    if test is not None:  # read before any long work, so a bad TEST fails at once
        test = os.fspath(test)
        test_reader = Reader(label_prefix, lowercase)
        t_texts, t_gold = read_single_label(test, test_reader)
    if threads is not None:
        from ..encoder.threads import set_threads

        set_threads(threads)
    if not hasattr(features, "matrix"):
        features = open_features(features, pool, layer)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[g] for g in gold], np.int64)
    x, zero_train = features.matrix(texts, quiet)
    result = {"features": features.describe(), "kind": features.kind, "dim": features.dim,
              "labels": labels, "n_train": len(y), "n_test": None, "kfold": kfold, "seed": seed,
              "c_grid": sorted(grid), "zero_feature_lines": {"train": zero_train, "test": None},
              "skipped_unlabelled": {"train": reader.skipped, "test": None},
              "test_unseen_labels": None}
    warnings = [m for m in (reader.skipped_message(),) if m]
    if test is None:
        result.update(_outer_cv(x, y, len(labels), kfold, seed, grid))
    else:
        c, per_c = choose_c(x, y, len(labels), kfold, seed, grid)
        model = LogReg.fit(x, y, len(labels), c)
        xt, zero_test = features.matrix(t_texts, quiet)
        scorer = Scorer(labels)
        scorer.add([(g,) for g in t_gold], model.predict_proba(xt))
        unseen = scorer.unseen_lines
        result.update(c=c, cv="inner", cv_accuracy=per_c[c],
                      cv_accuracy_per_c={str(k): v for k, v in per_c.items()},
                      n_test=len(t_gold), test_accuracy=scorer.result()["accuracy"],
                      test_unseen_labels=unseen)
        result["zero_feature_lines"]["test"] = zero_test
        result["skipped_unlabelled"]["test"] = test_reader.skipped
        if test_reader.skipped_message():
            warnings.append(test_reader.skipped_message())
        if unseen:
            names = sorted({g for g in t_gold if g not in index})
            warnings.append(f"{test}: {unseen} line(s) with labels never seen in training "
                            f"({', '.join(map(repr, names[:5]))}{', ...' if len(names) > 5 else ''})"
                            f": counted as wrong")
    for part, n in result["zero_feature_lines"].items():
        if n:
            warnings.append(f"{train if part == 'train' else test}: {n} line(s) with no word or "
                            f"piece that has a vector: their features are zeros")
    result["warnings"] = warnings
    return result


def _outer_cv(x, y, n_classes, k, seed, grid) -> dict:
    """SentEval's nested protocol for a set without a test split."""
    outer = stratified_folds(y, k, seed)
    accs, cs = [], []
    for f in range(k):
        fit, held = outer != f, outer == f
        inner_k = min(k, int(fit.sum()))
        c, _ = choose_c(x[fit], y[fit], n_classes, inner_k, seed + 1 + f, grid)
        model = LogReg.fit(x[fit], y[fit], n_classes, c)
        accs.append(float(np.mean(model.predict(x[held]) == y[held])))
        cs.append(c)
    return {"cv": "outer", "cv_accuracy": float(np.mean(accs)), "cv_fold_accuracy": accs,
            "c": None, "c_per_fold": cs, "c_most_chosen": Counter(cs).most_common(1)[0][0],
            "cv_accuracy_per_c": None, "test_accuracy": None}
