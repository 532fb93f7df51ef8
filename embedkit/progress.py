"""One place that decides how long work reports progress: a tqdm bar on stderr, or nothing."""
from __future__ import annotations

import sys


def bar(total: float | None = None, desc: str = "", unit: str = "it", quiet: bool = False, **kw):
    """A tqdm bar on stderr (``--quiet`` disables it); ``unit_scale`` so rates read as 1.2M words/s."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                unit_scale=True, dynamic_ncols=True, leave=False, **kw)
