"""``embedkit bpe``: learn a vocabulary, encode text to pieces or ids, decode ids back to text.

Library modules are imported inside the commands so ``embedkit bpe --help`` never loads numba.
"""
from __future__ import annotations

import os
import sys

import click

from .common import SCHEDULER_HELP, echo_json, json_option, quiet_option, threads_option
from .common import check_inputs as _check_inputs
from .common import corpus_files as _corpus_files

_BATCH_LINES = 8192
_BATCH_BYTES = 1 << 20
_MAX_VOCAB = 2**31 - 1  # token ids are int32


def _check_output(path: str, folder: bool) -> None:
    """Refuse an unusable -o before learning, not after (the write itself is atomic): a TOKDIR
    must be new, empty or an existing TOKDIR — never a folder of the user's own files."""
    from embedkit.errors import OutputError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"{path}: folder {parent} does not exist")
    if folder:
        from embedkit.bpe.files import SETTINGS
        from embedkit.io import check_dir

        check_dir(path, SETTINGS)
    elif os.path.isdir(path):
        raise OutputError(f"{path}: is a folder, expected a file name for the codes")


def _skip_numba_blas_probe() -> None:
    """Spare this process numba's BLAS probe: its first kernel load imports all of scipy.linalg
    (``numba.np.arraymath._check_blas``, about 0.4 s and 17 MB here) to see whether ``np.dot``
    can be compiled. The BPE kernels never use BLAS, and only they run in an ``embedkit bpe``
    process, so the probe is made to fail fast (numba then just disables BLAS-based functions)."""
    if "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg"] = None  # type: ignore[assignment]


_PATTERN_HELP = ("Pre-tokenizer: gpt2, r50k, p50k, cl100k, o200k (tiktoken's published patterns) "
                 "or a regex.")
_TOK_HELP = ("TOKDIR, HF vocab.json + merges.txt folder, tokenizer.json, .tiktoken, tekken JSON, "
             "sentencepiece BPE .model or subword-nmt codes (recognised by content).")


def _pattern(value):
    """--pattern NAME|REGEX → the regex, checked before any work."""
    if value is None:
        return None
    from embedkit.bpe.pretokenize import resolve_pattern

    return resolve_pattern(value)


def _count_words(corpus, scheduler, byte_level, lowercase, pattern, threads, quiet):
    """The corpus's word counts: one Dask task per file with --scheduler, else this machine."""
    from pathlib import Path

    from embedkit.bpe.pretokenize import GPT2_PATTERN

    pattern = None if pattern == GPT2_PATTERN else pattern
    if scheduler:
        from embedkit.cluster import bpe_counts, connect

        with connect(scheduler) as runner:
            return bpe_counts(runner, corpus, byte_level=byte_level, lowercase=lowercase,
                              pattern=pattern, quiet=quiet)
    from embedkit.bpe.count import count

    return count([Path(p) for p in corpus], byte_level=byte_level, lowercase=lowercase,
                 threads=threads, quiet=quiet, pattern=pattern)


def _load_counts(ctx, path, byte_level, lowercase, pattern):
    """(counts, byte_level, lowercase, pattern) of a counts file; the pre-tokenizer is the
    file's, and an option given on the command line must agree with it."""
    from click.core import ParameterSource

    from embedkit.bpe.formats.wordcounts import load
    from embedkit.bpe.pretokenize import GPT2_PATTERN
    from embedkit.errors import UsageError

    counts, meta = load(path)
    file_byte_level = meta["mode"] == "byte-level"

    def given(name):
        return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)

    if (given("byte_level") and byte_level != file_byte_level) or \
            (given("lowercase") and lowercase != meta["lowercase"]) or \
            (given("pattern") and _pattern(pattern) != meta["pattern"]):
        raise UsageError(f"--from-counts {path}: its words were pre-tokenized with mode "
                         f"{meta['mode']}, lowercase {str(meta['lowercase']).lower()} and the "
                         f"pattern in its first line; drop the options that differ")
    keep = file_byte_level and meta["pattern"] != GPT2_PATTERN
    return counts, file_byte_level, meta["lowercase"], meta["pattern"] if keep else None


@click.group()
def bpe():
    """Learn, apply and undo BPE vocabularies (byte-level GPT-2 or word/subword-nmt style).

    A TOKDIR holds vocab.json + merges.txt (readable by HF tokenizers) and embedkit.json.
    """


@bpe.command()
@click.argument("corpus", nargs=-1)
@click.option("-o", "--output", required=True, metavar="TOKDIR",
              help="Folder to write (or, with --format subword-nmt, the codes file).")
