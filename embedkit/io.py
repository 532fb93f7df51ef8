"""Atomic output: files and folders appear complete or not at all (Ctrl-C, errors, full disks)."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import OutputError


def _prepare_parent(path: Path) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is not a folder")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file name")
    return parent


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Write to a temp file beside ``path`` and rename it into place only if the block succeeds.

    A rename within one folder is atomic on POSIX, so readers never see a half-written file and an
    interrupted run leaves the previous file (or nothing) behind. On Linux the temp file has no
    name while it is written (``O_TMPFILE``; linked in only when complete), so even SIGKILL or the
    OOM killer leaves nothing; elsewhere it is ``.NAME.PID.XXXX.tmp``, and a later write of
    ``NAME`` removes such temps whose process is gone.
    """
    path = Path(path)
    parent = _prepare_parent(path)
    _remove_stale_temps(parent, path.name)
    tmp = None
    ok = False
    try:
        with signals_held():  # a Ctrl-C between making a named temp and knowing it would leak it
            fd, tmp = _temp_file(parent, path.name)
        if "b" in mode:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding or "utf-8", newline="")
        with f:
            yield f
            f.flush()
            if tmp is None:
                with signals_held():
                    tmp = _link_temp(f.fileno(), parent, path.name)
            else:
                os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
        ok = True
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if not ok and tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_NAMELESS: dict[int, bool] = {}  # device -> O_TMPFILE files there can be linked in


def _temp_file(parent: Path, name: str) -> tuple[int, str | None]:
    """``(fd, None)`` for a nameless ``O_TMPFILE`` in ``parent``, else ``(fd, named temp)``."""
    if _nameless_works(parent):
        try:
            return os.open(parent, os.O_TMPFILE | os.O_RDWR, 0o666), None
        except OSError:
            pass
    return _named_temp(parent, name)


def _named_temp(parent: Path, name: str) -> tuple[int, str]:
    """``.NAME.PID.RANDOM.tmp`` beside the output, the form ``_remove_stale_temps`` knows."""
    return tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=parent)


def _nameless_works(parent: Path) -> bool:
    """Whether this filesystem (once per device) makes ``O_TMPFILE`` files and links them in;
    some (and some sandboxes, which refuse linkat from /proc) do not."""
    if not hasattr(os, "O_TMPFILE"):
        return False
    try:
        dev = os.stat(parent).st_dev
    except OSError:
        return False
    if dev not in _NAMELESS:
        _remove_stale_temps(parent, "embedkit-probe")
        try:
            fd = os.open(parent, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError:
            _NAMELESS[dev] = False
            return False
        try:
            probe = _link_temp(fd, parent, "embedkit-probe")
            os.unlink(probe)
            _NAMELESS[dev] = True
        except OSError:
            _NAMELESS[dev] = False
        finally:
            os.close(fd)
    return _NAMELESS[dev]


def _link_temp(fd: int, parent: Path, name: str) -> str:
    """Give a complete ``O_TMPFILE`` a temp name (linkat cannot replace ``path`` itself)."""
    while True:
        tmp = os.path.join(parent, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, follow_symlinks=True)
            return tmp
        except FileExistsError:
            continue


def _remove_stale_temps(parent: Path, name: str) -> None:
    """Remove ``.NAME.PID.*.tmp`` temps of ``name`` left by a killed process (PID not alive)."""
    try:
        entries = [e for e in os.scandir(parent) if _is_dead_temp(e.name, name)
                   and (e.is_file(follow_symlinks=False) or e.is_dir(follow_symlinks=False))]
    except OSError:
        return
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)  # a staging folder: only what we wrote
        else:
            with contextlib.suppress(OSError):
                os.unlink(e.path)


