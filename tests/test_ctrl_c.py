"""A Ctrl-C is never lost (``embedkit.interrupts``): one that Python swallows (here in a ctypes
callback, as Numba's LLVM cache hooks do while a kernel loads) still stops the run, and a Ctrl-C
at any moment of a long ``classify train`` ends it with exit code 130 and no files left."""
from __future__ import annotations

import ctypes
import ctypes.util
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from embedkit import interrupts
from embedkit.progress import run_workers


@pytest.fixture
def installed():
    """``interrupts`` handling SIGINT, as the CLI's ``main`` sets it up; put back afterwards."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    hook = sys.unraisablehook
    restore = interrupts.install()
    assert signal.getsignal(signal.SIGINT) is interrupts._handler and not interrupts.pending()
    yield
    restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sys.unraisablehook is hook
    signal.signal(signal.SIGINT, old)


def swallow_a_ctrl_c_in_a_ctypes_callback() -> None:
    """libc's qsort calls a Python comparator; a Ctrl-C arriving there is 'Exception ignored'."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    cmp_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    fired = []

    def compare(a, b):
        if not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGINT)
        return a[0] - b[0]

    arr = (ctypes.c_int * 4)(3, 1, 2, 0)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), cmp_t(compare))
    assert fired  # and no KeyboardInterrupt came out of qsort: the callback swallowed it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_is_still_pending(installed, capsys):
    swallow_a_ctrl_c_in_a_ctypes_callback()
    assert interrupts.pending()
    assert "Exception ignored" not in capsys.readouterr().err  # no traceback for it
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_run_workers_stops_the_threads_on_a_swallowed_ctrl_c(installed):
    stop = np.zeros(1, np.int32)
    ran = []

    def worker():
        ran.append(1)
        end = time.perf_counter() + 10  # a long kernel polling its stop flag
        while not stop[0] and time.perf_counter() < end:
            time.sleep(0.01)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(2)]
    swallow_a_ctrl_c_in_a_ctypes_callback()
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_workers(workers, stop, lambda: None, every=0.05)
    assert stop[0] == 1 and not any(w.is_alive() for w in workers)
    assert time.perf_counter() - t < 5


def test_install_leaves_an_ignored_sigint_ignored():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore = interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        restore()
    finally:
        signal.signal(signal.SIGINT, old)


def test_the_cli_puts_the_previous_handler_back(tmp_path):
    from cli_run import main_ok

    before, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    assert main_ok(["bpe", "--help"])
    assert signal.getsignal(signal.SIGINT) is before and sys.unraisablehook is hook


@pytest.mark.parametrize("delay", [0.4, 0.7, 1.0, 1.3, 1.6, 2.2])
def test_ctrl_c_at_any_moment_of_a_long_training_exits_130(delay, tmp_path):
    """Early Ctrl-Cs land while Numba imports and loads kernels (where Python swallowed some),
    later ones in Hogwild training."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("this runner ignores SIGINT (a background job): its children would too")
    rng = np.random.default_rng(0)
    train = tmp_path / "t.txt"
    train.write_text("".join(f"__label__{c} " + " ".join(f"{c}{rng.integers(9)}" for _ in range(6))
                             + "\n" for c in rng.choice(list("xyz"), 600)))
    model = tmp_path / "m.ekc"
    p = subprocess.Popen([sys.executable, "-m", "embedkit", "classify", "train", str(train), "-o",
                          str(model), "--epochs", "100000", "--dim", "8", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err.decode()[-2000:]
    assert err.decode().strip() == "embedkit: interrupted"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t.txt"]


def test_other_swallowed_errors_are_still_reported(installed, capsys):
    cb_t = ctypes.CFUNCTYPE(None)

    def fail():
        raise ValueError("other")

    cb_t(fail)()
    assert "ValueError: other" in capsys.readouterr().err and not interrupts.pending()
