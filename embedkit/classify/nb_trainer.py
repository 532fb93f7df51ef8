"""Train ``nb.NBClassifier``: read the labelled lines once, hold their features as one CSR, fit
each one-vs-rest problem with L-BFGS (``logreg.lbfgs``) to convergence.

The training set is held in memory as CSR feature ids per line (int64 pointers, int32 columns):
O(corpus), unlike the fastText-style trainer, which streams its spool every epoch; acceptable
for a supervised train set, and what a full-batch, deterministic optimiser needs. Only n-gram
buckets that training lines hash to get a column. The fit is exact and has no randomness:
``--seed`` is recorded only, and ``--threads`` runs separate one-vs-rest problems at once, so the
model file is the same for any thread count.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ..encoder.threads import one_blas_thread
from ..errors import InputError, TrainingError
from ..io import scratch_dir
from ..progress import bar, run_workers
from . import nb_kernels as NK
from .nb import NBClassifier, outputs
from .options import ClassifyOptions

TOL = 1e-6  # max |gradient| of objective / (C n) at which L-BFGS stops
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)  # --l2 auto: the C values cross-validated
FOLDS = 5


class _Stopped(Exception):
    pass


def fit(paths: list[str], opts: ClassifyOptions, warn: Callable[[str], None] | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> NBClassifier:
    """Train on ``paths`` (``-`` = stdin); ``warn`` receives warning lines, ``on_epoch`` the one
    record of the fit (objective, L-BFGS iterations, validation accuracy)."""
    from .data import read_examples
    from .trainer import read_training

    opts.validate()
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    valid = None
    if opts.valid is not None:
        valid, _ = read_examples([opts.valid], opts.label_prefix, opts.lowercase)
    with scratch_dir() as tmp:
        sp, d = read_training(paths, tmp, opts, where, warn)
        ids = np.fromfile(sp.path, np.int32)
        if sp.handle is not None:
            sp.handle.close()
    words, word_col = _without_eos(d)
    V = len(words)
    buckets = opts.effective_buckets()
    ptr, cols, line_labels, bucket_ids = _design(ids, sp.words, word_col, d.label_remap,
                                                 opts.word_ngrams, buckets, V)
    del ids
    n = len(ptr) - 1
    if n == 0:
        raise InputError(where, "no line carries a label kept by --min-count-label")
    L = len(d.labels)
    classes = [1] if outputs(L, opts.loss) == 1 and L == 2 else list(range(L))
    F = V + len(bucket_ids)
    if opts.l2 == "auto":
        c, cv = _choose_l2(ptr, cols, line_labels, classes, F, opts)
    else:
        c, cv = float(opts.l2), None
    solved = _solve_all(ptr, cols, line_labels, classes, F, opts.threads, c, opts.quiet)
    ratio = np.stack([r for r, _, _, _ in solved], axis=1).astype(np.float32)
    weight = np.stack([w for _, w, _, _ in solved], axis=1).astype(np.float32)
    bias = np.array([b for _, _, b, _ in solved], np.float64)
    counts = np.bincount(line_labels[1], minlength=L).astype(np.int64)
    settings = {"model": "nb", "word_ngrams": opts.word_ngrams, "buckets": buckets,
                "min_count": opts.min_count, "min_count_label": opts.min_count_label,
                "loss": opts.loss, "l2": c, "label_prefix": opts.label_prefix,
                "lowercase": opts.lowercase, "seed": opts.seed, "lines": n,
                "tokens": sp.tokens, "features": int(ratio.shape[0]),
                "iterations": int(sum(it for *_, it in solved))}
    if cv is not None:
        settings["l2_cv"] = cv
    model = NBClassifier(settings, words, d.labels, counts, bucket_ids, ratio, weight, bias,
                         sp.style, opts.lowercase)
    rec = {"epoch": 1, "loss": _mean_loss(model, ptr, cols, line_labels, classes),
           "iterations": settings["iterations"]}
    if valid is not None:
        from .metrics import evaluate

        rec["valid_accuracy"] = evaluate(model, valid)["accuracy"]
    model.history = [rec]
    if on_epoch is not None:
        on_epoch(rec)
    return model


def line_features(names: list[str], line_ptr: np.ndarray, local: np.ndarray,
                  word_col: np.ndarray, ngrams: int, buckets: int, V: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(ptr, raw ids)`` of lines whose words are ``local`` ids into ``names``
    (``word_col``: each one's column or -1). Raw id: a word's column, or V + n-gram bucket."""
    from .kernels import word_hashes
    from .tables import encoded

    hashes = word_hashes(*encoded(names))
    ptr = np.empty(len(line_ptr), np.int64)
    m = np.diff(line_ptr)  # a line of m words has at most this many words and n-grams:
    most = np.where(m >= ngrams, m * ngrams - ngrams * (ngrams - 1) // 2, m * (m + 1) // 2)
    out = np.empty(max(int(most.sum()), 1), np.int64)
    nnz = NK.raw_features(line_ptr, local, word_col, hashes, ngrams, buckets, V, ptr, out)
    return ptr, out[:nnz]


def _without_eos(d) -> tuple[list[str], np.ndarray]:
    """The kept words minus fastText's ``</s>`` (on every line, so never a feature), and the
    provisional word id -> column map (int64, -1: no column)."""
    eos = int(d.word_remap[0])  # the spool's provisional id 0 is </s>
    col = d.word_remap.astype(np.int64)
    if eos < 0:
        return list(d.words), col
    col[col > eos] -= 1
    col[0] = -1
    return d.words[:eos] + d.words[eos + 1:], col


def _design(ids: np.ndarray, names: list[str], word_col: np.ndarray, label_remap: np.ndarray,
            ngrams: int, buckets: int, V: int):
    """From the spool (``dictionary``: labels ``-(l + 2)``, words, ``</s>`` = 0, ``-1``): the
    CSR ``(ptr, cols int32)`` of the lines with a kept label, their labels as
    ``(line, label)`` arrays, and the sorted stored bucket ids."""
    sep = ids == -1
    line_no = np.cumsum(sep) - sep
    n = int(sep.sum())
    wm = ids > 0
    words = ids[wm].astype(np.int64)
    line_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(line_no[wm], minlength=n), out=line_ptr[1:])
    lm = ids <= -2
    lab = label_remap[-ids[lm].astype(np.int64) - 2].astype(np.int64)
    lline = line_no[lm]
    lab, lline = lab[lab >= 0], lline[lab >= 0]
    del sep, line_no, wm, lm
    ptr, raw = line_features(names, line_ptr, words, word_col, ngrams, buckets, V)
    del words
    keep = np.zeros(n, bool)
    keep[lline] = True
    if not keep.all():
        ptr, raw, (lline, lab) = _take_rows(ptr, raw, (lline, lab), keep)
    grams = raw >= V
    bucket_ids = np.unique(raw[grams] - V).astype(np.int32)
    raw[grams] = V + np.searchsorted(bucket_ids, raw[grams] - V)
    return ptr, raw.astype(np.int32), (lline, lab), bucket_ids