@click.option("--vocab-size", type=click.IntRange(1, _MAX_VOCAB), required=True,
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
@click.option("--pattern", metavar="NAME|REGEX", help=_PATTERN_HELP + " Default gpt2.")
@threads_option("Threads (byte-level) or processes (word mode) that pre-tokenize and count words.")
@click.option("--scheduler", metavar="SPEC", help=SCHEDULER_HELP)
@click.option("--from-counts", "from_counts", metavar="COUNTS",
              help="Learn from a word-counts file of `embedkit bpe count-words` instead of CORPUS "
                   "(the pre-tokenizer settings come from the file).")
@quiet_option
@json_option("Print the summary as one JSON object.")
@click.pass_context
def learn(ctx, corpus, output, vocab_size, min_frequency, byte_level, lowercase, special_tokens,
          fmt, pattern, threads, scheduler, from_counts, quiet, as_json):
    """Learn a BPE vocabulary from CORPUS files ('-' = stdin, .gz accepted, quoted globs such as
    'shards/*.txt.gz' expanded in sorted order)."""
    from pathlib import Path

    from embedkit.errors import UsageError

    if from_counts is not None:
        if corpus or scheduler:
            raise UsageError("--from-counts replaces CORPUS (and --scheduler)")
        counts, byte_level, lowercase, pattern = _load_counts(ctx, from_counts, byte_level,
                                                              lowercase, pattern)
    elif not corpus:
        raise UsageError("give CORPUS files (or --from-counts COUNTS)")
    if fmt == "subword-nmt" and byte_level:
        raise UsageError("--format subword-nmt needs --no-byte-level (subword-nmt codes are word BPE)")
    pattern = _pattern(pattern) if from_counts is None else pattern
    if pattern is not None and not byte_level:
        raise UsageError("--pattern needs byte-level BPE (word mode splits on whitespace)")
    corpus = _corpus_files(corpus, scheduler and "--scheduler")
    _check_output(output, folder=fmt == "hf")
    _skip_numba_blas_probe()
    if from_counts is not None or scheduler:
        from embedkit.bpe.from_counts import check_vocab_size, tokenizer

        check_vocab_size(vocab_size, byte_level, special_tokens)
        if from_counts is None:
            counts = _count_words(corpus, scheduler, byte_level, lowercase, pattern, threads,
                                  quiet)
        tok = tokenizer(counts, vocab_size, min_frequency=min_frequency, byte_level=byte_level,
                        lowercase=lowercase, special_tokens=special_tokens, pattern=pattern,
                        where=from_counts or ", ".join(corpus))
    else:
        from embedkit.bpe.model import BPETokenizer

        tok = BPETokenizer.train([Path(p) for p in corpus], vocab_size,
                                 min_frequency=min_frequency, byte_level=byte_level,
                                 lowercase=lowercase, special_tokens=special_tokens,
                                 threads=threads, quiet=quiet, pattern=pattern)
    if fmt == "subword-nmt":
        from embedkit.io import atomic_write

        with atomic_write(output, "w") as f:
            f.write(tok.to_codes())
    else:
        tok.save(output)
    n_merges = len(tok.merges)
    if as_json:
        echo_json({"vocab_size": tok.vocab_size, "merges": n_merges, "output": output})
    else:
        click.echo(f"vocabulary of {tok.vocab_size} tokens ({n_merges} merges) written to {output}")
    if tok.vocab_size < vocab_size and not quiet:
        click.echo(f"note: stopped below --vocab-size {vocab_size}: no pair occurs "
                   f"{min_frequency} times or more", err=True)


@bpe.command("count-words")
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="COUNTS",
              help="File to write: a settings line, then WORD<TAB>COUNT lines.")
@click.option("--byte-level/--no-byte-level", default=True, show_default=True,
              help="GPT-2 byte-level words, or whitespace-separated words.")
