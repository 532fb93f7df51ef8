"""Interrupted and failing writes: a process SIGKILLed while writing a ``.ekv``, ``.vec``, TOKDIR
or encoder checkpoint leaves the previous file or nothing, never a partial one; a write that
runs out of space (RLIMIT_FSIZE, SIGXFSZ ignored) is a one-line error, exit 2, no partial file;
a killed ``train`` leaves no corpus spool behind.

The child processes stall *inside* the write (after the first bytes reached the temp file) and
tell the parent, which then kills them: the kill lands mid-write every time, with no timing.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from embedkit.vectors.formats import word2vec_text
from embedkit.vectors.formats.native import save_native
from embedkit.vectors.model import load

WORDS = ["the", "cat", "sat", "dog"]

CHILD = textwrap.dedent("""
    import contextlib, json, pathlib, sys, time
    import numpy as np
    import embedkit.io as eio
    import embedkit.store
    from embedkit.vectors.formats import word2vec_text

    flag, what, target = sys.argv[1:4]

    def stall():
        open(flag, "w").close()
        time.sleep(120)

    class Stalling:
        def __init__(self, f):
            self.f, self.n = f, 0
        def write(self, b):
            r = self.f.write(b)
            self.n += 1
            if self.n == 2:
                self.f.flush()
                stall()
            return r
        def __getattr__(self, name):
            return getattr(self.f, name)

    real = eio.atomic_write

    @contextlib.contextmanager
    def stalling(path, *a, **k):
        with real(path, *a, **k) as f:
            yield Stalling(f)

    embedkit.store.atomic_write = stalling
    word2vec_text.atomic_write = stalling
    words = ["a", "b", "c", "d", "e"]
    v = np.full((5, 3), 7.0, np.float32)
    if what == "ekv":
        from embedkit.vectors.formats.native import save_native
        save_native(target, words, v)
    elif what == "vec":
        word2vec_text.write(target, words, v)
    elif what == "checkpoint":
        from embedkit.encoder import checkpoint
        checkpoint.save(pathlib.Path(target).parent, {}, {"x": v}, {}, {})
    elif what == "tokdir":
        from embedkit import BPETokenizer
        tok = BPETokenizer.load(sys.argv[4])
        real_write = pathlib.Path.write_text
        def write_text(self, *a, **k):
            r = real_write(self, *a, **k)
            stall()
            return r
        pathlib.Path.write_text = write_text
        tok.save(target)
