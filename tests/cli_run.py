"""The CLI run in-process from tests (exit code, stdout, stderr), the one-line error every bad
input must give, and a real Ctrl-C sent to a child process at a chosen moment."""
from __future__ import annotations

import signal
import time

import pytest

from embedkit.cli import main


def run(args, capsys):
    """``embedkit ARGS`` (each turned into a string): ``(exit code, stdout, stderr)``."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def main_ok(args) -> bool:
    """Whether ``embedkit ARGS`` succeeds (returns, or exits 0)."""
    try:
        main(args)
    except SystemExit as e:
        return e.code == 0
    return True


def one_error(code, err) -> str:
    """Exit code 2 and exactly one line on stderr (progress bars aside), an ``embedkit: error:``."""
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip() and "\r" not in ln]
    assert len(lines) == 1 and lines[0].startswith("embedkit: error: "), err
    return lines[0]


def interrupt_after(p, path) -> bytes:
    """Wait until ``path`` exists (or the child ``p`` has ended; at most 2 minutes), let it run a
    second more, send SIGINT and return its stderr once it has exited."""
    for _ in range(1200):
        if path.exists() or p.poll() is not None:
            break
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    return p.communicate(timeout=120)[1]
