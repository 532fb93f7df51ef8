import os

import numpy as np
import pytest

from embedkit.errors import InputError, OutputError
from embedkit.io import atomic_dir, atomic_write
from embedkit.store import read_store, write_store


def test_round_trip_memory_mapped(tmp_path):
    p = tmp_path / "m.ekv"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1, -2, 3], dtype=np.int64)
    write_store(p, "vectors", {"words": ["é", "b", "c"]}, {"a": a, "b": b, "empty": np.zeros((0, 4), np.float32)})
    meta, arrays = read_store(p, "vectors")
    assert meta == {"words": ["é", "b", "c"]}
    assert isinstance(arrays["a"], np.memmap) and arrays["a"].dtype == np.float32
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)
    assert arrays["empty"].shape == (0, 4)
    assert all(spec % 64 == 0 for spec in [arrays["a"].offset, arrays["b"].offset])
    _, loaded = read_store(p, mmap=False)
    assert not isinstance(loaded["a"], np.memmap)


def test_big_endian_input_is_stored_little_endian(tmp_path):
    p = tmp_path / "m"
    write_store(p, "k", {}, {"x": np.array([1.5, 2.5], dtype=">f4")})
    assert read_store(p)[1]["x"].dtype.str == "<f4"
    assert read_store(p)[1]["x"].tolist() == [1.5, 2.5]


def test_truncated_wrong_kind_and_foreign_files(tmp_path):
    p = tmp_path / "m"
    write_store(p, "vectors", {}, {"x": np.ones(1000, np.float32)})
    with pytest.raises(InputError, match="expected a 'encoder'"):
        read_store(p, "encoder")
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated"):
        read_store(p)
    q = tmp_path / "foreign"
    q.write_bytes(b"3 4\nhello")
    with pytest.raises(InputError, match="not an embedkit model file"):
        read_store(q)
    with pytest.raises(InputError, match="no such file"):
        read_store(tmp_path / "nope")


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(p, "w") as f:
            f.write("new half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["out.txt"]
    with atomic_write(p, "w") as f:
        f.write("new")
    assert p.read_text() == "new"
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "x") as f:
            pass


def _nameless_temps_work(folder) -> bool:
    """Whether this filesystem makes O_TMPFILE files that can be linked in (probed here, not
    with embedkit's own probe, so a broken probe cannot skip the test)."""
    import os

    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        return False
    try:
        os.link(f"/proc/self/fd/{fd}", folder / "probe", follow_symlinks=True)
        os.unlink(folder / "probe")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def test_atomic_write_has_no_temp_name_while_writing(tmp_path, monkeypatch):
    """With O_TMPFILE the file being written has no name, so SIGKILL can leave nothing behind."""
    import embedkit.io

    if not _nameless_temps_work(tmp_path):
        pytest.skip("no O_TMPFILE here (or linkat from /proc refused): the temp file is named "
                    ".NAME.PID.XXXX.tmp")
    monkeypatch.setattr(embedkit.io, "_NAMELESS", {})  # probe again, in tmp_path
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"x")
        assert list(tmp_path.iterdir()) == []
    assert [(x.name, x.read_bytes()) for x in tmp_path.iterdir()] == [("out.bin", b"x")]


def _link_by_copy(real_link):
    """``os.link`` for a sandbox that refuses linkat from /proc (EXDEV): ``/proc/self/fd/N`` is
    linked by copying that file's bytes and mode into a new name, as linkat would give them."""
    import os

    def link(src, dst, *args, **kw):
        if not str(src).startswith("/proc/self/fd/"):
            return real_link(src, dst, *args, **kw)
        if not kw.get("follow_symlinks", False):  # linkat would link /proc's symlink itself
            raise OSError(18, "Invalid cross-device link")
        fd = int(str(src).rsplit("/", 1)[1])
        st = os.fstat(fd)
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o777)
        try:
            os.write(out, os.pread(fd, st.st_size, 0))
        finally:
            os.close(out)
    return link


