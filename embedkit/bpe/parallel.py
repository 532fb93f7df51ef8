"""A forked process pool for the BPE hot paths that are pure Python + regex (counting, encoding).

Threads do not help there (the GIL), so work goes to forked processes. Workers inherit ``state``
(e.g. a tokenizer with its merge table) through fork instead of pickling it per task. Library
errors do not pickle (their constructors take several arguments), so they travel back as data
and are raised again, unchanged, in the parent.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from ..errors import EmbedkitError

_STATE: Any = None


class _Raised:
    def __init__(self, e: EmbedkitError):
        self.cls, self.attrs, self.message = type(e), dict(e.__dict__), str(e)

    def reraise(self):
        e = self.cls.__new__(self.cls)
        Exception.__init__(e, self.message)
        e.__dict__.update(self.attrs)
        raise e


def _ignore_sigint():
    """Ctrl-C is the parent's to handle (exit 130, pool terminated): no worker tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(item):
    func, task = item
    try:
        return func(_STATE, task)
    except EmbedkitError as e:
        return _Raised(e)


def fork_map(func: Callable[[Any, Any], Any], tasks: Iterable, threads: int, state: Any = None,
             ordered: bool = True) -> Iterator:
    """Yield ``func(state, task)`` for each task, in ``threads`` forked processes when > 1.

    ``func`` must be a module-level function. ``tasks`` is consumed lazily (bounded memory).
    """
    global _STATE
    import multiprocessing

    if threads <= 1 or "fork" not in multiprocessing.get_all_start_methods():  # e.g. Windows
        for task in tasks:
            yield func(state, task)
        return

    _STATE = state
    failed: list[Exception] = []

    def items():
        # runs in the pool's feeder thread: an error reading the input must reach the caller
        try:
            for task in tasks:
                yield func, task
        except Exception as e:  # noqa: BLE001 — re-raised below, in the caller's thread
            failed.append(e)

    try:
        with multiprocessing.get_context("fork").Pool(threads, _ignore_sigint) as pool:
            results = pool.imap(_call, items()) if ordered else pool.imap_unordered(_call, items())
            for r in results:
                if isinstance(r, _Raised):
                    r.reraise()
                if failed:
                    break
                yield r
        if failed:
            raise failed[0]
    finally:
        _STATE = None
