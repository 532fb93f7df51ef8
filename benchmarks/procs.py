"""Run a tool as a child process and measure it: wall seconds and the tool's own peak RSS.

Linux's max RSS of a child counts the process it was forked from: Python's ``subprocess`` starts
children with vfork, the child shares its parent's pages until exec, and exec keeps the larger
high-water mark. A benchmark that has loaded vectors, data or tokenizers would then read its own
size as every tool's. So each tool is forked from a small launcher (``python -S``), which waits
for it and writes the tool's max RSS (``wait4``: it and the descendants it waited for) on a pipe.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

LAUNCH = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


class Child:
    """``cmd`` started through the launcher (``proc`` is the launcher's Popen: its pid is the
    root of the tool's process tree); ``finish()`` waits and fills ``wall``, ``rss_mib``,
    ``code``."""

    def __init__(self, cmd: list[str], **popen):
        self._r, w = os.pipe()
        self.start = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCH, str(w), *cmd],
                                     pass_fds=(w,), **popen)
        os.close(w)

    def finish(self):
        """(stdout, stderr) as ``communicate`` gives them."""
        out, err = self.proc.communicate()
        self.wall = time.perf_counter() - self.start
        with os.fdopen(self._r, "rb") as f:
            kib = f.read()
        self.code = self.proc.returncode
        self.rss_mib = int(kib) / 1024 if kib else float("nan")
        return out, err


def run(cmd: list[str], **popen) -> tuple[Child, object, object]:
    """Start ``cmd``, wait; (the finished Child, stdout, stderr)."""
    child = Child(cmd, **popen)
    out, err = child.finish()
    return child, out, err
