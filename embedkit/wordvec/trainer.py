"""Train word vectors: read the corpus once, then run CBOW / skip-gram epochs in Numba threads.

Python owns the plan (options, vocabulary, subword tables, the learning-rate schedule, progress and
Ctrl-C); ``kernels.train_chunk`` does the work on sentence-aligned chunks of the id file. Threads
are plain Python threads calling a ``nogil`` kernel (hogwild: they share the matrices without
locks); each has its own RNG stream. The few rows nearly every step writes (a BPE bag's ``s⟩``, a
frequent word's own row) would bounce between the cores' caches, so with two or more threads
every thread but the first works on private copies of them and merges its changes every few
hundred positions (``hot_rows``, ``thread_plans``, ``kernels._sync_hot``). Each epoch takes the
chunks in a seeded random order; with one thread a fixed seed gives bit-identical vectors.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import TrainingError
from ..io import scratch_dir
from ..progress import bar, figure, run_workers
from ..subwords import EOS
from . import kernels as K
from .args import TrainOptions, check_memory
from .bpe_subwords import BpeBag
from .vocab import (Vocab, build_vocab, keep_thresholds, known_vocab, negative_table,
                    spool_corpus)


@dataclass
class TrainedModel:
    """Everything training produced; ``vectors`` are what ``.vec`` holds (bag means with subwords)."""

    words: list[str]
    vectors: np.ndarray  # [V, D] float32
    counts: np.ndarray  # [V] int64
    input: np.ndarray  # [V, D] the words' own input rows
    output: np.ndarray  # [V, D] negative-sampling output rows
    subword_rows: np.ndarray | None  # [B, D] n-gram buckets / BPE pieces, None without subwords
    scheme: Any  # CharNgrams, BpePieces or None
    settings: dict


def train(corpus, *, model: str = "cbow", dim: int = 100, window: int = 5, negative: int = 5,
          epochs: int = 5, min_count: int = 5, max_vocab: int | None = None, sample: float = 1e-4,
          lr: float = 0.05, threads: int = 1, seed: int = 0, subwords: str = "none", minn: int = 3,
          maxn: int = 6, buckets: int = 2_000_000, tokenizer=None, lowercase: bool = False,
          bpe_bag: str | None = None, bpe_min_len: int | None = None,
          bpe_max_len: int | None = None, quiet: bool = True):
    """Train word vectors on ``corpus`` (paths, ``'-'`` for stdin, or an iterable of str lines).

    Returns an ``embedkit.Vectors`` (``.save_native(path)``, ``.save_vec(path)``, queries).
    """
    opts = TrainOptions(model, dim, window, negative, epochs, min_count, max_vocab, sample, lr,
                        threads, seed, subwords, minn, maxn, buckets,
                        None if tokenizer is None else os.fspath(tokenizer), lowercase,
                        bpe_bag=bpe_bag, bpe_min_len=bpe_min_len, bpe_max_len=bpe_max_len)
    result = fit(corpus, opts, quiet=quiet)
    return as_vectors(result)


def as_vectors(m: TrainedModel):
    """The public model object (``embedkit.Vectors``), which also saves .ekv and .vec."""
    from ..vectors.model import Vectors

    return Vectors.from_arrays(m.words, m.vectors, counts=m.counts, scheme=m.scheme,
                               subword_rows=m.subword_rows, input=m.input, output=m.output,
                               settings=m.settings)


def make_scheme(opts: TrainOptions):
    if opts.subwords == "char":
        from ..subwords import CharNgrams

        return CharNgrams(opts.minn, opts.maxn, opts.buckets)
    if opts.subwords == "bpe":
        from .bpe_subwords import load_scheme

        return load_scheme(opts.tokenizer, *opts.bpe_bag_settings())
    return None


def subword_table(scheme, words: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """CSR bags: word w's input rows are ``ids[ptr[w]:ptr[w+1]]`` (its own row first), each entry
    weighing ``wts`` (empty: all 1); + #subword rows."""
    nw = len(words)
    if scheme is None:
        return np.arange(nw + 1, dtype=np.int64), np.arange(nw, dtype=np.int32), K.UNWEIGHTED, 0
    if scheme.kind == "char":
        # fastText gives its EOS token no n-grams; so does embedkit.subwords (the reference).
        enc = [b"" if w == EOS else ("<" + w + ">").encode("utf-8", "surrogateescape") for w in words]
        offsets = np.zeros(nw + 1, np.int64)
        np.cumsum([len(e) for e in enc], out=offsets[1:])
        data = np.frombuffer(b"".join(enc), dtype=np.uint8)
        ptr, ids = K.fnv1a_ngram_rows(data, offsets, scheme.minn, scheme.maxn, scheme.buckets, nw)
        return ptr, ids, K.UNWEIGHTED, scheme.buckets
    if isinstance(scheme, BpeBag):
        ptr, ids, wts = scheme.table(words, nw, prune=True)
        return ptr, ids, wts, scheme.size
    rows = scheme.rows_many(words)
    ptr = np.zeros(nw + 1, np.int64)
    np.cumsum([len(r) + 1 for r in rows], out=ptr[1:])
    ids = np.empty(ptr[-1], np.int32)
    for w, r in enumerate(rows):
        ids[ptr[w]] = w
        ids[ptr[w] + 1:ptr[w + 1]] = nw + r
    return ptr, ids, K.UNWEIGHTED, scheme.size


