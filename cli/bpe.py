"""``embedkit bpe``: learn a vocabulary, encode text to pieces or ids, decode ids back to text.

Library modules are imported inside the commands so ``embedkit bpe --help`` never loads numba.
"""
from __future__ import annotations

import os
import sys

import click

_BATCH_LINES = 8192
_BATCH_BYTES = 1 << 20
_MAX_THREADS = 1024  # as `embedkit train`; each is a forked process, so a typo must not fork bomb


def _check_inputs(paths) -> None:
    from embedkit.errors import InputError

    for p in paths:
        if p == "-":
            continue
        if not os.path.exists(p):
            raise InputError(p, "no such file")
        if os.path.isdir(p):
            raise InputError(p, "is a folder, expected a file")


def _check_output(path: str, folder: bool) -> None:
    """Refuse an unusable -o before learning, not after (the write itself is atomic)."""
    from embedkit.errors import OutputError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"{path}: folder {parent} does not exist")
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: exists and is not a folder")
    if not folder and os.path.isdir(path):
        raise OutputError(f"{path}: is a folder, expected a file name for the codes")


def _skip_numba_blas_probe() -> None:
    """Spare this process numba's BLAS probe: its first kernel load imports all of scipy.linalg
    (``numba.np.arraymath._check_blas``, about 0.4 s and 17 MB here) to see whether ``np.dot``
    can be compiled. The BPE kernels never use BLAS, and only they run in an ``embedkit bpe``
    process, so the probe is made to fail fast (numba then just disables BLAS-based functions)."""
    if "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg"] = None  # type: ignore[assignment]


def _cpus() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@click.group()
def bpe():
    """Learn, apply and undo BPE vocabularies (byte-level GPT-2 or word/subword-nmt style).

    A TOKDIR holds vocab.json + merges.txt (readable by HF tokenizers) and embedkit.json.
    """


@bpe.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="TOKDIR",
              help="Folder to write (or, with --format subword-nmt, the codes file).")
@click.option("--vocab-size", type=click.IntRange(min=1), required=True,
              help="Target vocabulary size, special tokens and base alphabet included.")
@click.option("--min-frequency", type=click.IntRange(min=1), default=2, show_default=True,
              help="Stop when the best pair occurs fewer times than this.")
@click.option("--byte-level/--no-byte-level", default=True, show_default=True,
              help="GPT-2 byte-level BPE, or word BPE with a </w> end-of-word marker.")
@click.option("--lowercase", is_flag=True, help="Lowercase text before learning (and encoding).")
@click.option("--special-token", "special_tokens", multiple=True, metavar="TOK",
              help="Reserve a token (ids 0, 1, ... in the order given); repeatable.")
@click.option("--format", "fmt", type=click.Choice(["hf", "subword-nmt"]), default="hf",
              show_default=True, help="hf: TOKDIR with vocab.json/merges.txt; subword-nmt: a codes file.")
@click.option("--threads", type=click.IntRange(1, _MAX_THREADS), default=_cpus,
              show_default="CPU count, max 8",
              help="Processes that pre-tokenize and count words.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def learn(corpus, output, vocab_size, min_frequency, byte_level, lowercase, special_tokens, fmt,
          threads, quiet):
    """Learn a BPE vocabulary from CORPUS files ('-' = stdin, .gz accepted)."""
    from pathlib import Path

    from embedkit.errors import UsageError

    if fmt == "subword-nmt" and byte_level:
        raise UsageError("--format subword-nmt needs --no-byte-level (subword-nmt codes are word BPE)")
    _check_inputs(corpus)
    _check_output(output, folder=fmt == "hf")
    _skip_numba_blas_probe()
    from embedkit.bpe.model import BPETokenizer

    tok = BPETokenizer.train([Path(p) for p in corpus], vocab_size, min_frequency=min_frequency,
                             byte_level=byte_level, lowercase=lowercase,
                             special_tokens=special_tokens, threads=threads, quiet=quiet)
    if fmt == "subword-nmt":
        from embedkit.io import atomic_write

        with atomic_write(output, "w") as f:
            f.write(tok.to_codes())
    else:
        tok.save(output)
    n_merges = len(tok.merges)
    click.echo(f"vocabulary of {tok.vocab_size} tokens ({n_merges} merges) written to {output}")
    if tok.vocab_size < vocab_size and not quiet:
        click.echo(f"note: stopped below --vocab-size {vocab_size}: no pair occurs "
                   f"{min_frequency} times or more", err=True)


