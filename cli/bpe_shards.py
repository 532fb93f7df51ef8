"""``bpe encode --out-dir``: the per-shard part (encode one input file into its output, the
tokenizer loaded once per process); the out-dir bookkeeping is ``cli/shards.py``'s.
"""
from __future__ import annotations

import functools
import os

from .bpe import _batches, _load, _render, _skip_numba_blas_probe

_WORKER_TOKENIZERS: dict = {}


def _worker_tok(spec):
    """The tokenizer ``spec`` = (path, pattern, allow_special), loaded once per process."""
    tok = _WORKER_TOKENIZERS.get(spec)
    if tok is None:
        _skip_numba_blas_probe()
        tok = _load(*spec)
        tok.warm()  # load the kernel (before any fork)
        _WORKER_TOKENIZERS[spec] = tok
    return tok


def _warm_tokenizer(spec) -> None:
    _worker_tok(spec)


def _encode_shard(spec, ids, threads, path, f) -> dict:
    """Task: encode one input file into ``f``; ``tokens`` counts the space-separated fields."""
    from embedkit.bpe.parallel import fork_map

    tok = _worker_tok(spec)
    lines, tokens, last = 0, 0, b"\n"
    tasks = ((batch, ids) for batch in _batches([path], tok.byte_level))
    for data in fork_map(_render, tasks, threads, tok):
        f.write(data)
        lines += data.count(b"\n")
        tokens += len(data.split())
        last = data[-1:] or last
    return {"lines": lines + (last != b"\n"), "tokens": tokens}


def encode_to_dir(tokdir, files, ids, pattern, allow_special, threads, out_dir, scheduler, quiet):
    """One output per input file (NAME.ids / NAME.pieces) plus ``manifest.json``."""
    from . import shards

    files, outs = shards.check(files, out_dir, ".ids" if ids else ".pieces")
    _skip_numba_blas_probe()
    spec = (os.path.abspath(tokdir), pattern, allow_special)
    head = {"format": "embedkit-encoded-shards", "version": 1, "tokenizer": spec[0],
            "tokenizer_sha256": shards.folder_digest(tokdir), "pattern": pattern,
            "allow_special": allow_special, "ids": bool(ids)}
    shards.run(files, outs, out_dir, head=head, task=functools.partial(_encode_shard, spec, ids),
               warm=functools.partial(_warm_tokenizer, spec), total="tokens", threads=threads,
               scheduler=scheduler, quiet=quiet, desc="encoding")