def test_the_nameless_temp_path_where_linkat_is_emulated(tmp_path, monkeypatch):
    """The ``O_TMPFILE`` path run even where linkat from /proc is refused: nothing has a name
    while writing, the result appears whole with the umask's mode, an error leaves nothing, and
    the probe's own file is gone."""
    import os

    import embedkit.io

    try:
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600))
    except (AttributeError, OSError):
        pytest.skip("no O_TMPFILE on this filesystem")
    monkeypatch.setattr(embedkit.io.os, "link", _link_by_copy(os.link))
    monkeypatch.setattr(embedkit.io, "_NAMELESS", {})
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.bin") as f:
            f.write(b"abc")
            assert list(tmp_path.iterdir()) == []
            assert embedkit.io._NAMELESS == {os.stat(tmp_path).st_dev: True}
    finally:
        os.umask(old)
    assert [(x.name, x.read_bytes()) for x in tmp_path.iterdir()] == [("out.bin", b"abc")]
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "out.bin", "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert [(x.name, x.read_bytes()) for x in tmp_path.iterdir()] == [("out.bin", b"abc")]
    with atomic_write(tmp_path / "out.bin", "w") as f:
        f.write("new\n")
    assert [(x.name, x.read_bytes()) for x in tmp_path.iterdir()] == [("out.bin", b"new\n")]


def test_a_filesystem_whose_linkat_fails_falls_back_to_named_temps(tmp_path, monkeypatch):
    """The probe sees linkat fail once, remembers it for the device, and every write after it
    uses a named temp that is renamed in (no second probe, no file left by the probe)."""
    import os

    import embedkit.io

    calls = []

    def refused(src, dst, *args, **kw):
        calls.append(str(src))
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(embedkit.io.os, "link", refused)
    monkeypatch.setattr(embedkit.io, "_NAMELESS", {})
    for text in ("a", "b"):
        with atomic_write(tmp_path / "out.txt", "w") as f:
            f.write(text)
            names = [x.name for x in tmp_path.iterdir() if x.name != "out.txt"]
            assert len(names) == 1 and names[0].startswith(f".out.txt.{os.getpid()}.")
    assert embedkit.io._NAMELESS == {os.stat(tmp_path).st_dev: False}
    assert len(calls) <= 1 and (tmp_path / "out.txt").read_text() == "b"
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_appears_whole_and_keeps_other_files(tmp_path):
    d = tmp_path / "tok"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(d, "m") as t:
            (t / "m").write_text("{}")
            raise KeyboardInterrupt
    assert not d.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(d, "m") as t:
        (t / "m").write_text("1")
        (t / "a").write_text("1")
    (d / "mine.txt").write_text("user's")
    with atomic_dir(d, "m") as t:
        (t / "m").write_text("2")
    assert {x.name: x.read_text() for x in d.iterdir()} == {"m": "2", "a": "1", "mine.txt": "user's"}
    assert len(list(tmp_path.iterdir())) == 1
    for name in ("x", "y"):  # a subfolder merges into the one already there
        with atomic_dir(d, "m") as t:
            (t / "sub").mkdir()
            (t / "sub" / name).write_text(name)
    assert sorted(str(x.relative_to(d)) for x in d.rglob("*")) == \
        ["a", "m", "mine.txt", "sub", "sub/x", "sub/y"]
    assert len(list(tmp_path.iterdir())) == 1


def test_a_full_disk_is_one_output_error_and_leaves_no_temps(tmp_path):
    from embedkit.io import atomic_files

    full = OSError(28, "No space left on device")
    with pytest.raises(OutputError, match=r"out\.bin: cannot write: No space left on device$"):
        with atomic_write(tmp_path / "out.bin"):
            raise full
    with pytest.raises(OutputError, match=r"^cannot write \S+a\.vec: No space left on device$"):
        with atomic_files([tmp_path / "a.vec", tmp_path / "a.ekv"]):
            raise full
    long = tmp_path / ("b" * 250)  # its temp's name is too long: the temps made before go too
    with pytest.raises(OutputError, match=r"b{250}: cannot write: File name too long$"):
        with atomic_files([tmp_path / "a.vec", long]):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_stale_folder_that_cannot_be_removed_does_not_stop_the_write(tmp_path, monkeypatch):
    import os

    stale = tmp_path / ".tok.999999999.ab12.tmp"  # a killed run's staging folder (PID gone)
    stale.mkdir()
    real = os.rmdir

    def refuse(path, *args, **kw):  # as for another user's folder
        if "999999999" in os.fspath(path):
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "rmdir", refuse)
    with atomic_dir(tmp_path / "tok", "m") as t:
        (t / "m").write_text("1")
    assert (tmp_path / "tok" / "m").read_text() == "1" and stale.is_dir()


