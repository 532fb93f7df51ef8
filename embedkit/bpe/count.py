"""Word counting for BPE learning: stream the corpus in blocks, pre-tokenize in worker processes.

Pre-tokenization (the GPT-2 regex) is most of the learning time and is per-block independent, so
``threads`` forked processes each turn a block into a ``Counter`` and the parent adds them up.
Memory is bounded by a few blocks plus the number of distinct words, never by the corpus size.
The result does not depend on ``threads``: counts are exact and merges ignore word order.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from typing import Iterator

from ..corpus import Block, check_no_nul, decode, iter_blocks
from ..errors import UsageError
from .parallel import fork_map
from .pretokenize import GPT2_BLOCK_PATTERN, GPT2_PATTERN, WHITESPACE, split_words

JOB_BYTES = 1 << 20


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
        for path in ([corpus] if isinstance(corpus, (str, os.PathLike)) else corpus):
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
    job, byte_level, lowercase = task
    if isinstance(job, Block):
        check_no_nul(job)
        texts = [decode(job, "surrogateescape" if byte_level else "strict")]
        pattern = GPT2_BLOCK_PATTERN if byte_level else WHITESPACE
        size = len(job.data)
    else:
        texts = job
        pattern = GPT2_PATTERN if byte_level else WHITESPACE
        size = sum(map(len, job))
    if lowercase:
        texts = [t.lower() for t in texts]
    return Counter(itertools.chain.from_iterable(split_words(t, pattern) for t in texts)), size


def count_words(corpus, *, byte_level: bool = True, lowercase: bool = False, threads: int = 1,
                quiet: bool = True, meanwhile=None) -> Counter:
    """Count pre-tokenized words over files (or ``-``) or an iterable of str lines.

    ``meanwhile``: a function run in a thread of this (otherwise idle) process while workers
    count, e.g. loading the merge kernel, so that start-up cost is hidden.
    """
    from ..progress import bar

    paths = is_paths(corpus)
    total = None
    if paths:
        names = [corpus] if isinstance(corpus, (str, os.PathLike)) else corpus
        sizes = [os.path.getsize(p) if os.fspath(p) != "-" and os.path.isfile(p) else None
                 for p in names]
        total = None if None in sizes else sum(sizes)
    counts: Counter = Counter()
    tasks = ((job, byte_level, lowercase) for job in _jobs(corpus, paths))
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