def _take_rows(ptr, idx, line_labels, keep):
    """The lines where ``keep`` is True: their CSR and their ``(line, label)`` pairs renumbered."""
    lens = np.diff(ptr)
    out = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(lens[keep], out=out[1:])
    lline, lab = line_labels
    mine = keep[lline]
    return out, idx[np.repeat(keep, lens)], ((np.cumsum(keep) - 1)[lline[mine]], lab[mine])


def _choose_l2(ptr, cols, line_labels, classes, F, opts) -> tuple[float, dict]:
    """--l2 auto: the C of ``L2_GRID`` with the best mean top-1 accuracy over FOLDS folds (lines
    dealt to folds by a permutation seeded with --seed; ratios and weights from the other folds
    only; ties go to the smaller C), and the table behind the choice."""
    n = len(ptr) - 1
    if len(classes) == 1 and classes[0] == 0 or n < FOLDS:  # one label, or too few lines
        return 1.0, {"grid": list(L2_GRID), "accuracy": None}
    fold = np.random.default_rng(opts.seed).permutation(n) % FOLDS
    lline, lab = line_labels
    acc = np.zeros(len(L2_GRID))
    with bar(FOLDS * len(L2_GRID), desc="choosing --l2", unit="fit", quiet=opts.quiet) as b:
        for f in range(FOLDS):
            tptr, tcols, tlabels = _take_rows(ptr, cols, line_labels, fold != f)
            vptr, vcols, (vline, vlab) = _take_rows(ptr, cols, line_labels, fold == f)
            gold = np.zeros((len(vptr) - 1, max(classes) + 1), bool)
            gold[vline, vlab] = True
            for g, c in enumerate(L2_GRID):
                solved = _solve_all(tptr, tcols, tlabels, classes, F, opts.threads, c, True)
                v = np.stack([r * w for r, w, _, _ in solved], axis=1)
                z = np.empty((len(vptr) - 1, len(classes)))
                NK.scores(vptr, vcols, v, np.array([s[2] for s in solved]), z)
                top = ((z[:, 0] > 0).astype(np.int64) if classes == [1]
                       else np.argmax(z, axis=1))
                acc[g] += gold[np.arange(len(top)), top].mean() / FOLDS
                b.update(1)
    best = int(np.flatnonzero(acc >= acc.max() - 1e-12)[0])
    return L2_GRID[best], {"grid": list(L2_GRID), "accuracy": acc.tolist()}