def test_temps_of_a_process_that_cannot_be_checked_are_kept(tmp_path):
    """A stale-temp sweep removes only temps whose PID is gone; a PID it cannot ask about (too
    large, or another user's) might be writing: its temp stays."""
    dead = tmp_path / ".out.bin.999999999.ab12.tmp"
    unknown = tmp_path / f".out.bin.{2 ** 70}.ab12.tmp"
    mine = tmp_path / ".out.bin.notapid.ab12.tmp"
    for t in (dead, unknown, mine):
        t.write_bytes(b"half")
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"x")
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["out.bin", unknown.name, mine.name])


def test_header_that_is_not_a_json_object_is_corrupt(tmp_path):
    import json
    import struct

    head = json.dumps([1, 2]).encode()
    (tmp_path / "x.ekv").write_bytes(struct.pack("<8sIIQ", b"EMBEDKIT", 1, 0, len(head)) + head)
    with pytest.raises(InputError, match="corrupt embedkit file header"):
        read_store(tmp_path / "x.ekv")


def test_check_dir_counts_a_killed_runs_temps_as_ours_not_the_users(tmp_path):
    """A run killed mid-write leaves ``.NAME.PID.X.tmp`` (where O_TMPFILE is refused): the next
    run may write into that folder; a live process's temp or any other file still refuses it."""
    import subprocess
    import sys

    from embedkit.errors import OutputError
    from embedkit.io import check_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "out"
    out.mkdir()
    (out / f".a.txt.ids.{dead}.k2x_9abc.tmp").write_bytes(b"partial")
    check_dir(out, "manifest.json")  # no error
    for name in (f".a.txt.ids.{os.getpid()}.k2x_9abc.tmp", "notes.txt", f".x.{dead}.tmp"):
        (out / name).write_bytes(b"x")
        with pytest.raises(OutputError, match="folder is not empty and was not written by"):
            check_dir(out, "manifest.json")
        (out / name).unlink()


@pytest.mark.parametrize("where", ["file", "files", "dir"])
def test_ctrl_c_just_after_the_temp_is_made_leaves_no_temp(tmp_path, monkeypatch, where):
    """Ctrl-C landing between creating a temp and the writer knowing its name (CI hit it in a
    checkpoint write) is held until the name is known, so the temp is removed."""
    import signal
    import tempfile

    from embedkit import io

    make = tempfile.mkdtemp if where == "dir" else tempfile.mkstemp

    def made_then_interrupted(*a, **k):
        out = make(*a, **k)
        signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(io, "_nameless_works", lambda parent: False)
    monkeypatch.setattr(io.tempfile, "mkdtemp" if where == "dir" else "mkstemp", made_then_interrupted)
    (tmp_path / "keep.txt").write_text("mine")
    # a background job starts with SIGINT ignored; a user's shell gives Python's default handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_write(tmp_path, where)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.txt"]


def _interrupted_write(tmp_path, where):
    from embedkit import io

    with pytest.raises(KeyboardInterrupt):
        if where == "file":
            with atomic_write(tmp_path / "out.bin") as f:
                f.write(b"x")
        elif where == "files":
            with io.atomic_files([tmp_path / "a.vec", tmp_path / "a.ekv"]):
                pass
        else:
            with atomic_dir(tmp_path / "tok", "embedkit.json") as d:
                (d / "embedkit.json").write_text("{}")


def test_a_named_temp_gets_the_umask_mode_and_the_umask_is_left_alone(tmp_path, monkeypatch):
    """Where temps are named (mkstemp makes them 0600) the file still ends with the mode any
    other new file gets, and reading the umask does not change it for the rest of the process."""
    import os

    import embedkit.io

    monkeypatch.setattr(embedkit.io, "_nameless_works", lambda parent: False)
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt", "w") as f:
            f.write("x")
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_what_killed_runs_left_is_swept_by_the_next_write(tmp_path, monkeypatch):
    """A dead PID's temp file, its probe file and its staging folders (beside a new folder and
    inside an existing one) are removed by the next write of the same name; nothing else is."""
    import embedkit.io

    dead = 999999999  # above any pid_max: no such process
    probe = tmp_path / f".embedkit-probe.{dead}.ab12.tmp"
    beside = tmp_path / f".tok.{dead}.ab12.tmp"
    other = tmp_path / f".vec.{dead}.ab12.tmp"
    probe.write_bytes(b"")
    beside.mkdir()
    (beside / "embedkit.json").write_text("half")
    other.mkdir()
    monkeypatch.setattr(embedkit.io, "_NAMELESS", {})
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"x")
    assert not probe.exists() and beside.is_dir()
    with atomic_dir(tmp_path / "tok", "embedkit.json") as d:
        (d / "embedkit.json").write_text("{}")
    assert not beside.exists() and other.is_dir()
    inside = tmp_path / "tok" / f".tok.{dead}.cd34.tmp"
    inside.mkdir()
    (inside / "merges.txt").write_text("half")
    with atomic_dir(tmp_path / "tok", "embedkit.json") as d:
        (d / "embedkit.json").write_text("{}")
    assert sorted(x.name for x in (tmp_path / "tok").iterdir()) == ["embedkit.json"]


