"""A Ctrl-C that cannot be lost.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode, wherever that is, and a few
places swallow it:
- a ctypes callback (Numba's LLVM object-cache hooks, while a kernel compiles or loads);
- ``__set_name__`` (which turns it into a RuntimeError);
- a class registration inside an import.

The run then goes on as if nothing had happened. A Hogwild training of 100,000 epochs ignored its
Ctrl-C this way. So the CLI's handler also records the interrupt, the loops that wait for worker
threads or run training steps ask ``check()``, and the CLI reads any error that follows a recorded
interrupt as the interrupt (exit 130).
"""
from __future__ import annotations

import signal
import sys

_pending = False


def _handler(signum, frame):
    global _pending
    _pending = True
    raise KeyboardInterrupt


def _unraisable(args) -> None:
    """Where Python swallows an exception it reports it as 'Exception ignored ...' with a
    traceback; a swallowed Ctrl-C is already recorded, so it is not reported."""
    if not issubclass(args.exc_type, KeyboardInterrupt):
        sys.__unraisablehook__(args)


def install():
    """Take over SIGINT (unless it is ignored, as in a background job) and the report of swallowed
    exceptions, and forget any earlier interrupt; returns a function that puts both back."""
    global _pending
    _pending = False
    previous, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
    sys.unraisablehook = _unraisable

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook

    return restore


def pending() -> bool:
    """Whether a Ctrl-C came since ``install``."""
    return _pending


def check() -> None:
    """Raise the KeyboardInterrupt that a Ctrl-C should have raised, if one came."""
    if _pending:
        raise KeyboardInterrupt