@click.option("--lowercase", is_flag=True, help="Lowercase text before counting.")
@click.option("--pattern", metavar="NAME|REGEX", help=_PATTERN_HELP + " Default gpt2.")
@threads_option("Threads (byte-level) or processes (word mode) that pre-tokenize and count words.")
@click.option("--scheduler", metavar="SPEC", help=SCHEDULER_HELP)
@quiet_option
@json_option("Print the summary as {words, occurrences, output}.")
def count_words(corpus, output, byte_level, lowercase, pattern, threads, scheduler, quiet,
                as_json):
    """Count the pre-tokenized words of CORPUS files into COUNTS, for `bpe learn --from-counts`.

    Sorted by count descending, then the word's UTF-8 bytes; tab, newline, carriage return,
    backslash and invalid UTF-8 bytes in words are escaped (\\t \\n \\r \\\\ \\xHH)."""
    from embedkit.bpe.formats import wordcounts
    from embedkit.errors import InputError, UsageError
    from embedkit.io import atomic_write

    pattern = _pattern(pattern)
    if pattern is not None and not byte_level:
        raise UsageError("--pattern needs byte-level BPE (word mode splits on whitespace)")
    corpus = _corpus_files(corpus, scheduler and "--scheduler")
    _check_output(output, folder=False)
    _skip_numba_blas_probe()
    counts = _count_words(corpus, scheduler, byte_level, lowercase, pattern, threads, quiet)
    counts = counts if isinstance(counts, dict) else counts.counter()
    if not counts:
        raise InputError(", ".join(corpus), "empty corpus: no words to count")
    with atomic_write(output, "w") as f:
        wordcounts.dump(f, counts, wordcounts.settings(byte_level, lowercase, pattern))
    total = sum(counts.values())
    if as_json:
        echo_json({"words": len(counts), "occurrences": total, "output": output})
    else:
        click.echo(f"{len(counts)} distinct words ({total} occurrences) written to {output}")


def _load(tokdir, pattern=None, allow_special=False):
    from embedkit.bpe.model import BPETokenizer

    return BPETokenizer.load(tokdir, pattern=_pattern(pattern), allow_special=allow_special)


def _lines(paths, exact: bool):
    """(text, what follows its encoding): ``"\\n"``, ``" "`` (a long line goes on in the next
    text) or ``""`` (the input's last line has no newline: the output's has none either).

    ``exact`` (byte-level): every byte is content — a ``\\r`` before the ``\\n``, a BOM — so
    ``decode`` gives the input back byte for byte. Word mode splits on whitespace anyway.
    """
    from embedkit.corpus import iter_lines

    errors = "surrogateescape" if exact else "strict"
    prev = None
    for line in iter_lines(paths, errors=errors, keep_ends=exact):
        if prev is not None:
            yield prev[0], prev[1] or "\n"  # a file's last line, more input follows
        text = line.text
        if not line.end:
            prev = (text, " ")
        elif not exact:
            prev = (text, "\n")
        elif text.endswith("\n"):
            prev = (text[:-1], "\n")
        else:
            prev = (text, "")
    if prev is not None:
        yield prev


def _batches(paths, exact: bool):
    """(texts, ends) batches bounded in count and bytes (``ends`` as in ``_lines``)."""
    texts, ends, size = [], [], 0
    for text, end in _lines(paths, exact):
        texts.append(text)
        ends.append(end)
        size += len(text)
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
        parts.append(end)
    return "".join(parts).encode("utf-8", "surrogateescape")


def _count(tok, batch):
    """Worker: the number of tokens of a batch of (texts, ends)."""
    return tok.count_tokens(batch[0])


@bpe.command()
@click.option("-t", "--tokenizer", "tokdir", required=True, metavar="TOK", help=_TOK_HELP)
@click.argument("files", nargs=-1)
@click.option("--ids", is_flag=True, help="Print token ids instead of pieces.")
@click.option("--count", "count", is_flag=True,
              help="Print the number of tokens of each file and the total, like wc.")
@click.option("--pattern", metavar="NAME|REGEX", help=_PATTERN_HELP + " Default: the tokenizer's.")
@click.option("--allow-special", is_flag=True,
              help="Text that spells a tiktoken special token becomes that token (else it is "
                   "ordinary text).")
@threads_option("Processes that encode batches of lines (output order is kept).")
@click.option("--out-dir", metavar="DIR",
              help="Write one output file per input file into DIR (NAME.ids / NAME.pieces, .gz "
                   "dropped) plus manifest.json; a re-run skips files already done.")
@click.option("--scheduler", metavar="SPEC",
              help="With --out-dir: encode the files on Dask (local:N, tcp://HOST:PORT, sync).")
