"""Word counting for BPE learning: stream the corpus in blocks, pre-tokenize in parallel.

Pre-tokenization is most of the learning time and is per-block independent. Byte-level files with
the GPT-2, cl100k or o200k pattern go through a compiled scanner (``scanner.py``,
``scanner_tiktoken.py``) in threads; word mode, other patterns and iterables of lines use
``threads`` forked processes that each turn a block into a ``Counter`` (regex / ``str.split``)
and the parent adds them up.
Memory is bounded by a few blocks plus the number of distinct words, never by the corpus size.
The result does not depend on ``threads``: counts are exact and merges ignore word order.
"""
from __future__ import annotations

import collections
import itertools
import os
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Iterator, NamedTuple

from ..corpus import Block, check_no_nul, decode, iter_blocks
from ..errors import UsageError
from .parallel import fork_map
from .pretokenize import CL100K_PATTERN, GPT2_JOINED_PATTERN, GPT2_PATTERN, LINE_SEP, \
    O200K_PATTERN, split_words

JOB_BYTES = 1 << 22
COMPILED_JOB_BYTES = 1 << 20  # a block in flight costs ~5x its size (str + UTF-32 copy)


# The byte-level patterns a compiled scanner implements (None: GPT-2's); any other runs on regex.
COMPILED_PATTERNS = (None, CL100K_PATTERN, O200K_PATTERN)


def compiled_counter(pattern: str | None):
    """The ``scanner.WordCounter`` class whose kernel splits text exactly as ``pattern`` (one of
    ``COMPILED_PATTERNS``, however the user named it: the names resolve to these strings)."""
    if pattern is None:
        from .scanner import WordCounter

        return WordCounter
    from .scanner_tiktoken import Cl100kCounter, O200kCounter

    return {CL100K_PATTERN: Cl100kCounter, O200K_PATTERN: O200kCounter}[pattern]


def is_paths(corpus) -> bool:
    """A corpus is files when it is a path, or a list of paths (``os.PathLike``, ``'-'``, or a str
    naming an existing file); anything else is an iterable of text lines or documents."""
    if isinstance(corpus, os.PathLike):
        return True
    if isinstance(corpus, str):
        return corpus == "-" or os.path.isfile(corpus)
    if isinstance(corpus, (list, tuple)) and corpus:
        return all(isinstance(p, os.PathLike) or (isinstance(p, str) and "\n" not in p
                   and (p == "-" or os.path.isfile(p))) for p in corpus)
    return False


