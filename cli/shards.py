"""``--out-dir``: one output file per input shard and a manifest of what is done, shared by
``bpe encode`` and ``encoder embed``. Each command gives the manifest head (its model's digest and
options) and the task that writes one shard; the bookkeeping is here: outputs written atomically
by whoever computes them, ``manifest.json`` rewritten after each shard (a job stopped by an error
or Ctrl-C keeps what was done), and a re-run skips a shard whose entry, input size/mtime and
output sha256 still match under the same head. Shards run here one after another or, with
``--scheduler``, as Dask tasks (``embedkit.cluster``).
"""
from __future__ import annotations

import functools
import os

import click

from .common import corpus_files

MANIFEST = "manifest.json"


def stamp(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256_file(path) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def folder_digest(path) -> str:
    """sha256 over a model's file(s): a changed model invalidates the outputs made with it."""
    import hashlib

    h = hashlib.sha256()
    if os.path.isdir(path):
        names = sorted(p for p in os.listdir(path) if os.path.isfile(os.path.join(path, p)))
        files = [(name, os.path.join(path, name)) for name in names]
    else:
        files = [("", path)]  # a one-file model (tokenizer.json, .tiktoken, ...)
    for name, file in files:
        h.update(name.encode() + b"\0" + (sha256_file(file) or "").encode())
    return h.hexdigest()


def _shard(task, threads, job) -> dict:
    """One shard: ``task(threads, path, f)`` writes the output into ``f`` (a seekable binary
    file, renamed into place only if the task succeeds) and gives its counts; the manifest entry.
    The input is stamped before it is read: a file changed meanwhile is done again next time."""
    import hashlib

    from embedkit.io import atomic_write

    path, out = job
    before = stamp(path)
    with atomic_write(out, "w+b") as f:
        counts = task(threads, path, f)
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"shard": path, "output": os.path.basename(out), **counts, "sha256": digest, **before}


def _outputs(files, out_dir, suffix) -> list[str]:
    from embedkit.errors import UsageError

    outs = [os.path.join(out_dir, os.path.basename(f).removesuffix(".gz") + suffix)
            for f in files]
    if len(set(outs)) < len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise UsageError(f"--out-dir: two input files would both write {dup}")
    return outs


def _done(manifest, head) -> dict:
    """The manifest's entries by shard, when its head is ``head`` (else nothing is done)."""
    from embedkit.bpe.formats.text import parse_json, read_text
    from embedkit.errors import InputError

    if not os.path.isfile(manifest):
        return {}
    m = parse_json(read_text(manifest), manifest)
    if not isinstance(m, dict) or not isinstance(m.get("shards"), list):
        raise InputError(manifest, "not an embedkit manifest (delete it to start again)")
    if {k: m.get(k) for k in head} != head:
        return {}
    return {e["shard"]: e for e in m["shards"]
            if isinstance(e, dict) and isinstance(e.get("shard"), str)}


def check(files, out_dir, suffix) -> tuple[list[str], list[str]]:
    """(input files, their outputs), or the usage error; before any model is loaded."""
    from embedkit.errors import UsageError
    from embedkit.io import check_dir

    if not files:
        raise UsageError("--out-dir needs input FILES (workers read files, not stdin)")
    files = corpus_files(files, "--out-dir")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out_dir))):
        raise UsageError(f"--out-dir {out_dir}: its parent folder does not exist")
    check_dir(out_dir, MANIFEST)
    return files, _outputs(files, out_dir, suffix)


def run(files, outs, out_dir, *, head, task, warm, total, threads, scheduler, quiet,
        desc) -> None:
    """Write every shard not already done, then print ``N files (K already done), T TOTAL``
    (``total``: the entries' count summed). ``task`` as in ``_shard``; ``warm()`` loads the
    model in a process (here first, so a bad model fails before any worker starts)."""
    import json

    from embedkit.io import atomic_write

    warm()
    manifest = os.path.join(out_dir, MANIFEST)
    old = _done(manifest, head)
    entries: dict[int, dict] = {}
    todo = []
    for i, (f, out) in enumerate(zip(files, outs)):
        e = old.get(f)
        if e and {k: e.get(k) for k in ("size", "mtime_ns")} == stamp(f) and \
                isinstance(e.get(total), int) and e.get("output") == os.path.basename(out) and \
                sha256_file(out) == e.get("sha256"):
            entries[i] = e
        else:
            todo.append(i)
    created = todo and not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    def save(k, entry):
        entries[todo[k]] = entry
        with atomic_write(manifest, "w") as fh:
            json.dump({**head, "shards": [entries[i] for i in sorted(entries)]}, fh, indent=1)
            fh.write("\n")

    try:
        _jobs(task, warm, threads, scheduler, quiet, desc,
              [(files[i], outs[i]) for i in todo], save)
    except BaseException:
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)  # a failed first file leaves no new folder behind
        raise
    n = sum(e[total] for e in entries.values())
    click.echo(f"{len(files)} files ({len(files) - len(todo)} already done), {n} {total}: "
               f"{out_dir}")


def _jobs(task, warm, threads, scheduler, quiet, desc, jobs, done) -> None:
    """Run each (input, output) job; ``done(k, entry)`` after each. On Dask every task runs on
    one thread (a worker process per core), after ``warm`` ran on each worker in turn."""
    if scheduler:
        from embedkit.cluster import connect

        with connect(scheduler) as runner:
            runner.warm(warm)
            for k, e in runner.map(functools.partial(_shard, task, 1), jobs, desc=desc,
                                   quiet=quiet):
                done(k, e)
        return
    from embedkit.progress import bar

    with bar(len(jobs), desc, "file", quiet) as progress:
        for k, job in enumerate(jobs):
            done(k, _shard(task, threads, job))
            progress.update(1)