def _load(tokdir):
    from embedkit.bpe.model import BPETokenizer

    return BPETokenizer.load(tokdir)


def _batches(paths, errors):
    """(texts, ends) batches bounded in count and bytes; ``end`` is False for a piece of a long
    line that goes on in the next text."""
    from embedkit.corpus import iter_lines

    texts, ends, size = [], [], 0
    for line in iter_lines(paths, errors=errors):
        texts.append(line.text)
        ends.append(line.end)
        size += len(line.text)
        if len(texts) >= _BATCH_LINES or size >= _BATCH_BYTES:
            yield texts, ends
            texts, ends, size = [], [], 0
    if texts:
        yield texts, ends


def _render(tok, task):
    """Worker: a batch of (texts, ends) → their encoded text, line endings included (bytes)."""
    (texts, ends), ids = task
    parts = []
    for text, end in zip(tok.encode_to_text(texts, ids=ids), ends):
        parts.append(text)
        parts.append("\n" if end else " ")
    return "".join(parts).encode("utf-8", "surrogateescape")


@bpe.command()
@click.option("-t", "--tokenizer", "tokdir", required=True, metavar="TOKDIR",
              help="TOKDIR (embedkit or HF vocab.json + merges.txt) or a subword-nmt codes file.")
@click.argument("files", nargs=-1)
@click.option("--ids", is_flag=True, help="Print token ids instead of pieces.")
@click.option("--threads", type=click.IntRange(1, _MAX_THREADS), default=_cpus,
              show_default="CPU count, max 8",
              help="Processes that encode batches of lines (output order is kept).")
def encode(tokdir, files, ids, threads):
    """Encode each line of FILES (default stdin): one output line per input line.

    Pieces are printed space-separated (word mode: subword-nmt style, 'fl@@ y@@ ing').
    """
    from embedkit.bpe.parallel import fork_map

    files = files or ("-",)
    _check_inputs(files)
    _skip_numba_blas_probe()
    tok = _load(tokdir)
    out = sys.stdout.buffer
    errors = "surrogateescape" if tok.byte_level else "strict"
    tok.encode("a")  # load the kernel once, before the workers are forked
    tasks = ((batch, ids) for batch in _batches(files, errors))
    for data in fork_map(_render, tasks, threads, tok):
        out.write(data)
    out.flush()


@bpe.command()
@click.option("-t", "--tokenizer", "tokdir", required=True, metavar="TOKDIR",
              help="TOKDIR (embedkit or HF vocab.json + merges.txt) or a subword-nmt codes file.")
@click.argument("files", nargs=-1)
def decode(tokdir, files):
    """Decode lines of space-separated ids from FILES (default stdin) back to text."""
    from embedkit.corpus import iter_lines
    from embedkit.errors import InputError

    files = files or ("-",)
    _check_inputs(files)
    tok = _load(tokdir)
    out = sys.stdout.buffer
    v = tok.vocab_size
    chunks, size = [], 0
    for line in iter_lines(files):
        try:
            ids = [int(x) for x in line.text.split()]
        except ValueError:
            bad = next(x for x in line.text.split() if not x.lstrip("-").isdigit())
            raise InputError(line.path, f"not a token id: {bad[:20]!r}", line.lineno) from None
        bad = [i for i in ids if not 0 <= i < v]
        if bad:
            raise InputError(line.path, f"id {bad[0]} is not in the vocabulary (0..{v - 1})",
                             line.lineno)
        chunks.append(tok.decode_bytes(ids))
        size += len(chunks[-1])
        if line.end:
            chunks.append(b"\n")
        if len(chunks) >= _BATCH_LINES or size >= _BATCH_BYTES:
            out.write(b"".join(chunks))
            chunks, size = [], 0
    out.write(b"".join(chunks))
    out.flush()
