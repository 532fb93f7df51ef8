"""Thread counts for the two pools the encoder uses: Numba's kernels and NumPy's OpenBLAS.

OpenBLAS reads OPENBLAS_NUM_THREADS only when NumPy loads it, so for the Python API (NumPy is
already imported) the count is set through OpenBLAS's own C function, found in NumPy's bundled
library; when that library cannot be found this quietly changes only Numba's count.
"""
from __future__ import annotations

import ctypes
import glob
import os

from ..errors import UsageError

_NAMES = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
          "openblas_set_num_threads64_", "openblas_set_num_threads")


def _openblas_setter():
    import numpy as np

    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _NAMES:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    setter = _openblas_setter()
    if setter is not None:
        setter(threads)
