"""Train the supervised classifier: read the data once, then run epochs in Numba threads.

Python owns the plan (options, dictionary, which n-gram buckets exist, initial rows, the epoch
loop, validation, progress, Ctrl-C); ``kernels.train_lines`` does the work on groups of
line-aligned chunks of the spooled ids, their lines shuffled together. Threads are plain Python
threads calling a ``nogil`` kernel (Hogwild: shared matrices, no locks), each with its own RNG
stream; the chunk and line orders are seeded, so one thread and a fixed seed give bit-identical
models.
"""
from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, TrainingError
from ..io import scratch_dir
from ..progress import bar, run_workers
from ..wordvec.kernels import all_finite, fill_uniform, seed_state
from . import kernels as K
from .dictionary import build, spool
from .options import ClassifyOptions
from .tables import (LOSS_CODES, Parts, bucket_map, encoded, huffman, make_bags,
                     subword_buckets)

GROUP = 32  # chunks whose lines are shuffled together (about 32 x 2k ids)


def make_scheme(opts: ClassifyOptions):
    if opts.subwords == "char":
        from ..subwords import CharNgrams

        return CharNgrams(opts.minn, opts.maxn, opts.buckets)
    if opts.subwords == "bpe":
        from ..wordvec.bpe_subwords import BpePieces

        return BpePieces.load(opts.tokenizer)
    return None


@dataclass
class Trained:
    parts: Parts
    history: list  # per epoch: {"epoch", "loss", "valid_accuracy"?}


def _warn(msg: str, sink: Callable[[str], None] | None) -> None:
    if sink is not None:
        sink(msg)
    else:
        warnings.warn(msg, stacklevel=3)


def read_training(paths: list[str], tmp: Path, opts: ClassifyOptions, where: str, warn):
    """Spool the labelled lines into ``tmp`` and build the dictionary; skipped lines and a
    single label class are reported to ``warn``."""
    from .data import Reader

    reader = Reader(opts.label_prefix, opts.lowercase)
    with bar(None, desc="reading", unit="line", quiet=opts.quiet) as b:
        sp = spool(paths, tmp, reader, bar=b)
    msg = reader.skipped_message()
    if msg:
        _warn(msg, warn)
    d = build(sp, opts.min_count, opts.min_count_label, where)
    if len(d.labels) == 1:
        _warn(f"{where}: only one label ({d.labels[0]!r}) in the training data: "
              "the model will predict it for every line", warn)
    return sp, d