""")


def _kill_mid_write(tmp_path, what: str, target: Path, *extra) -> None:
    flag = tmp_path / f"{what}.stalled"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(flag), what, str(target), *extra])
    try:
        for _ in range(3000):
            if flag.exists() or child.poll() is not None:
                break
            time.sleep(0.01)
        assert flag.exists(), f"the child never reached the write (exit {child.poll()})"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _temps(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize("what,name", [("ekv", "m.ekv"), ("vec", "m.vec"),
                                       ("checkpoint", "encoder.ekm")])
def test_sigkill_mid_write_leaves_the_previous_file(tmp_path, what, name):
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    _kill_mid_write(tmp_path, what, target)  # no previous file: nothing appears
    assert _visible(out) == []
    if what == "vec":
        word2vec_text.write(target, WORDS, np.eye(4, dtype=np.float32))
    else:
        save_native(target, WORDS, np.eye(4, dtype=np.float32))
    before = target.read_bytes()
    _kill_mid_write(tmp_path, what, target)
    assert target.read_bytes() == before and _visible(out) == [name]
    # A temp survives only where the filesystem has no nameless temp files; it is a hidden
    # .NAME.PID.*.tmp of a dead process, and the next write of NAME removes it.
    for t in _temps(out, name):
        assert t.endswith(".tmp") and t.split(".")[3].isdigit()
    word2vec_text.write(target, WORDS, np.eye(4, dtype=np.float32))
    assert _temps(out, name) == []


def test_stale_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    import embedkit.io as eio

    monkeypatch.setattr(eio, "_nameless_works", lambda parent: False)  # the named-temp path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.vec.{dead}.abc123.tmp"
    live = tmp_path / f".m.vec.{os.getppid()}.def456.tmp"
    other = tmp_path / f".n.vec.{dead}.abc123.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    word2vec_text.write(tmp_path / "m.vec", WORDS, np.eye(4, dtype=np.float32))
    assert not stale.exists() and live.exists() and other.exists()
    assert _temps(tmp_path, "m.vec") == [live.name]
    assert load(tmp_path / "m.vec").words == WORDS


def test_sigkill_while_writing_a_tokdir_leaves_the_previous_one(tmp_path):
    from embedkit import BPETokenizer
    from embedkit.bpe.files import settings_for
    from embedkit.bpe.pretokenize import byte_alphabet

    src = tmp_path / "src"
    src.mkdir()
    tokens = byte_alphabet() + ["th"]
    (src / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (src / "merges.txt").write_text("#version: 0.2\nt h\n")
    (src / "embedkit.json").write_text(json.dumps(settings_for(True)))
    tok = tmp_path / "tok"
    _kill_mid_write(tmp_path, "tokdir", tok, str(src))
    assert not tok.exists()
    BPETokenizer.load(src).save(tok)
    (tok / "merges.txt").write_text("#version: 0.2\n")  # the previous TOKDIR: no merges
    before = {p.name: p.read_bytes() for p in tok.iterdir()}
    _kill_mid_write(tmp_path, "tokdir", tok, str(src))
    assert {p.name: p.read_bytes() for p in tok.iterdir()} == before
    assert BPETokenizer.load(tok).encode("th") == [ord("t") - 33, ord("h") - 33]


# ---- out of space -------------------------------------------------------------------------------

def _limited(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _embedkit_limited(args, limit: int, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True,
                          text=True, preexec_fn=_limited(limit), env=env, cwd=cwd, timeout=300)


@pytest.fixture
def model_files(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    v = rng.standard_normal((300, 16)).astype(np.float32)
    word2vec_text.write(tmp_path / "in.vec", words, v)
    save_native(tmp_path / "in.ekv", words, v)
    return tmp_path


@pytest.mark.parametrize("src,dst", [("in.vec", "out.ekv"), ("in.ekv", "out.bin")])
def test_full_disk_is_one_line_exit_2_and_no_partial_file(model_files, src, dst):
    run = _embedkit_limited(["convert", src, dst], 8192, model_files)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"embedkit: error: {dst}: cannot write")
    assert "File too large" in lines[0]
    assert not (model_files / dst).exists() and _temps(model_files, dst) == []
    # with room, the same command works
    ok = _embedkit_limited(["convert", src, dst], 1 << 30, model_files)
    assert ok.returncode == 0, ok.stderr
    assert load(model_files / dst).words == load(model_files / src).words


def test_full_disk_while_writing_a_tokdir(tmp_path):
    child = textwrap.dedent("""
        import sys
        from embedkit import BPETokenizer
        from embedkit.errors import OutputError
        from embedkit.bpe.pretokenize import byte_alphabet
        from embedkit.bpe.files import settings_for
        tok = BPETokenizer(byte_alphabet(), [], settings_for(True))
        try:
            tok.save(sys.argv[1])
        except OutputError as e:
            print(e)
            sys.exit(2)
    """)
    run = subprocess.run([sys.executable, "-c", child, str(tmp_path / "tok")], capture_output=True,
                         text=True, preexec_fn=_limited(1024), timeout=120)
    assert run.returncode == 2, run.stderr
    assert "cannot write: File too large" in run.stdout and run.stdout.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# ---- temp files of training ----------------------------------------------------------------------

def _open_temps(pid: int, folder: Path) -> list[str]:
    out = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_sigkill_during_train_leaves_no_corpus_spool(tmp_path):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see the child's open files")
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(500)])
    corpus = tmp_path / "corpus.txt"
    with open(corpus, "w") as f:
        for _ in range(60):
            f.write("\n".join(" ".join(rng.choice(vocab, 20)) for _ in range(1000)) + "\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    _kill_when_a_temp_is_open([sys.executable, "-m", "embedkit", "train", str(corpus), "-o",
                               str(tmp_path / "m"), "--epochs", "50", "--dim", "50", "-q",
                               "--min-count", "1", "--threads", "1"], tmp,
                              dict(os.environ, TMPDIR=str(tmp)))
    assert _files_under(tmp) == []
    assert not any(p.name.startswith("m.") for p in tmp_path.iterdir())


def _kill_when_a_temp_is_open(cmd, folder: Path, env) -> None:
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = []
        for _ in range(6000):
            seen = _open_temps(child.pid, folder) if folder.exists() else []
            if seen or child.poll() is not None:
                break
            time.sleep(0.005)
        assert seen, f"never saw a temp file open (exit {child.poll()}: {child.stderr.read()})"
        assert _files_under(folder) == []  # open, yet nameless from the start
    finally:
        child.kill()
        child.wait()


def test_sigkill_during_encoder_training_leaves_no_piece_streams(tmp_path):
    """The encoder spools its corpus as pieces inside ENCDIR: nothing is left after a kill (an
    empty staging folder may stay, as the killed run made it)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see the child's open files")
    from embedkit.bpe.files import settings_for
    from embedkit.bpe.pretokenize import byte_alphabet

    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(byte_alphabet())}))
    (tok / "merges.txt").write_text("#version: 0.2\n")
    (tok / "embedkit.json").write_text(json.dumps(settings_for(True)))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat and the dog sat too\n" * 20000)
    enc = tmp_path / "enc"
    _kill_when_a_temp_is_open([sys.executable, "-m", "embedkit", "encoder", "train", str(corpus),
                               "-t", str(tok), "-o", str(enc), "--steps", "100000", "--dim", "8",
                               "--heads", "2", "--layers", "1", "-q"], enc, dict(os.environ))
    assert not enc.exists() or _files_under(enc) == []
