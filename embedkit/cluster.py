"""Corpus-sized passes on a Dask cluster: one task per shard file (``--scheduler``).

Only the passes that read the whole corpus are spread out; what follows them (merge learning on
the unique-word table) stays on this machine. Each shard is counted by the very code of the
single-node path (``bpe.count.count_shard``, ``wordvec.vocab.count_file``) and adjacent results
are summed pairwise in shard order, so the totals — and everything learned from them — do not
depend on the sharding or the number of workers. ``Runner.map`` runs per-shard jobs whose results
are small (``bpe encode --out-dir``, ``encoder embed --out-dir``).

Dask is imported only by ``connect`` (the extra ``embedkit[dask]``); without ``--scheduler``
nothing here is used but ``expand``.
"""
from __future__ import annotations

import functools
import glob
import os
import re

from .errors import EmbedkitError, InputError, UsageError

_GLOB = re.compile(r"[*?[]")
_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$")
MAX_LOCAL_WORKERS = 256
# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536; setting it at all turns off
# glibc's adaptive mmap threshold, so every block-sized buffer is mmapped, faulted in and
# unmapped again: counting on two local workers took 5.1 s a shard instead of 4.1 s.
_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def expand(corpus) -> list[str]:
    """Expand quoted glob patterns (``'shards/*.txt.gz'``) to their files in sorted (code point)
    order; a name that exists is taken as it is, and a pattern matching no file is an error."""
    out: list[str] = []
    for p in corpus:
        name = os.fspath(p)
        if name == "-" or os.path.exists(name) or not _GLOB.search(name):
            out.append(name)
            continue
        matches = sorted(m for m in glob.glob(name) if os.path.isfile(m))
        if not matches:
            raise InputError(name, "no file matches this pattern")
        out.extend(matches)
    return out


class ShardFailed(Exception):
    """A library error raised in a worker, as data (our errors' constructors do not unpickle)."""


def _task(func, item=None):
    from .bpe.parallel import _Raised

    try:
        return func() if item is None else func(item)
    except EmbedkitError as e:
        raise ShardFailed(_Raised(e)) from None


def _result(future):
    try:
        return future.result()
    except ShardFailed as e:
        e.args[0].reraise()


def _ignore_sigint() -> None:
    """In a local worker: a terminal's Ctrl-C reaches the whole process group, but stopping is
    this process's job (it closes the cluster); workers must not die printing tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def warm_up(pattern: str | None = None) -> None:
    """Compile or load the counting kernels of ``pattern``'s compiled scanner (default GPT-2's)
    and its character-class tables in this process."""
    from .bpe.count import compiled_counter

    counter = compiled_counter(pattern)
    a, b = counter(), counter()
    a.add("warm up\n")
    b.add("the kernels\n")
    a.merge(b)


class Runner:
    """Where shard tasks run: a Dask client, or this process (``sync``, Dask's synchronous
    scheduler: the same tasks and reduce order, for debugging and fast tests)."""

    def __init__(self, client=None, cluster=None):
        self.client, self.cluster = client, cluster

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    @property
    def workers(self) -> int:
        return 1 if self.client is None else len(self.client.scheduler_info()["workers"])

    def warm(self, func=warm_up) -> None:
        """Run ``func`` (load the kernels a task needs) on each worker, one worker at a time:
        first compiles of one cached kernel into one cache folder from several processes at once
        can crash."""
        if self.client is None:
            _sync_call(func)
            return
        for address in sorted(self.client.scheduler_info()["workers"]):
            try:
                self.client.run(_task, func, None, workers=[address])
            except ShardFailed as e:
                e.args[0].reraise()

    def map(self, func, items: list, *, desc: str = "shards", quiet: bool = True):
        """Yield ``(index, func(item))`` as tasks finish; the first failure stops the job."""
        from .progress import bar

        with bar(len(items), desc, "shard", quiet) as progress:
            if self.client is None:
                for i, item in enumerate(items):
                    yield i, _sync_call(func, item)
                    progress.update(1)
                return
            from distributed import as_completed

            futures = self.client.map(functools.partial(_task, func), items, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            try:
                for f in as_completed(futures):
                    yield index[f.key], _result(f)
                    progress.update(1)
            finally:
                self.client.cancel(futures)

    def map_reduce(self, func, items: list, merge, *, desc: str = "shards", quiet: bool = True):
        """``func`` on every item, then ``merge`` of adjacent results, pairwise, in item order."""
        if not items:
            raise UsageError("no input files")
        if self.client is None:
            done = [r for _, r in self.map(func, items, desc=desc, quiet=quiet)]
            while len(done) > 1:
                done = _pairwise(done, merge)
            return done[0]
        return self._distributed(func, items, merge, desc, quiet)

    def _distributed(self, func, items, merge, desc, quiet):
        """The whole tree is submitted at once and a merge outranks the shards still waiting,
        so two tables are summed as soon as both exist; only the root and the shards not yet
        done are referenced here, so Dask frees each table once it is merged — a worker holds a
        few tables, not one per shard."""
        from distributed import as_completed

        from .progress import bar

        client = self.client
        leaves = client.map(functools.partial(_task, func), items, pure=False)
        level = list(leaves)
        while len(level) > 1:
            level = _pairwise(level, lambda a, b: client.submit(merge, a, b, pure=False,
                                                                priority=1))
        root = level[0]
        pending = as_completed(leaves)
        del leaves, level
        try:
            with bar(len(items), desc, "shard", quiet) as progress:
                for f in pending:
                    if f.status == "error":
                        _result(f)
                    progress.update(1)
                    del f
            return _result(root)
        finally:
            client.cancel([root, *pending.futures])


def _sync_call(func, item=None):
    """``func(item)`` through Dask's synchronous scheduler (the task path, in this process)."""
    import dask

    try:
        return dask.compute(dask.delayed(_task)(func, item), scheduler="sync")[0]
    except ShardFailed as e:
        e.args[0].reraise()