@quiet_option
@json_option("With --count: one JSON object {files: [{file, tokens}], total}.")
def encode(tokdir, files, ids, count, pattern, allow_special, threads, out_dir, scheduler, quiet,
           as_json):
    """Encode each line of FILES (default stdin): one output line per input line.

    Pieces are printed space-separated (word mode: subword-nmt style, 'fl@@ y@@ ing').
    """
    from embedkit.bpe.parallel import fork_map
    from embedkit.errors import UsageError

    if as_json and not count:
        raise UsageError("--json goes with --count")
    if count and ids:
        raise UsageError("--count and --ids exclude each other")
    if scheduler and not out_dir:
        raise UsageError("--scheduler goes with --out-dir (one output file per input file)")
    if out_dir:
        if count:
            raise UsageError("--count and --out-dir exclude each other")
        from .bpe_shards import encode_to_dir

        encode_to_dir(tokdir, files, ids, pattern, allow_special, threads, out_dir, scheduler,
                      quiet)
        return
    files = files or ("-",)
    _check_inputs(files)
    _skip_numba_blas_probe()
    tok = _load(tokdir, pattern, allow_special)
    out = sys.stdout.buffer
    if threads > 1 and any(f == "-" or os.path.getsize(f) > _BATCH_BYTES for f in files):
        tok.warm()  # load the kernel once, before the workers are forked
    if count:
        totals = [(f, sum(fork_map(_count, _batches([f], tok.byte_level), threads, tok)))
                  for f in files]
        total = sum(n for _, n in totals)
        if as_json:
            echo_json({"files": [{"file": f, "tokens": n} for f, n in totals], "total": total})
        else:
            width = len(str(total))
            for f, n in totals:
                click.echo(f"{n:>{width}} {f}")
            if len(totals) > 1:
                click.echo(f"{total:>{width}} total")
        return
    tasks = ((batch, ids) for batch in _batches(files, tok.byte_level))
    for data in fork_map(_render, tasks, threads, tok):
        out.write(data)
    out.flush()


@bpe.command()
@click.option("-t", "--tokenizer", "tokdir", required=True, metavar="TOK", help=_TOK_HELP)
@click.argument("files", nargs=-1)
@quiet_option
def decode(tokdir, files, quiet):
    """Decode lines of space-separated ids from FILES (default stdin) back to text."""
    from embedkit.corpus import iter_lines
    from embedkit.errors import InputError

    files = files or ("-",)
    _check_inputs(files)
    tok = _load(tokdir)
    out = sys.stdout.buffer
    v = tok.vocab_size
    chunks, size = [], 0
    for line in iter_lines(files, keep_ends=True):
        text = line.text.lstrip("\ufeff") if line.lineno == 1 else line.text
        try:
            ids = [int(x) for x in text.split()]
        except ValueError:
            bad = next(x for x in text.split() if not x.lstrip("-").isdigit())
            raise InputError(line.path, f"not a token id: {bad[:20]!r}", line.lineno) from None
        bad = [i for i in ids if not 0 <= i < v]
        if bad:
            raise InputError(line.path, f"id {bad[0]} is not in the vocabulary (0..{v - 1})",
                             line.lineno)
        chunks.append(tok.decode_bytes(ids))
        size += len(chunks[-1])
        if text.endswith("\n"):
            chunks.append(b"\n")
        if len(chunks) >= _BATCH_LINES or size >= _BATCH_BYTES:
            out.write(b"".join(chunks))
            chunks, size = [], 0
    out.write(b"".join(chunks))
    out.flush()


_TARGETS = ("tokenizer.json", "tiktoken", "hf-dir")


@bpe.command()
@click.argument("tok", metavar="TOK")
@click.argument("out", metavar="OUT")
@click.option("--to", "to", type=click.Choice(_TARGETS),
              help="Format to write (default from OUT: *.json → tokenizer.json, *.tiktoken → "
                   "tiktoken, else hf-dir, a TOKDIR).")
@click.option("--pattern", metavar="NAME|REGEX", help=_PATTERN_HELP + " Default: the tokenizer's.")
@quiet_option
def convert(tok, out, to, pattern, quiet):
    """Write tokenizer TOK as another tool's file: HF tokenizer.json, a .tiktoken rank file
    (tiktoken needs the pattern and special tokens given in code), or a TOKDIR."""
    if to is None:
        to = "tokenizer.json" if out.endswith(".json") else "tiktoken" if out.endswith(".tiktoken") \
            else "hf-dir"
    _check_output(out, folder=to == "hf-dir")
    t = _load(tok, pattern)
    t.export(out, to)
    click.echo(f"{t.vocab_size} tokens ({len(t.merges)} merges) written to {out} as {to}")
    if to == "tiktoken" and not quiet:
        specials = t.special_tokens
        click.echo("note: a .tiktoken file holds no pattern" + (
            f" nor special tokens ({len(specials)}, e.g. {specials[0]!r} = id "
            f"{t.token_to_id(specials[0])}): give them to tiktoken.Encoding" if specials else
            ": give it to tiktoken.Encoding"), err=True)