HOT_ROWS = 256  # rows a thread keeps private copies of (256 x dim floats per extra thread)


def hot_rows(ptr: np.ndarray, sub: np.ndarray, counts: np.ndarray, keep: np.ndarray, nrows: int,
             threads: int, dim: int) -> np.ndarray:
    """The ``HOT_ROWS`` input rows that training writes most (each bag entry counts its word's
    expected kept occurrences), sorted. Empty with one thread, which has nobody to contend with
    and so stays the plain, reproducible Hogwild loop, and when the other threads' copies of the
    bag entries (``thread_plans``) would add more than a quarter to the input matrix's memory."""
    win_bytes = nrows * dim * 4
    if threads <= 1 or len(sub) == 0 or (threads - 1) * sub.nbytes > win_bytes / 4:
        return K.NO_HOT
    kept = counts.astype(np.float64) * (keep.astype(np.float64) / 4294967296.0)
    writes = np.bincount(sub, weights=np.repeat(kept, np.diff(ptr)), minlength=nrows)
    top = np.argsort(-writes, kind="stable")[:min(HOT_ROWS, nrows)]
    return np.sort(top[writes[top] > 0]).astype(np.int32)


def thread_plans(sub: np.ndarray, hot: np.ndarray, nrows: int,
                 threads: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Each thread's (bag entries, hot rows, first private row) for ``kernels.train_chunk``.
    Thread 0 writes the shared rows; in thread t > 0's entries, a hot row points to its private
    copy, row ``nrows + (t - 1) * len(hot) + slot``. (One thread left on the shared rows is
    enough: they then move between the cores' caches only when another thread merges, and that
    thread needs no copy of ``sub``.)"""
    plans = [(sub, K.NO_HOT, 0)]
    if len(hot) == 0:
        return plans * threads
    slot = np.full(nrows, -1, np.int64)
    slot[hot] = np.arange(len(hot))
    at = slot[sub]
    mine = at >= 0
    for t in range(1, threads):
        first = nrows + (t - 1) * len(hot)
        s = sub.copy()
        s[mine] = (first + at[mine]).astype(np.int32)
        plans.append((s, hot, first))
    return plans


def _corpus_name(corpus) -> str:
    if isinstance(corpus, (str, os.PathLike)):
        return os.fspath(corpus)
    if isinstance(corpus, (list, tuple)) and len(corpus) == 1 and isinstance(corpus[0], (str, os.PathLike)):
        return os.fspath(corpus[0])
    return "corpus"


def _input_size(corpus) -> int | None:
    paths = corpus if isinstance(corpus, (list, tuple)) else [corpus]
    try:
        return sum(os.path.getsize(p) for p in paths)
    except (OSError, TypeError):
        return None


def fit(corpus: Iterable, opts: TrainOptions, quiet: bool = True, counts=None) -> TrainedModel:
    """Train and return every array; the public ``train()`` and the CLI both call this.

    ``counts``: the corpus files' word counts made elsewhere (``cluster.train_counts``, for
    ``train --scheduler``); the vocabulary comes from them and the pass here only spools the ids
    of its words, so memory follows the vocabulary, not the corpus's distinct words. The files
    written are those of the single-node run."""
    opts.validate()
    scheme = make_scheme(opts)
    with scratch_dir() as tmp:
        where = _corpus_name(corpus)
        known = None if counts is None else build_vocab(counts, opts.min_count, opts.max_vocab,
                                                        where)
        with bar(_input_size(corpus), desc="reading", unit="B", quiet=quiet) as b:
            sp = spool_corpus(corpus, tmp, opts.lowercase, bar=b,
                              words=None if known is None else known.words)
        if known is None:
            vocab = build_vocab(sp, opts.min_count, opts.max_vocab, where)
        else:
            vocab, sp.tokens = known_vocab(known), counts.tokens
        nw = len(vocab.words)
        ptr, sub, wts, nsub = subword_table(scheme, vocab.words)
        nrows = nw + nsub
        keep = keep_thresholds(vocab.counts, opts.sample, vocab.train_words)
        hot = hot_rows(ptr, sub, vocab.counts, keep, nrows, opts.threads, opts.dim)
        copies = (opts.threads - 1) * len(hot)
        check_memory(nrows + copies, opts.dim, nw)
        win = np.empty((nrows + copies, opts.dim), np.float32)
        K.fill_uniform(win[:nrows], opts.seed, 0, 1.0 / opts.dim)  # fastText, gensim 4: U(±1/dim)
        wout = np.zeros((nw, opts.dim), np.float32)
        plans = thread_plans(sub, hot, nrows, opts.threads)
        _run_epochs(sp, vocab, ptr, plans, wts, keep, win, wout, opts, quiet)
        del plans
        win = win[:nrows]
    if not (K.all_finite(win) and K.all_finite(wout)):
        raise TrainingError(_diverged_message(opts))
    if scheme is None:
        vectors = win[:nw]
    else:
        vectors = np.empty((nw, opts.dim), np.float32)
        K.bag_means(win, ptr, sub, wts, vectors)
    settings = dict(opts.settings(), tokens=sp.tokens, train_words=vocab.train_words,
                    vocab_size=nw)
    return TrainedModel(vocab.words, vectors, vocab.counts, win[:nw], wout,
                        win[nw:] if scheme is not None else None, scheme, settings)


def _diverged_message(opts: TrainOptions, where: str = "") -> str:
    return (f"training diverged (NaN/inf in the vectors{where}) with --lr {opts.lr:g}; "
            f"try a smaller --lr, e.g. {opts.lr / 4:g}")


def epoch_order(seed: int, epoch: int, nchunks: int) -> np.ndarray:
    """The order in which ``epoch`` visits the chunks: a fresh seeded permutation each epoch, so a
    corpus sorted by source or genre is not learned in file order (see ``vocab.CHUNK_TOKENS``)."""
    return np.random.default_rng([seed, epoch]).permutation(nchunks)


def running_loss(tot: np.ndarray, last: np.ndarray, loss: float) -> tuple[float, np.ndarray]:
    """The mean loss over the targets of the chunks finished since the last figure (``tot`` and
    ``last``: summed [loss, targets]); the previous figure while no chunk has finished."""
    if tot[1] > last[1]:
        return (tot[0] - last[0]) / (tot[1] - last[1]), tot
    return loss, last


def postfix(loss: float, done: int, total: float, elapsed: float, threads: int, lr: float) -> str:
    """The bar's figures: running loss, the linearly decaying learning rate, words/s/thread."""
    rate = done / max(elapsed, 1e-9) / threads
    now = lr * max(1 - done / total, 1e-4)
    return f"loss={figure(loss)} lr={now:.5f} w/s/thread={rate:,.0f}"


