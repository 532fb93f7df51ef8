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
from .pretokenize import (GPT2_BLOCK_JOINED_PATTERN, GPT2_JOINED_PATTERN, GPT2_PATTERN, LINE_SEP,
                          compiled, split_words)

JOB_BYTES = 1 << 22


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
        text = decode(job, "surrogateescape" if byte_level else "strict")
        if lowercase:
            text = text.lower()
        if byte_level:
            return count_block(text), len(job.data)
        return Counter(text.split()), len(job.data)
    texts = [t.lower() for t in job] if lowercase else job
    size = sum(map(len, job))
    if not byte_level:
        return Counter(itertools.chain.from_iterable(t.split() for t in texts)), size
    joined = LINE_SEP.join(texts)
    if joined.count(LINE_SEP) == len(texts) - 1:  # one regex call; each text split on its own
        words = Counter(split_words(joined, GPT2_JOINED_PATTERN))
        words.pop(LINE_SEP, None)
        return words, size
    return Counter(itertools.chain.from_iterable(split_words(t, GPT2_PATTERN) for t in texts)), size


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


def count_block(text: str) -> Counter:
    """``Counter(GPT-2 block-pattern words of text)``, about twice as fast as running the regex
    over all of it: the text is split at single spaces (C speed), and each distinct piece is
    pre-tokenized once — with the space before it, which the regex attaches to the next word.

    A piece's words depend on its neighbours only when a whitespace run crosses a separating
    space (whitespace, or the text's end, on both sides of it, as in ``"a   b"``); such pieces
    are joined back together first. The text must not contain NUL (the joined regex's separator).
    """
    import regex

    pieces = text.split(" ")
    groups = _joined_groups(text, regex)
    counts = Counter(pieces)
    units: Counter = Counter()  # (text, preceded by a space) → count
    for a, b in groups:
        for k in range(a, b + 1):
            counts[pieces[k]] -= 1
        units[" ".join(pieces[a:b + 1]), a > 0] += 1
    if not groups or groups[0][0] != 0:
        counts[pieces[0]] -= 1
        units[pieces[0], False] += 1
    items = [(" " + p, c) for p, c in counts.items() if c > 0]
    items.extend(((" " + t) if spaced else t, c) for (t, spaced), c in units.items())
    words = compiled(GPT2_BLOCK_JOINED_PATTERN).findall(LINE_SEP.join(t for t, _ in items))
    out: Counter = Counter()
    weights = iter([c for _, c in items])
    c = next(weights, 0)
    for w in words:
        if w == LINE_SEP:
            c = next(weights)
        else:
            out[w] += c
    return out


def _joined_groups(text: str, regex) -> list[tuple[int, int]]:
    """Ranges [a, b] of pieces of ``text.split(' ')`` that must be pre-tokenized together: those
    linked by a separating space with whitespace (or the end of the text) on both sides.

    The interior spaces of one whitespace run link consecutive pieces, so each run is one range
    (work per run, not per character: indented code stays cheap).
    """
    groups: list[tuple[int, int]] = []
    spaces = 0  # spaces in text[:last]
    last = 0
    n = len(text)
    for m in regex.finditer(r"\s{2,}", text):
        start, end = m.span()
        inner_end = end if end == n else end - 1
        k = text.count(" ", start + 1, inner_end)
        if not k:
            continue
        first = text.index(" ", start + 1, inner_end)
        spaces += text.count(" ", last, first)
        last = first
        a, b = spaces, spaces + k  # the piece before the first interior space .. after the last
        if groups and groups[-1][1] >= a:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    return groups