def _is_dead_temp(entry: str, name: str | None) -> bool:
    """Whether ``entry`` is ``.NAME.PID.RANDOM.tmp`` (NAME = ``name`` unless None) of a process
    that is gone; no other writer's temps, and never this process's own."""
    if not (entry.startswith(f".{name}." if name is not None else ".") and entry.endswith(".tmp")):
        return False
    parts = entry[len(name) + 2:].split(".") if name is not None else \
        entry.rsplit(".", 3)[1:]  # [PID, RANDOM, "tmp"]
    return len(parts) == 3 and parts[0].isdigit() and int(parts[0]) != os.getpid() \
        and not _alive(int(parts[0]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Stage a folder's files in a temp folder; on success put them into ``path`` all at once.

    Only the entries made in the staging folder are written: anything else already in ``path``
    (a user's own files) is left alone, byte for byte, and nothing is ever deleted there. An
    existing ``path`` must be empty or hold ``marker`` (the file that shows embedkit wrote it:
    ``embedkit.json`` in a TOKDIR); any other non-empty folder is refused before work starts.
    A new ``path`` is the staging folder renamed, so it appears complete or not at all; into an
    existing one the files are renamed one by one with Ctrl-C held off until the last is in.
    A staging folder left by a killed process (``.NAME.PID.XXXX.tmp``, PID gone) is removed by
    the next write of the same folder.
    """
    path = Path(path)
    check_dir(path, marker)
    exists = path.is_dir()
    where = path if exists else (path.parent if str(path.parent) else Path("."))
    name = path.name or "embedkit"
    _remove_stale_temps(where, name)
    tmp = None
    try:
        try:
            with signals_held():
                tmp = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=where))
        except OSError as e:
            raise OutputError(f"{path}: cannot write: {e.strerror}") from None
        yield tmp
        with signals_held():
            if not exists:
                os.chmod(tmp, 0o777 & ~_umask())
                os.rename(tmp, path)
            else:
                _merge(tmp, path)  # the emptied staging folder goes in the finally below
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # the staging folder holds only what we wrote


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private folder for one run's spools, in the system temp folder, removed at the end.

    Named ``.embedkit.PID.XXXX.tmp``, so one left by a killed process (SIGKILL, the OOM killer)
    is removed by the next embedkit run that needs a scratch folder, as named output temps are.
    """
    parent = Path(tempfile.gettempdir())
    _remove_stale_temps(parent, "embedkit")
    with signals_held():
        tmp = Path(tempfile.mkdtemp(prefix=f".embedkit.{os.getpid()}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_dir(path: str | os.PathLike, marker: str) -> None:
    """Refuse an output folder embedkit must not write into (see ``atomic_dir``): call it before
    long work so the refusal comes first, not after an hour of training."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.is_dir() and not (path / marker).is_file():
        try:
            # a killed run's temps are not the user's files (each goes when its file is written)
            foreign = sorted(e.name for e in os.scandir(path) if not _is_dead_temp(e.name, None))
        except OSError as e:
            raise OutputError(f"{path}: cannot read the folder: {e.strerror}") from None
        if foreign:
            raise OutputError(f"{path}: folder is not empty and was not written by embedkit "
                              f"(no {marker}; it holds {foreign[0]!r}): give a new or empty folder")


def _merge(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into ``dst``: files replace files, folders merge recursively."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False) and target.is_dir():
            _merge(Path(entry.path), target)  # its emptied folder goes with the staging folder
        elif target.is_dir() and not target.is_symlink():
            raise OutputError(f"{target}: is a folder, cannot replace it with a file")
        else:
            os.replace(entry.path, target)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT), SIGTERM and SIGHUP off for a few renames that belong together; a
    signal that came meanwhile is delivered as the block ends.

    Python-level handlers, not a thread's signal mask: any thread (Numba's, OpenBLAS's) may
    receive a process signal, but Python always runs its handlers in the main thread.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        handler = signal.getsignal(sig)
        if handler is not None and handler is not signal.SIG_IGN:
            old[sig] = signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if got:
            signal.raise_signal(got[0])


@contextlib.contextmanager
def atomic_files(paths: list[str | os.PathLike]) -> Iterator[list[Path]]:
    """Several files that belong together (``NAME.vec`` + ``NAME.ekv``): yields one temp path
    for each, beside it; on success all are renamed into place together (Ctrl-C held off), on
    failure all temps are removed and the previous files stay as they were."""
    finals = [Path(p) for p in paths]
    temps: list[Path] = []
    ok = False
    try:
        try:
            for p in finals:
                parent = _prepare_parent(p)
                _remove_stale_temps(parent, p.name)
                with signals_held():  # each temp is on the list before a Ctrl-C can land
                    fd, tmp = _named_temp(parent, p.name)
                    temps.append(Path(tmp))
                os.close(fd)
        except OSError as e:
            raise OutputError(f"{finals[len(temps)]}: cannot write: {e.strerror}") from None
        yield temps
        with signals_held():
            for t, p in zip(temps, finals):
                os.replace(t, p)
        ok = True
    except OSError as e:
        raise OutputError(f"cannot write {finals[0]}: {e.strerror or e}") from None
    finally:
        if not ok:
            for t in temps:
                with contextlib.suppress(OSError):
                    os.unlink(t)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