def _run_epochs(sp, vocab: Vocab, ptr, plans, wts, keep, win, wout, opts: TrainOptions,
                quiet: bool) -> None:
    T = opts.threads
    nchunks = len(sp.chunks) - 1
    jobs = opts.epochs * nchunks
    total = float(opts.epochs) * vocab.train_words
    negtab = negative_table(vocab.counts)
    sig, logsig = K.sigmoid_tables()
    progress = np.zeros(T, np.int64)
    losses = np.zeros((T, 2), np.float64)
    stop = np.zeros(1, np.int32)
    rng = np.array([K.seed_state(opts.seed, t + 1) for t in range(T)], dtype=np.uint64)
    state = {"next": 0, "status": K.OK, "error": None}
    lock = threading.Lock()
    orders: dict[int, np.ndarray] = {}  # the current epochs' chunk orders

    def chunk_order(epoch: int) -> np.ndarray:
        with lock:
            if epoch not in orders:
                orders.pop(epoch - 2, None)
                orders[epoch] = epoch_order(opts.seed, epoch, nchunks)
            return orders[epoch]

    def worker(tid: int) -> None:
        try:
            fd = os.open(sp.path, os.O_RDONLY)
        except OSError as e:  # after Ctrl-C the temp folder may be gone: nothing to report then
            if not stop[0]:
                state["error"] = e
                stop[0] = 1
            return
        try:
            while not stop[0]:
                with lock:
                    j = state["next"]
                    state["next"] += 1
                if j >= jobs:
                    return
                tokens = sp.read_chunk(fd, chunk_order(j // nchunks)[j % nchunks])
                sub, hot, first = plans[tid]
                st = K.train_chunk(tokens, vocab.remap, keep, ptr, sub, wts, hot, first, win, wout,
                                   negtab, sig, logsig, opts.model == "skipgram", opts.window,
                                   opts.negative, opts.lr, total, progress, tid, rng, losses, stop)
                if st == K.DIVERGED:
                    state["status"] = st
                    stop[0] = 1
        except BaseException as e:  # surfaced in the main thread
            state["error"] = e
            stop[0] = 1
        finally:
            os.close(fd)

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(T)]
    start = time.perf_counter()
    with bar(total, desc=f"training {opts.model}", unit="w", quiet=quiet) as b:
        shown, last, loss = 0, np.zeros(2), float("nan")

        def tick():
            nonlocal shown, last, loss
            done = int(progress.sum())
            b.update(done - shown)
            shown = done
            loss, last = running_loss(losses.sum(axis=0), last, loss)
            b.set_postfix_str(postfix(loss, done, total, time.perf_counter() - start, T, opts.lr),
                              refresh=False)

        run_workers(workers, stop, tick)
    if state["error"] is not None:
        raise state["error"]
    if state["status"] == K.DIVERGED:
        done = progress.sum() / max(total, 1)
        raise TrainingError(_diverged_message(opts, f" after {100 * done:.0f}% of training"))