def _jobs(corpus, paths: bool) -> Iterator[Block | list[str]]:
    if paths:
        for path in _names(corpus):
            yield from iter_blocks(path, block_bytes=JOB_BYTES)
        return
    batch: list[str] = []
    size = 0
    for item in corpus:
        if not isinstance(item, str):
            raise UsageError(f"corpus items must be str lines, got {type(item).__name__}")
        batch.append(item)
        size += len(item)
        if size >= JOB_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _count(_, task):
    """Worker: one job → (Counter of words, bytes read)."""
    job, byte_level, lowercase, pattern = task
    if isinstance(job, Block):  # word mode, or a pattern the compiled scanner does not implement
        check_no_nul(job)
        text = decode(job, "surrogateescape" if pattern else "strict")
        text = text.lower() if lowercase else text
        if pattern:  # line by line, line ending included (as HF trains, and the scanner)
            lines = text.split("\n")
            lines = [t + "\n" for t in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            return Counter(itertools.chain.from_iterable(
                split_words(t, pattern) for t in lines)), len(job.data)
        return Counter(text.split()), len(job.data)
    texts = [t.lower() for t in job] if lowercase else job
    size = sum(map(len, job))
    if not byte_level:
        return Counter(itertools.chain.from_iterable(t.split() for t in texts)), size
    if pattern:
        return Counter(itertools.chain.from_iterable(split_words(t, pattern) for t in texts)), size
    joined = LINE_SEP.join(texts)
    if joined.count(LINE_SEP) == len(texts) - 1:  # one regex call; each text split on its own
        words = Counter(split_words(joined, GPT2_JOINED_PATTERN))
        words.pop(LINE_SEP, None)
        return words, size
    return Counter(itertools.chain.from_iterable(split_words(t, GPT2_PATTERN) for t in texts)), size


def count(corpus, *, byte_level: bool = True, lowercase: bool = False, threads: int = 1,
          quiet: bool = True, meanwhile=None, pattern: str | None = None):
    """Word counts for learning from files (or ``-``) or an iterable of str lines: for byte-level
    files the compiled ``scanner.WordCounter`` (no Python string per word), else a ``Counter``.

    ``meanwhile``: a function run in a thread of this (otherwise idle) process while workers
    count, e.g. loading the merge kernel, so that start-up cost is hidden. ``pattern``: a
    byte-level pre-tokenizer other than GPT-2's: cl100k and o200k have compiled scanners, any
    other runs with ``regex`` in forked processes.
    """
    paths = is_paths(corpus)
    if paths and byte_level and pattern in COMPILED_PATTERNS:
        return count_table(corpus, lowercase=lowercase, threads=threads, quiet=quiet,
                           meanwhile=meanwhile, pattern=pattern)
    return _count_forked(corpus, paths, byte_level, lowercase, threads, quiet, meanwhile, pattern)


def count_words(corpus, **kw) -> Counter:
    """``count`` as a ``Counter`` of words, whatever the input."""
    counts = count(corpus, **kw)
    return counts if isinstance(counts, Counter) else counts.counter()


def _count_forked(corpus, paths: bool, byte_level: bool, lowercase: bool, threads: int,
                  quiet: bool, meanwhile, pattern: str | None = None) -> Counter:
    """Word mode or lines: ``threads`` forked processes count blocks, this one adds them up."""
    from ..progress import bar

    total = _total_bytes(corpus) if paths else None
    counts: Counter = Counter()
    tasks = ((job, byte_level, lowercase, pattern) for job in _jobs(corpus, paths))
    helper = None
    with bar(total, "counting words", "B", quiet) as progress:
        for words, size in fork_map(_count, tasks, threads, ordered=False):
            if helper is None and meanwhile is not None and threads > 1:
                helper = threading.Thread(target=meanwhile, daemon=True)
                helper.start()  # only now: the workers are forked already
            counts.update(words)
            progress.update(size)
    if helper is not None:
        helper.join()
    return counts


def count_table(corpus, *, lowercase: bool = False, threads: int = 1, quiet: bool = True,
                meanwhile=None, pattern: str | None = None):
    """Byte-level words of files (or ``-``) as a ``scanner.WordCounter``: the compiled scanner of
    ``pattern`` (``COMPILED_PATTERNS``) counts blocks in ``threads`` threads (the kernel releases
    the GIL), one table each, while this thread reads and decodes the next blocks; the tables are
    merged at the end."""
    from ..progress import bar

    counter = compiled_counter(pattern)

    helper = threading.Thread(target=meanwhile, daemon=True) if meanwhile else None
    if helper is not None:
        helper.start()
    free: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(threads):
        free.put(counter())

    def scan(text: str) -> None:
        wc = free.get()
        try:
            wc.add(text)
        finally:
            free.put(wc)

    pending: collections.deque = collections.deque()
    with bar(_total_bytes(corpus), "counting words", "B", quiet) as progress, \
            ThreadPoolExecutor(threads) as pool:
        for path in _names(corpus):
            for block in iter_blocks(path, block_bytes=COMPILED_JOB_BYTES):
                check_no_nul(block)
                text = decode(block, "surrogateescape")
                pending.append((pool.submit(scan, text.lower() if lowercase else text),
                                len(block.data)))
                while len(pending) > threads:
                    _done(pending.popleft(), progress)
        while pending:
            _done(pending.popleft(), progress)
    table = free.get()
    for _ in range(threads - 1):
        table.merge(free.get())
    if helper is not None:
        helper.join()
    return table


def _names(corpus) -> list:
    return [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)


def _total_bytes(corpus) -> int | None:
    """Total size of the files, for the progress bar; None when one is stdin or a pipe."""
    sizes = [os.path.getsize(p) if os.fspath(p) != "-" and os.path.isfile(p) else None
             for p in _names(corpus)]
    return None if None in sizes else sum(sizes)


def _done(job, progress) -> None:
    future, size = job
    future.result()
    progress.update(size)


class CountTable(NamedTuple):
    """A ``scanner.WordCounter``'s words and counts as four trimmed arrays: what a shard's count
    costs to send between processes (the counter itself drags its 1 MB character-class table)."""

    whash: object  # numpy arrays (numpy is loaded by the scanner that fills them)
    woff: object
    keys: object
    wcount: object

    @classmethod
    def of(cls, wc) -> "CountTable":
        whash, woff, keys, wcount = wc.table[1:]
        nw = wc.nw
        return cls(whash[:nw].copy(), woff[:nw + 1].copy(), keys[:woff[nw]].copy(),
                   wcount[:nw].copy())

    def counter(self):
        """Back to a ``WordCounter`` (what ``trainer.learn`` takes)."""
        from .scanner import WordCounter

        wc = WordCounter()
        wc.merge(SimpleNamespace(table=(None, *self), nw=len(self.wcount)))
        return wc


def count_shard(path, *, byte_level: bool = True, lowercase: bool = False,
                pattern: str | None = None):
    """One file's word counts by the single-node code on one thread: the map step of a
    distributed count (``embedkit.cluster``). A ``CountTable`` for the compiled scanner, else a
    ``Counter``; both merge exactly (``merge_counts``), so any sharding gives the same total.
    ``cluster.warm_up(pattern)`` loads the scanner's kernels first."""
    from pathlib import Path  # a path, never text: a file this worker cannot see is an error

    counts = count([Path(path)], byte_level=byte_level, lowercase=lowercase, threads=1,
                   quiet=True, pattern=pattern)
    return counts if isinstance(counts, Counter) else CountTable.of(counts)


def merge_counts(a, b):
    """The reduce step: exact sums (int64 tables, Python ints in a ``Counter``); the words of
    ``a`` keep their order, then ``b``'s new words (merges do not depend on word order)."""
    if isinstance(a, Counter):
        a.update(b)
        return a
    wc = a.counter()
    wc.merge(SimpleNamespace(table=(None, *b), nw=len(b.wcount)))
    return CountTable.of(wc)