def test_atomic_dir_itself_refuses_a_folder_of_other_files(tmp_path):
    """Not only the CLI's early check: the writer refuses a foreign folder and touches nothing."""
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "mine.txt").write_text("user's")
    with pytest.raises(OutputError, match="u"):
        with atomic_dir(tmp_path / "u", "embedkit.json") as d:
            (d / "embedkit.json").write_text("{}")
    assert [(x.name, x.read_text()) for x in (tmp_path / "u").iterdir()] == [("mine.txt", "user's")]


def test_the_staging_folder_is_named_after_the_output(tmp_path):
    """``.NAME.PID.XXXX.tmp``: the name the stale-temp sweep and ``check_dir`` look for."""
    import os

    with atomic_dir(tmp_path / "tok", "embedkit.json") as d:
        assert d.parent == tmp_path and d.name.startswith(f".tok.{os.getpid()}.")
        (d / "embedkit.json").write_text("{}")


def test_a_staging_folder_that_cannot_be_made_is_one_output_error(tmp_path, monkeypatch):
    import embedkit.io

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(embedkit.io.tempfile, "mkdtemp", full)
    with pytest.raises(OutputError, match=r"tok: cannot write: No space left on device$"):
        with atomic_dir(tmp_path / "tok", "embedkit.json"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_probing_a_filesystem_leaves_no_open_descriptor(tmp_path, monkeypatch):
    import os

    import embedkit.io

    monkeypatch.setattr(embedkit.io, "_NAMELESS", {})
    before = len(os.listdir("/proc/self/fd"))
    embedkit.io._nameless_works(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before and list(tmp_path.iterdir()) == []


def test_folders_get_the_umask_mode_and_merged_files_keep_theirs(tmp_path):
    """mkdtemp makes 0700 folders: a new output folder and a new subfolder merged into an
    existing one get the mode any new folder gets; merged files keep the mode they were made
    with; a file cannot replace a folder."""
    import os

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "tok", "m") as d:
            (d / "m").write_text("1")
        assert (tmp_path / "tok").stat().st_mode & 0o777 == 0o755
        with atomic_dir(tmp_path / "tok", "m") as d:
            (d / "sub").mkdir()
            (d / "sub" / "x").write_text("x")
            (d / "m").write_text("2")
        assert (tmp_path / "tok" / "sub").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / "tok" / "m").stat().st_mode & 0o777 == 0o644
        with pytest.raises(OutputError, match=r"sub: is a folder, cannot replace it with a file$"):
            with atomic_dir(tmp_path / "tok", "m") as d:
                (d / "sub").write_text("a file")
    finally:
        os.umask(old)
    assert (tmp_path / "tok" / "sub" / "x").read_text() == "x"


def test_a_live_processs_temps_are_kept_and_it_is_not_signalled(tmp_path):
    """The sweep asks whether a PID is alive with signal 0: a live process's temp stays and
    the process is untouched."""
    import subprocess
    import sys

    def sleeper():
        # SIGHUP as the user's shell gives it (nohup'd runners start with it ignored)
        return subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                 "signal.signal(signal.SIGHUP, signal.SIG_DFL); print(flush=True); "
                                 "time.sleep(60)"], stdout=subprocess.PIPE)

    def alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    child = sleeper()  # one whose PID without its first digit is no process: a misread PID shows
    for _ in range(20):
        if not alive(int(str(child.pid)[1:] or 0) or 999999999):
            break
        child.kill()
        child.wait()
        child = sleeper()
    try:
        child.stdout.readline()
        live = tmp_path / f".out.bin.{child.pid}.ab12.tmp"
        live.write_bytes(b"half")
        with atomic_write(tmp_path / "out.bin") as f:
            f.write(b"x")
        assert live.exists()
        with pytest.raises(subprocess.TimeoutExpired):  # a signal would have ended it by now
            child.wait(timeout=0.5)
    finally:
        child.kill()
        child.wait()


