"""``bpe encode --out-dir``: one output file per input shard, written atomically, and a manifest
(shard, lines, tokens, sha256) so a re-run skips shards already done; shards run on this machine
or, with ``--scheduler``, as Dask tasks (``embedkit.cluster``).

Kept apart from ``cli/bpe.py`` (the commands) because it is the shard bookkeeping, not a command.
"""
from __future__ import annotations

import os

import click

from .bpe import _batches, _corpus_files, _load, _render, _skip_numba_blas_probe

_MANIFEST = "manifest.json"
_WORKER_TOKENIZERS: dict = {}


def _worker_tok(spec):
    """The tokenizer ``spec`` = (path, pattern, allow_special), loaded once per process."""
    tok = _WORKER_TOKENIZERS.get(spec)
    if tok is None:
        _skip_numba_blas_probe()
        tok = _load(*spec)
        tok.encode("a")  # load the kernel (before any fork)
        _WORKER_TOKENIZERS[spec] = tok
    return tok


def _warm_tokenizer(spec) -> None:
    _worker_tok(spec)


def _encode_shard(spec, ids, threads, job):
    """Task: encode one input file into its output file (written atomically); its manifest
    entry. ``tokens`` counts the space-separated fields written."""
    import hashlib

    from embedkit.bpe.parallel import fork_map
    from embedkit.io import atomic_write

    path, out = job
    tok = _worker_tok(spec)
    digest, lines, tokens, last = hashlib.sha256(), 0, 0, b"\n"
    with atomic_write(out) as f:
        tasks = ((batch, ids) for batch in _batches([path], tok.byte_level))
        for data in fork_map(_render, tasks, threads, tok):
            f.write(data)
            digest.update(data)
            lines += data.count(b"\n")
            tokens += len(data.split())
            last = data[-1:] or last
    return {"shard": path, "output": os.path.basename(out), "lines": lines + (last != b"\n"),
            "tokens": tokens, "sha256": digest.hexdigest(), **_stamp(path)}


def _stamp(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256_file(path) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _tokenizer_digest(path) -> str:
    """sha256 over the tokenizer's file(s): a changed vocabulary invalidates the outputs."""
    import hashlib

    h = hashlib.sha256()
    names = sorted(p for p in os.listdir(path) if os.path.isfile(os.path.join(path, p))) \
        if os.path.isdir(path) else [""]
    for name in names:
        h.update(name.encode() + b"\0" + (_sha256_file(os.path.join(path, name)) or "").encode())
    return h.hexdigest()


def encode_to_dir(tokdir, files, ids, pattern, allow_special, threads, out_dir, scheduler, quiet):
    """One output per input file plus ``manifest.json`` (shard, output, lines, tokens, sha256,
    the input's size and mtime), rewritten after each file; files whose entry, input stamp and
    output sha256 all match the manifest are skipped."""
    import json

    from embedkit.bpe.formats.text import parse_json, read_text
    from embedkit.errors import InputError, UsageError
    from embedkit.io import atomic_write, check_dir

    if not files:
        raise UsageError("--out-dir needs input FILES (workers read files, not stdin)")
    files = _corpus_files(files, "--out-dir")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out_dir))):
        raise UsageError(f"--out-dir {out_dir}: its parent folder does not exist")
    check_dir(out_dir, _MANIFEST)
    suffix = ".ids" if ids else ".pieces"
    outs = [os.path.join(out_dir, os.path.basename(f).removesuffix(".gz") + suffix)
            for f in files]
    if len(set(outs)) < len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise UsageError(f"--out-dir: two input files would both write {dup}")
    _skip_numba_blas_probe()
    spec = (os.path.abspath(tokdir), pattern, allow_special)
    _worker_tok(spec)  # a bad tokenizer fails here, before any worker starts
    head = {"format": "embedkit-encoded-shards", "version": 1, "tokenizer": spec[0],
            "tokenizer_sha256": _tokenizer_digest(tokdir), "pattern": pattern,
            "allow_special": allow_special, "ids": bool(ids)}
    manifest = os.path.join(out_dir, _MANIFEST)
    old = {}
    if os.path.isfile(manifest):
        m = parse_json(read_text(manifest), manifest)
        if not isinstance(m, dict) or not isinstance(m.get("shards"), list):
            raise InputError(manifest, "not an embedkit manifest (delete it to start again)")
        if {k: m.get(k) for k in head} == head:
            old = {e.get("shard"): e for e in m["shards"] if isinstance(e, dict)}
    entries: dict[int, dict] = {}
    todo = []
    for i, (f, out) in enumerate(zip(files, outs)):
        e = old.get(f)
        if e and {k: e.get(k) for k in ("size", "mtime_ns")} == _stamp(f) and \
                e.get("output") == os.path.basename(out) and _sha256_file(out) == e.get("sha256"):
            entries[i] = e
        else:
            todo.append(i)
    created = todo and not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    def save():
        with atomic_write(manifest, "w") as fh:
            json.dump({**head, "shards": [entries[i] for i in sorted(entries)]}, fh, indent=1)
            fh.write("\n")

    try:
        _run_jobs(spec, ids, threads, scheduler, quiet, [(files[i], outs[i]) for i in todo],
                  lambda k, e: (entries.__setitem__(todo[k], e), save()))
    except BaseException:
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)  # a failed first file leaves no new folder behind
        raise
    n = sum(e["tokens"] for e in entries.values())
    click.echo(f"{len(files)} files ({len(files) - len(todo)} already done), {n} tokens: "
               f"{out_dir}")


def _run_jobs(spec, ids, threads, scheduler, quiet, jobs, done) -> None:
    """Encode each (input, output) job; ``done(k, entry)`` after each."""
    import functools

    if scheduler:
        from embedkit.cluster import connect

        with connect(scheduler) as runner:
            runner.warm(functools.partial(_warm_tokenizer, spec))
            for k, e in runner.map(functools.partial(_encode_shard, spec, ids, 1), jobs,
                                   desc="encoding", quiet=quiet):
                done(k, e)
        return
    from embedkit.progress import bar

    with bar(len(jobs), "encoding", "file", quiet) as progress:
        for k, job in enumerate(jobs):
            done(k, _encode_shard(spec, ids, threads, job))
            progress.update(1)