def _solve_all(ptr, cols, line_labels, classes, F, threads: int, c: float, quiet: bool):
    """``(ratio, weight, bias, iterations)`` of each class's problem at C = ``c``, in class
    order; threads take whole problems, so results do not depend on their number."""
    n = len(ptr) - 1
    total = np.zeros(F)
    NK.column_counts(ptr, cols, np.ones(n, np.int8), total)
    results: list = [None] * len(classes)
    stop = np.zeros(1, np.int32)
    lock = threading.Lock()
    nxt = [0]
    errors: list = []

    def solve(j: int):
        y = np.zeros(n)
        lline, lab = line_labels
        y[lline[lab == classes[j]]] = 1.0
        results[j] = _solve(ptr, cols, y, total, c, stop)

    def worker():
        try:
            while not stop[0]:
                with lock:
                    j = nxt[0]
                    nxt[0] += 1
                if j >= len(classes):
                    return
                solve(j)
                b.update(1)
        except _Stopped:
            return
        except BaseException as e:
            errors.append(e)
            stop[0] = 1

    T = min(threads, len(classes))
    with one_blas_thread(), bar(len(classes), desc="fitting nb", unit="problem",
                                 quiet=quiet) as b:
        if T == 1:
            for j in range(len(classes)):
                solve(j)
                b.update(1)
        else:
            run_workers([threading.Thread(target=worker, daemon=True) for _ in range(T)],
                        stop, lambda: None)
    if errors:
        raise errors[0]
    return results


def _solve(ptr, cols, y, total, c: float, stop):
    """One problem: NB ratio r, then min_w,b  sum_i logloss(y_i, b + x_i . (r * w)) +
    ||w||^2 / (2 C), scaled by 1 / (C n) (as ``logreg``)."""
    from .logreg import lbfgs

    n, F = len(y), len(total)
    pos = np.zeros(F)
    NK.column_counts(ptr, cols, y, pos)
    p, q = 1.0 + pos, 1.0 + (total - pos)
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    npos = float(y.sum())
    if npos == 0 or npos == n:  # one-sided problem: no optimum; the smoothed prior instead
        return r, np.zeros(F), float(np.log((npos + 1) / (n - npos + 1))), 0
    lam = 1.0 / (c * n)
    resid, colsum = np.empty(n), np.empty(F)

    def fg(theta):
        if stop[0]:
            raise _Stopped
        w = theta[:F]
        loss = NK.logistic(ptr, cols, r * w, theta[F], y, resid, colsum)
        g = np.empty(F + 1)
        np.multiply(r, colsum, out=g[:F])
        g[:F] /= n
        g[:F] += lam * w
        g[F] = resid.sum() / n
        return loss / n + 0.5 * lam * float(w @ w), g

    try:
        theta, _, iters = lbfgs(fg, np.zeros(F + 1), TOL)
    except TrainingError:
        raise TrainingError("nb: logistic regression diverged (NaN/inf in the objective)") from None
    return r, theta[:F], float(theta[F]), iters


def _mean_loss(model: NBClassifier, ptr, cols, line_labels, classes) -> float:
    """Mean training log loss per line and problem, from the stored (float32) weights."""
    n = len(ptr) - 1
    resid, colsum = np.empty(n), np.empty(model._v.shape[0])
    lline, lab = line_labels
    total = 0.0
    for k, c in enumerate(classes):
        y = np.zeros(n)
        y[lline[lab == c]] = 1.0
        total += NK.logistic(ptr, cols, np.ascontiguousarray(model._v[:, k]), model.bias[k], y,
                             resid, colsum) / n
    return total / len(classes)
