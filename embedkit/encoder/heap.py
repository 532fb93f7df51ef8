"""Keep freed activation buffers in the process instead of handing them back to the OS.

A forward pass allocates and frees tens of MB of [N, F] and [B, H, T, T] arrays. glibc serves
blocks above its mmap threshold with fresh mmaps and trims freed heap tops, so every pass
re-faulted its pages: ~10k page faults and a quarter of the CPU time per forward, measured on
the (128, 4, 2, 512, 128, 32) benchmark. Raising both thresholds lets later passes reuse the
same pages; peak memory is unchanged (it is the same working set), it is just not returned
between passes. Not glibc (macOS, musl, Windows): nothing to do.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 << 20   # glibc's upper limit for the mmap threshold on 64-bit
_TRIM = 256 << 20
_done = False


def keep_freed_memory() -> None:
    """Once per process: raise glibc's mmap and trim thresholds (a no-op elsewhere)."""
    global _done
    if _done:
        return
    _done = True
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX)
    mallopt(_M_TRIM_THRESHOLD, _TRIM)
