"""What every command shares: strict JSON output, ``--quiet``/``--json`` options and the one
default for ``--threads``. Imports neither numpy nor numba (``--help`` must stay light).
"""
from __future__ import annotations

import json
import math
import os

import click

MAX_THREADS = 1024  # each BPE thread may be a forked process: a typo must not fork bomb
DEFAULT_THREADS_MAX = 8
THREADS_HELP = "CPU count, max 8"


def default_threads() -> int:
    """The one rule for every command: the CPUs this process may use, at most 8 (``--threads 1
    --seed S`` is the reproducible setting)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, DEFAULT_THREADS_MAX))


def threads_option(help_: str):
    return click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=default_threads,
                        show_default=THREADS_HELP, help=help_)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes on stderr.")


def json_option(help_: str = "Print the result as JSON."):
    return click.option("--json", "as_json", is_flag=True, help=help_)


def _strict(x):
    """NaN and ±inf become null (JSON has no such numbers); numpy scalars become Python ones."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if hasattr(x, "item") and hasattr(x, "dtype"):  # a numpy scalar
        return _strict(x.item())
    if hasattr(x, "tolist"):
        return _strict(x.tolist())
    return x


def dumps(obj) -> str:
    """Strict JSON text (``null`` for NaN/inf, never the ``NaN`` token Python writes by default).

    The common case (all finite, plain Python values) stays in json's C encoder; only a value
    it refuses is walked in Python.
    """
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(_strict(obj), ensure_ascii=False, allow_nan=False)


def echo_json(obj) -> None:
    click.echo(dumps(obj))


SCHEDULER_HELP = ("Count on Dask: local:N (N worker processes here), tcp://HOST:PORT (a running "
                  "scheduler) or sync (in this process). Needs the dask extra. Same result as "
                  "without it.")


def check_inputs(paths) -> None:
    from embedkit.errors import InputError

    for p in paths:
        if p == "-":
            continue
        if not os.path.exists(p):
            raise InputError(p, "no such file")
        if os.path.isdir(p):
            raise InputError(p, "is a folder, expected a file")


def corpus_files(corpus, files_only: str | None) -> list[str]:
    """CORPUS with quoted globs expanded (sorted), checked to exist; ``files_only``: the option
    (--scheduler, --out-dir) that needs files, because workers cannot read this stdin."""
    from embedkit.cluster import expand
    from embedkit.errors import UsageError

    files = expand(corpus)
    if files_only and "-" in files:
        raise UsageError(f"{files_only} reads files, not stdin ('-')")
    check_inputs(files)
    return files
