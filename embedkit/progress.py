"""One place that decides how long work reports progress: a tqdm bar on stderr, or nothing."""
from __future__ import annotations

import math
import sys
from typing import Callable


class _Silent:
    """What ``bar(quiet=True)`` returns: the bar's methods, doing nothing (tqdm is not imported)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: float = 1) -> None:
        return None

    def set_postfix(self, *args, **kw) -> None:
        return None

    def set_postfix_str(self, *args, **kw) -> None:
        return None

    def close(self) -> None:
        return None


def bar(total: float | None = None, desc: str = "", unit: str = "it", quiet: bool = False, **kw):
    """A tqdm bar on stderr (``--quiet`` disables it); ``unit_scale`` so rates read as 1.2M words/s."""
    if quiet:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, unit_scale=True,
                dynamic_ncols=True, leave=False, **kw)


def figure(value: float | None, spec: str = ".4f") -> str:
    """A number for a bar's postfix; ``-`` until there is one (a running mean before its first
    sample is NaN, and ``loss=nan`` would read as divergence)."""
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def run_workers(workers: list, stop, tick: Callable[[], None], every: float = 0.25) -> None:
    """Start the Hogwild ``workers`` (threads) and call ``tick`` about every ``every`` seconds
    until all have ended (it updates the bar). On Ctrl-C, even while threads are starting, set
    ``stop[0] = 1`` (the kernels poll it), wait for every started thread, and re-raise; a
    Ctrl-C that Python swallowed before (``interrupts``) is raised at the next tick."""
    from .interrupts import check

    try:
        for w in workers:
            w.start()
        while alive := [w for w in workers if w.is_alive()]:
            check()
            alive[0].join(every)
            tick()
    except BaseException:
        stop[0] = 1
        for w in workers:
            if w.ident is not None:
                w.join()
        raise