def _pairwise(level: list, merge) -> list:
    out = [merge(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        out.append(level[-1])
    return out


def connect(spec: str) -> Runner:
    """``local:N`` (a LocalCluster of N single-thread worker processes on loopback), an address
    ``tcp://HOST:PORT`` / ``tls://HOST:PORT`` of a running scheduler, or ``sync``."""
    where = f"--scheduler {spec!r}"
    m = re.fullmatch(r"local:(\d+)", spec)
    if not (m or spec == "sync" or _ADDRESS.match(spec)):
        raise UsageError(f"{where}: expected local:N, tcp://HOST:PORT or sync")
    if m and not 1 <= int(m.group(1)) <= MAX_LOCAL_WORKERS:
        raise UsageError(f"{where}: N must be 1..{MAX_LOCAL_WORKERS}")
    try:
        import distributed  # dask comes with it
    except ImportError:
        raise UsageError(f"{where} needs Dask: pip install 'embedkit[dask]'") from None
    if spec == "sync":
        return Runner()
    import logging

    if m:
        from .io import signals_held

        import dask

        runner = Runner()
        try:  # Ctrl-C waits for the start-up to finish, so the cluster is closed, not leaked
            with signals_held(), dask.config.set(_WORKER_ENVIRON):
                runner.cluster = distributed.LocalCluster(
                    n_workers=int(m.group(1)), threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None,
                    # its HTTP endpoints on any free loopback port: a second job must not warn
                    # that 8787 is taken; a failed task is reported here, once, not logged too
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.CRITICAL)
                runner.client = distributed.Client(runner.cluster)
                runner.client.run(_ignore_sigint)
        except BaseException:
            runner.close()
            raise
        return runner
    try:  # how long to try: Dask's distributed.comm.timeouts.connect (default 30 s)
        return Runner(distributed.Client(spec))
    except (OSError, TimeoutError) as e:
        raise UsageError(f"{where}: cannot reach the scheduler ({e})") from None


def bpe_counts(runner: Runner, paths: list, *, byte_level: bool = True, lowercase: bool = False,
               pattern: str | None = None, quiet: bool = True):
    """The word counts ``bpe learn`` learns from (a ``WordCounter`` or a ``Counter``)."""
    from .bpe.count import COMPILED_PATTERNS, CountTable, count_shard, merge_counts

    if byte_level and pattern in COMPILED_PATTERNS:  # a compiled scanner counts: load it first
        runner.warm(functools.partial(warm_up, pattern))
    func = functools.partial(count_shard, byte_level=byte_level, lowercase=lowercase,
                             pattern=pattern)
    counts = runner.map_reduce(func, list(paths), merge_counts, desc="counting words",
                               quiet=quiet)
    return counts.counter() if isinstance(counts, CountTable) else counts


def train_counts(runner: Runner, paths: list, *, lowercase: bool = False, quiet: bool = True):
    """Words in first-seen order with their counts and the token total, as
    ``wordvec.vocab.spool_corpus`` gives them (``build_vocab`` takes the result)."""
    from .wordvec.vocab import count_file, merge_counts

    func = functools.partial(count_file, lowercase=lowercase)
    return runner.map_reduce(func, list(paths), merge_counts, desc="counting words", quiet=quiet)