def fit(paths: list[str], opts: ClassifyOptions, warn: Callable[[str], None] | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> Trained:
    """Train on ``paths`` (``-`` = stdin); ``warn`` receives warning lines (default: warnings.warn),
    ``on_epoch`` each epoch's record (loss, validation accuracy)."""
    opts.validate()
    where = paths[0] if len(paths) == 1 else ", ".join(paths)
    valid = None
    if opts.valid is not None:
        from .data import read_examples

        valid, _ = read_examples([opts.valid], opts.label_prefix, opts.lowercase)
    pretrained = _load_pretrained(opts) if opts.pretrained_vectors else None
    scheme = make_scheme(opts)
    buckets = opts.effective_buckets()
    with scratch_dir() as tmp:
        sp, d = read_training(paths, tmp, opts, where, warn)
        data, offsets = encoded(sp.words)
        hashes = K.word_hashes(data, offsets)
        sptr, sids = subword_buckets(scheme, sp.words)
        V = len(d.words)
        P = scheme.size if scheme is not None and scheme.kind == "bpe" else 0
        bucket_ids = _used_buckets(sp, hashes, sids, scheme, opts.word_ngrams, buckets)
        U = len(bucket_ids)
        brow = bucket_map(buckets, bucket_ids, V + P)
        ptr, bag = make_bags(d.word_remap.astype(np.int64), sptr, sids, scheme, brow, V)
        maxbag = max(int(np.diff(ptr).max()), 1)
        win = np.empty((V + P + U, opts.dim), np.float32)
        fill_uniform(win, opts.seed, 0, 1.0 / opts.dim)  # fastText: U(±1/dim); output rows 0
        if pretrained is not None:
            _copy_pretrained(pretrained, d.words, win)
        wout = np.zeros((len(d.labels), opts.dim), np.float32)
        settings = dict(opts.settings(), tokens=sp.tokens, lines=sp.lines)
        parts = Parts(settings, d.words, d.word_counts, d.labels, d.label_counts, win, wout,
                      bucket_ids, scheme, sp.style, opts.lowercase)
        history = _run_epochs(sp, d, ptr, bag, hashes, brow, maxbag, parts, opts, valid, on_epoch)
    if not (all_finite(win) and all_finite(wout)):
        raise TrainingError(_diverged(opts))
    return Trained(parts, history)


def _used_buckets(sp, hashes, sids, scheme, ngrams: int, buckets: int) -> np.ndarray:
    """Sorted ids of the buckets training hashes into: every word's char n-grams and every
    line's word n-grams. Only these rows are stored (see ``model``)."""
    if buckets == 0:
        return np.zeros(0, np.int32)
    used = np.zeros(buckets, np.bool_)
    if scheme is not None and scheme.kind == "char":
        used[sids] = True
    if ngrams > 1:
        with open(sp.path, "rb") as f:
            while block := f.read(1 << 24):
                a = np.frombuffer(block, np.int32)
                # A read may cut a line: mark up to the last line end, re-read the rest.
                cut = int(np.flatnonzero(a == -1)[-1]) + 1
                K.mark_ngrams(a[:cut], hashes, ngrams, buckets, used)
                f.seek(f.tell() - (len(a) - cut) * 4)
    return np.flatnonzero(used).astype(np.int32)


def _diverged(opts, where: str = "") -> str:
    return (f"training diverged (NaN/inf{where}) with --lr {opts.lr:g}; "
            f"try a smaller --lr, e.g. {opts.lr / 4:g}")


def _load_pretrained(opts):
    from ..vectors.model import load

    vec = load(opts.pretrained_vectors)
    if vec.dim != opts.dim:
        raise InputError(opts.pretrained_vectors, f"vectors of dimension {vec.dim}, but --dim is "
                                                  f"{opts.dim} (they must be equal)")
    return vec


def _copy_pretrained(vec, words: list[str], win: np.ndarray) -> int:
    """Rows of words the vectors know are copied in (fastText's -pretrainedVectors)."""
    index = vec.index
    rows = [(i, index[w]) for i, w in enumerate(words) if w in index]
    if rows:
        ours, theirs = map(list, zip(*rows))
        win[ours] = np.asarray(vec.vectors, np.float32)[theirs]
    return len(rows)


def epoch_order(seed: int, epoch: int, nchunks: int) -> np.ndarray:
    """The chunks' order in ``epoch``; threads then take GROUP chunks at a time and train on
    their lines in a seeded random order, so data sorted by label is seen well mixed."""
    return np.random.default_rng([seed, epoch]).permutation(nchunks)


def _run_epochs(sp, d, ptr, bag, hashes, brow, maxbag, parts: Parts, opts: ClassifyOptions,
                valid, on_epoch) -> list:
    T = opts.threads
    nchunks = len(sp.chunks) - 1
    total = float(opts.epochs) * sp.tokens
    loss = LOSS_CODES[opts.loss]
    if loss == 1:
        from ..wordvec.vocab import negative_table

        negtab = negative_table(d.label_counts, power=0.5)  # fastText: counts ** 0.5 for labels
    else:
        negtab = np.zeros(1, np.int64)
    if loss == 2:
        hs_ptr, hs_node, hs_code = huffman(d.label_counts)
    else:
        hs_ptr, hs_node = np.zeros(1, np.int64), np.zeros(0, np.int64)
        hs_code = np.zeros(0, np.int8)
    table = K.sigmoid_table()
    progress = np.zeros(T, np.int64)
    losses = np.zeros((T, 2), np.float64)
    stop = np.zeros(1, np.int32)
    rng = np.array([seed_state(opts.seed, t + 1) for t in range(T)], dtype=np.uint64)
    label_remap = d.label_remap.astype(np.int64)
    history = []
    state = {"status": K.OK, "error": None}
    lock = threading.Lock()
    if valid is not None:
        from .model import Classifier  # a predictor over the matrices being trained

        predictor = Classifier(parts)

    def worker(tid: int, epoch: int, order: np.ndarray, nxt: list) -> None:
        try:
            fd = os.open(sp.path, os.O_RDONLY)
        except OSError as e:
            state["error"] = e
            stop[0] = 1
            return
        try:
            while not stop[0]:
                with lock:
                    j = nxt[0]
                    nxt[0] += 1
                if j * GROUP >= nchunks:
                    return
                ids = np.concatenate([sp.read_chunk(fd, int(c))
                                      for c in order[j * GROUP:(j + 1) * GROUP]])
                starts = np.concatenate([[0], np.flatnonzero(ids == -1)[:-1] + 1])
                starts = np.random.default_rng([opts.seed, epoch, j]).permutation(starts)
                st = K.train_lines(ids, starts, label_remap, ptr, bag, hashes, opts.word_ngrams,
                                   parts.settings["buckets"], brow, parts.input, parts.output,
                                   loss, opts.neg, negtab, hs_ptr, hs_node, hs_code, table,
                                   opts.lr, total, progress, tid, rng, losses, stop,
                                   sp.longest, maxbag)
                if st == K.DIVERGED:
                    state["status"] = st
                    stop[0] = 1
        except BaseException as e:
            state["error"] = e
            stop[0] = 1
        finally:
            os.close(fd)

    with bar(total, desc=f"training {opts.loss}", unit="tok", quiet=opts.quiet) as b:
        shown = 0
        last = np.zeros(2)
        for epoch in range(opts.epochs):
            order = epoch_order(opts.seed, epoch, nchunks)
            nxt = [0]
            workers = [threading.Thread(target=worker, args=(t, epoch, order, nxt), daemon=True)
                       for t in range(T)]
            def tick():
                nonlocal shown
                done = int(progress.sum())
                b.update(done - shown)
                shown = done

            run_workers(workers, stop, tick)
            if state["error"] is not None:
                raise state["error"]
            if state["status"] == K.DIVERGED:
                raise TrainingError(_diverged(opts, f" in epoch {epoch + 1}"))
            tot = losses.sum(axis=0)
            seen = tot[1] - last[1]
            rec = {"epoch": epoch + 1, "loss": float((tot[0] - last[0]) / seen) if seen else None}
            last = tot
            if valid is not None:
                from .metrics import evaluate

                rec["valid_accuracy"] = evaluate(predictor, valid)["accuracy"]
            history.append(rec)
            b.set_postfix_str(f"loss={rec['loss'] or 0:.4f}", refresh=False)
            if on_epoch is not None:
                if hasattr(b, "clear"):
                    b.clear()  # so the epoch's line is not written over the bar
                on_epoch(rec)
    return history