def test_atomic_files_sweeps_dead_temps_and_closes_its_descriptors(tmp_path):
    import os

    from embedkit.io import atomic_files

    dead = tmp_path / ".a.vec.999999999.ab12.tmp"
    dead.write_bytes(b"half")
    link = tmp_path / ".a.ekv.999999999.cd34.tmp"  # not temps we made: symlinks are kept
    (tmp_path / "target").write_text("t")
    link.symlink_to(tmp_path / "target")
    dir_link = tmp_path / ".a.vec.999999999.ef56.tmp"
    (tmp_path / "folder").mkdir()
    dir_link.symlink_to(tmp_path / "folder")
    before = len(os.listdir("/proc/self/fd"))
    with atomic_files([tmp_path / "a.vec", tmp_path / "a.ekv"]) as (v, e):
        v.write_text("v")
        e.write_text("e")
    assert len(os.listdir("/proc/self/fd")) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == \
        sorted(["a.vec", "a.ekv", "target", link.name, "folder", dir_link.name])


def test_text_output_is_utf8_whatever_the_locale(tmp_path):
    """A C/POSIX locale would make Python's text default ASCII; output files are UTF-8 anyway."""
    import subprocess
    import sys

    out = tmp_path / "out.txt"
    code = ("import sys; from embedkit.io import atomic_write\n"
            "with atomic_write(sys.argv[1], 'w') as f: f.write('caf\\u00e9 \\u4e2d')")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True)
    assert out.read_bytes() == "café 中".encode()


def test_an_ignored_signal_is_not_held_so_it_cannot_hide_a_ctrl_c(tmp_path):
    """Under nohup SIGHUP is ignored: it stays ignored inside the hold, so a Ctrl-C that comes
    after it is still the signal delivered when the hold ends."""
    import signal

    from embedkit.io import signals_held

    hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    intr = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_held():
                signal.raise_signal(signal.SIGHUP)
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, hup)
        signal.signal(signal.SIGINT, intr)


def test_the_probe_and_pid_checks_answer_false_not_just_falsy(tmp_path, monkeypatch):
    """No O_TMPFILE on this OS, a folder that cannot be read, a filesystem refusing O_TMPFILE:
    each is a firm False, remembered per device; a gone PID is not alive, and a name that is not
    a temp of ours is not a dead temp."""
    import os

    import embedkit.io as io

    monkeypatch.setattr(io, "_NAMELESS", {})
    assert io._nameless_works(tmp_path / "missing") is False
    assert io._alive(999999999) is False
    assert io._is_dead_temp("notes.txt", None) is False
    assert io._is_dead_temp(".out.bin.999999999.ab12.tmp", "out.bin") is True
    real_open = os.open

    def no_tmpfile(path, flags, *a, **k):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(95, "Operation not supported")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(io.os, "open", no_tmpfile)
    assert io._nameless_works(tmp_path) is False
    assert io._NAMELESS == {os.stat(tmp_path).st_dev: False}
    monkeypatch.setattr(io.os, "open", real_open)
    monkeypatch.setattr(io, "_NAMELESS", {})
    monkeypatch.delattr(io.os, "O_TMPFILE")
    assert io._nameless_works(tmp_path) is False
    with atomic_write(tmp_path / "out.txt", "w") as f:
        f.write("named temp")
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]


def test_a_killed_runs_scratch_folder_goes_with_the_next_run(tmp_path, monkeypatch):
    """Spools live in ``.embedkit.PID.XXXX.tmp`` in the temp folder: removed at the end, and one
    a SIGKILLed run left (PID gone) is removed when the next run makes its own."""
    import os
    import tempfile

    from embedkit.io import scratch_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / ".embedkit.999999999.ab12.tmp"
    dead.mkdir()
    (dead / "spool").write_bytes(b"half")
    other = tmp_path / "embedkit-someone-else"
    other.mkdir()
    with scratch_dir() as d:
        assert d.parent == tmp_path and d.name.startswith(f".embedkit.{os.getpid()}.")
        assert sorted(x.name for x in tmp_path.iterdir()) == sorted([d.name, other.name])
        (d / "spool").write_bytes(b"x")
    assert [x.name for x in tmp_path.iterdir()] == [other.name]
