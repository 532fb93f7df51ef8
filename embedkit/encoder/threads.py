"""Threads for the encoder: the batch is cut into one contiguous chunk per thread and each chunk
runs the whole network on its own thread, with single-threaded OpenBLAS and Numba inside.

Why not let OpenBLAS and Numba thread each operation: the encoder's GEMMs are small ([N, 128] x
[128, 512], or 128 heads of [128, 32] x [32, 128]) and a layer is a dozen of them plus kernels,
so per-operation threading meets a barrier every few hundred microseconds; on a shared 2-core
machine one descheduled thread then stalls the other at every barrier (first benchmark config,
inference: 3-21k tokens/s that way, 68-148k in chunks). Chunks join once per forward or step.

OpenBLAS reads OPENBLAS_NUM_THREADS only when NumPy loads it, so its count is set through its
own C functions, found in NumPy's bundled library; when that library cannot be found, only
Numba's count changes.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from concurrent.futures import ThreadPoolExecutor

from ..errors import UsageError

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")
_BLAS: dict = {}
_POOL: dict = {}


def _openblas(what: str):
    """OpenBLAS's ``*_set_num_threads`` / ``*_get_num_threads`` from NumPy's bundled library."""
    if what in _BLAS:
        return _BLAS[what]
    import numpy as np

    _BLAS[what] = None
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre in _PREFIXES:
            for suf in _SUFFIXES:
                fn = getattr(lib, f"{pre}{what}_num_threads{suf}", None)
                if fn is not None:
                    if what == "set":
                        fn.argtypes = [ctypes.c_int]
                    else:
                        fn.restype = ctypes.c_int
                    _BLAS[what] = fn
                    return fn
    return None


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    setter = _openblas("set")
    if setter is not None:
        setter(threads)


@contextlib.contextmanager
def one_blas_thread():
    """OpenBLAS on one thread inside the block, its previous count back after: for threads that
    each run their own BLAS calls, and for sums that must not depend on the machine's count."""
    setter, getter = _openblas("set"), _openblas("get")
    before = getter() if getter is not None else None
    if setter is not None:
        setter(1)
    try:
        yield
    finally:
        if setter is not None and before is not None:
            setter(before)


def workers() -> int:
    """Chunks a batch is cut into: Numba's thread count on the calling thread (1 in a worker)."""
    import numba

    return numba.get_num_threads()


def _pool(k: int) -> ThreadPoolExecutor:
    if k not in _POOL:
        import numba

        _POOL[k] = ThreadPoolExecutor(k, thread_name_prefix="embedkit-encoder",
                                      initializer=numba.set_num_threads, initargs=(1,))
    return _POOL[k]


def map_chunks(fn, n: int) -> list:
    """[fn(lo, hi) for contiguous slices lo:hi of range(n)], one slice per worker thread.

    With one worker (``--threads 1``) or n < 2 this is just ``[fn(0, n)]`` on the calling thread,
    with the thread counts untouched, so single-threaded runs stay bit-exact.
    """
    k = min(workers(), n)
    if k <= 1:
        return [fn(0, n)]
    bounds = [n * i // k for i in range(k + 1)]
    with one_blas_thread():
        pool = _pool(k)
        futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(k)]
        return [f.result() for f in futures]
