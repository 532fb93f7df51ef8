"""``embedkit encoder train / embed / fill / generate``: a thin layer over ``embedkit.encoder``.

Heavy modules (NumPy, Numba) are imported inside the commands, after ``--threads`` has set the
BLAS thread count through the environment (it must be set before NumPy loads OpenBLAS).
"""
from __future__ import annotations

import os
import sys

import click

from .common import dumps, echo_json, json_option, quiet_option, threads_option

_SEED = click.IntRange(0, 2**63 - 1)


def _threads(threads: int | None) -> None:
    if threads is not None and threads >= 1 and "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


@click.group()
def encoder():
    """Train and query a small transformer encoder (NumPy, no framework)."""


@encoder.command()
@click.argument("corpus", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-t", "--tokenizer", "tokdir", required=True, type=click.Path(),
              help="TOKDIR from `embedkit bpe learn` (its pieces are the encoder's inputs).")
@click.option("-o", "--output", "encdir", required=True, type=click.Path(file_okay=False),
              help="ENCDIR: checkpoints and the final model go here.")
@click.option("--objective", type=click.Choice(["mlm", "clm", "contrastive", "mlm+contrastive"]),
              default=None, help="mlm: blank filling (BERT); clm: next piece (causal); contrastive: "
              "pick the true neighbour among the batch (CPC / InfoNCE); mlm+contrastive: "
              "L_MLM + weight * L_CPC.  [default: mlm]")
@click.option("--layers", type=int, default=None, help="Transformer layers.  [default: 2]")
@click.option("--dim", type=int, default=None, help="Model dimension.  [default: 128]")
@click.option("--heads", type=int, default=None, help="Attention heads (must divide --dim).  [default: 4]")
@click.option("--ffn", type=int, default=None, help="Feed-forward dimension.  [default: 512]")
@click.option("--max-len", type=int, default=None, help="Pieces per training window.  [default: 128]")
@click.option("--positions", type=click.Choice(["sinusoidal", "learned"]), default=None,
              help="Position encodings.  [default: sinusoidal]")
@click.option("--batch-size", type=int, default=None,
              help="Windows per step; contrastive: pairs per step = N candidates.  [default: 32]")
@click.option("--pair", type=click.Choice(["adjacent-lines", "adjacent-windows"]), default=None,
              help="Contrastive pairs: a line and the next, or the two sides of a random cut of "
              "a line.  [default: adjacent-lines]")
@click.option("--negatives", type=click.Choice(["in-batch"]), default=None,
              help="Contrastive distractors: the other pairs' y's.  [default: in-batch]")
@click.option("--pool", type=click.Choice(["mean", "first"]), default=None,
              help="Contrastive feature: mean of the pieces' last states, or the first piece's.  "
              "[default: mean]")
@click.option("--projection", type=int, default=None,
              help="Contrastive linear head D -> DIM (1..--dim), used in training only.  "
              "[default: none]")
@click.option("--score", type=click.Choice(["dot", "cosine"]), default=None,
              help="Contrastive score: inner product, or cosine of the features.  [default: dot]")
@click.option("--temperature", type=float, default=None,
              help="Contrastive scores are divided by it (> 0).  [default: 1.0]")
@click.option("--contrastive-weight", type=float, default=None,
              help="mlm+contrastive: weight of L_CPC.  [default: 1.0]")
@click.option("--steps", type=int, default=None, help="Training steps.  [default: 1000]")
@click.option("--epochs", type=float, default=None, help="Passes over the corpus pieces (contrastive: over the training pairs) instead of "
              "--steps.")
@click.option("--lr", type=float, default=None, help="Peak learning rate.  [default: 0.001]")
@click.option("--warmup", type=int, default=None, help="Linear warmup steps.  [default: 200]")
@click.option("--seed", type=_SEED, default=None, help="Random seed.  [default: 0]")
@threads_option("Threads (BLAS and kernels).")
@click.option("--init-embeddings", "init_vectors", type=click.Path(),
              help="Start piece embeddings from vectors trained on the same TOKDIR pieces.")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints.  [default: 500]")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in ENCDIR (bit-exact with --threads 1).")
@json_option("Print the summary as one JSON object.")
@quiet_option
def train(corpus, tokdir, encdir, threads, init_vectors, resume, as_json, quiet, steps, epochs,
          **options):
    """Pretrain an encoder on CORPUS files ('-' = stdin) and print a summary: steps, tokens/s,
    held-out loss and the pieces' unigram entropy (nats). Every 20th line is held out."""
    _threads(threads)
    from embedkit.bpe.model import BPETokenizer
    from embedkit.encoder import trainer

    tok = BPETokenizer.load(tokdir)
    summary = trainer.train(list(corpus), tok, encdir, steps=steps, epochs=epochs,
                            threads=threads, init_vectors=init_vectors, resume=resume,
                            quiet=quiet, **options)
    keys = ("steps", "tokens_per_s", "heldout_loss", "unigram_entropy")
    if "n" in summary:
        keys += ("n", "mi_bound", "heldout_top1", "train_cpc", "train_mi_bound")
        keys += ("heldout_mlm_loss",) if "heldout_mlm_loss" in summary else ()
    if as_json:
        echo_json({k: summary[k] for k in keys})
        return
    if "n" in summary:
        _print_contrastive(summary)
        return
    held = summary["heldout_loss"]
    what = "masked pieces" if summary["objective"] == "mlm" else "next piece"
    click.echo(f"steps            {summary['steps']}")
    click.echo(f"tokens/s         {summary['tokens_per_s']:.0f}")
    click.echo("held-out loss    " + (f"{held:.4f} nats ({what})" if held is not None
                                      else f"n/a ({summary['heldout_note']})"))
    click.echo(f"unigram entropy  {summary['unigram_entropy']:.4f} nats")


def _print_contrastive(s: dict) -> None:
    """The contrastive summary: N, L_CPC and the bound ln N - L_CPC, training and held-out."""
    def nats(x, fmt=".4f"):
        return "n/a" if x is None else f"{x:{fmt}}"

    click.echo(f"steps              {s['steps']}")
    click.echo(f"tokens/s           {s['tokens_per_s']:.0f}")
    click.echo(f"N                  {s['n']} (the true y and {s['n'] - 1} distractors)")
    click.echo(f"train L_CPC        {nats(s['train_cpc'])} nats, ln N - L_CPC "
               f"{nats(s['train_mi_bound'])} nats (mean of the last steps)")
    if s["heldout_loss"] is None:
        click.echo(f"held-out L_CPC     n/a ({s['heldout_note']})")
    else:
        click.echo(f"held-out L_CPC     {nats(s['heldout_loss'])} nats, ln N - L_CPC "
                   f"{nats(s['mi_bound'])} nats, top-1 {nats(s['heldout_top1'], '.3f')}")
    if "heldout_mlm_loss" in s:
        click.echo(f"held-out MLM loss  {nats(s['heldout_mlm_loss'])} nats (masked pieces)")
    click.echo(f"unigram entropy    {s['unigram_entropy']:.4f} nats")


def _write_npy(arr) -> None:
    """``.npy`` bytes to stdout through plain ``write`` calls: ``np.save`` on a real file uses
    C-level ``tofile``, which turns a reader that stops early (``| head -c``) into an OSError
    instead of the BrokenPipeError that every command treats as a normal end."""
    import numpy as np

    class Stream:
        write = sys.stdout.buffer.write

    np.save(Stream(), arr)
    sys.stdout.buffer.flush()


def _read_texts(files):
    """Whole lines of the inputs (a line cut by the corpus reader is joined back)."""
    from embedkit.corpus import iter_lines

    parts = []
    for line in iter_lines(files):
        parts.append(line.text)
        if line.end:
            yield "".join(parts)
            parts = []
    if parts:
        yield "".join(parts)


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_CHUNK_LINES = 256  # lines per Encoder.embed call: it batches them by length


def _embedded(enc, texts, layer, pool, progress=None):
    """(pieces, vectors) of each text in order. A line's vectors depend (in float rounding: BLAS
    kernels round by matrix size) on the lines batched with it; lines are batched within one
    file only, so one output per input file (``--out-dir``) concatenates to exactly the output
    of the same files in one run, and inputs cut at multiples of ``_CHUNK_LINES`` lines give
    exactly the vectors of the whole input."""
    for chunk in _chunks(texts, _CHUNK_LINES):
        vecs = enc.embed(chunk, layer=layer, pool=pool)
        for text, v in zip(chunk, vecs):
            yield enc.pieces(text), v
        if progress is not None:
            progress.update(len(chunk))


def _jsonl(pieces, v, pool) -> str:
    import numpy as np

    key = "vector" if pool == "mean" else "vectors"
    return dumps({"pieces": pieces, key: np.round(v.astype(np.float64), 6).tolist()}) + "\n"


def _save_rows(f, blocks, dim: int) -> None:
    """The bytes ``np.save`` writes for the rows of ``blocks`` stacked, without holding them all:
    the header is written for 0 rows and rewritten in place with the count at the end (NumPy
    pads the header so that the row count can grow in place). ``f``: a seekable binary file."""
    import numpy as np
    from numpy.lib import format as npf

    def header(n):
        npf.write_array_header_1_0(f, {"descr": npf.dtype_to_descr(np.dtype(np.float32)),
                                       "fortran_order": False, "shape": (n, dim)})

    start = f.tell()
    header(0)
    body, n = f.tell(), 0
    for block in blocks:
        rows = np.ascontiguousarray(block, np.float32).reshape(-1, dim)
        f.write(rows.tobytes())
        n += len(rows)
    end = f.tell()
    f.seek(start)
    header(n)
    assert f.tell() == body, "the .npy header changed length"
    f.seek(end)


def _write_embedded(f, enc, records, pool, fmt) -> dict:
    """Write the (pieces, vectors) ``records`` into the binary file ``f`` (seekable for npy) as
    ``encoder embed -o`` does; the counts of a manifest entry (rows: vectors written)."""
    counted = {"lines": 0, "rows": 0}

    def counting():
        for pieces, v in records:
            counted["lines"] += 1
            counted["rows"] += 1 if pool == "mean" else len(v)
            yield pieces, v

    if fmt == "npy":
        _save_rows(f, (v for _, v in counting()), enc.dim)
    else:
        for pieces, v in counting():
            f.write(_jsonl(pieces, v, pool).encode("utf-8"))
    return counted


_WORKER_ENCODERS: dict = {}


def _worker_encoder(spec, layer, pool):
    """The encoder ``spec`` = (path, sha256 of its files), loaded once per process (only the
    latest is kept). Each call embeds a line: the first loads the kernels, and a bad
    ``layer``/``pool`` fails before any file is read."""
    enc = _WORKER_ENCODERS.get(spec)
    if enc is None:
        from embedkit.encoder.model import Encoder

        enc = Encoder.load(spec[0])
        _WORKER_ENCODERS.clear()
        _WORKER_ENCODERS[spec] = enc
    enc.embed(["warm up"], layer=layer, pool=pool)
    return enc


def _embed_shard(spec, layer, pool, fmt, threads, path, f) -> dict:
    """Task: the vectors of one input file into ``f``, as ``encoder embed FILE -o`` writes them."""
    from embedkit.encoder.threads import set_threads

    enc = _worker_encoder(spec, layer, pool)
    set_threads(threads)
    return _write_embedded(f, enc, _embedded(enc, _read_texts([path]), layer, pool), pool, fmt)


def _embed_to_dir(encdir, files, fmt, layer, pool, threads, out_dir, scheduler, quiet) -> None:
    import functools

    from . import shards

    files, outs = shards.check(files, out_dir, "." + fmt)
    spec = (os.path.abspath(encdir), shards.folder_digest(encdir))
    head = {"format": "embedkit-embedded-shards", "version": 1, "encoder": spec[0],
            "encoder_sha256": spec[1], "layer": layer, "pool": pool, "output_format": fmt}
    shards.run(files, outs, out_dir, head=head,
               task=functools.partial(_embed_shard, spec, layer, pool, fmt),
               warm=functools.partial(_worker_encoder, spec, layer, pool), total="rows",
               threads=threads, scheduler=scheduler, quiet=quiet, desc="embedding")


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "npy"]), default="jsonl", show_default=True)
@click.option("--layer", type=int, default=-1, show_default=True,
              help="0 = piece+position embeddings, 1..L = layer outputs, -1 = last.")
@click.option("--pool", type=click.Choice(["none", "mean"]), default="none", show_default=True,
              help="none: a vector per piece; mean: one per line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default stdout).")
@click.option("--out-dir", metavar="DIR",
              help="Write one output file per input file into DIR (NAME.npy / NAME.jsonl, .gz "
                   "dropped) plus manifest.json; a re-run skips files already done.")
@click.option("--scheduler", metavar="SPEC",
              help="With --out-dir: embed the files on Dask (local:N, tcp://HOST:PORT, sync).")
@threads_option("Threads.")
@quiet_option
def embed(encdir, files, fmt, layer, pool, output, out_dir, scheduler, threads, quiet):
    """Contextual vectors of each line of FILES (default stdin): JSON lines
    {"pieces": [...], "vectors": [[...], ...]} (with --pool mean: "vector": [...]), or one .npy
    array (rows = pieces of all lines in order, or lines with --pool mean)."""
    _threads(threads)
    from embedkit.errors import UsageError

    if scheduler and not out_dir:
        raise UsageError("--scheduler goes with --out-dir (one output file per input file)")
    if out_dir:
        if output is not None:
            raise UsageError("--out-dir and -o exclude each other")
        _embed_to_dir(encdir, files, fmt, layer, pool, threads, out_dir, scheduler, quiet)
        return
    if fmt == "npy" and output is None and sys.stdout.isatty():
        raise UsageError("--format npy writes binary: give -o FILE or redirect stdout")
    import numpy as np

    from embedkit.encoder.model import Encoder
    from embedkit.encoder.threads import set_threads
    from embedkit.io import atomic_write
    from embedkit.progress import bar

    set_threads(threads)
    enc = Encoder.load(encdir)
    with bar(None, "embedding", "lines", quiet) as progress:
        records = (r for path in list(files) or ["-"]  # each file's lines batched among themselves
                   for r in _embedded(enc, _read_texts([path]), layer, pool, progress))
        if output is not None:
            with atomic_write(output, "w+b") as f:
                _write_embedded(f, enc, records, pool, fmt)
        elif fmt == "npy":
            rows = [v.reshape(-1, enc.dim) for _, v in records]
            _write_npy(np.concatenate(rows) if rows else np.zeros((0, enc.dim), np.float32))
        else:
            for pieces, v in records:
                sys.stdout.write(_jsonl(pieces, v, pool))


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("text")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Candidates per [MASK].")
@json_option("One JSON object: {\"masks\": [[[piece, p], ...], ...]}.")
@quiet_option
def fill(encdir, text, k, as_json, quiet):
    """The most likely pieces for each [MASK] in TEXT (mlm encoders): "piece"<TAB>probability.

    Each piece is printed as a JSON string, so " cat" (a word after a space) and "cat" (glued to
    what comes before) stay apart, and a newline or tab in a piece cannot break the line.
    """
    from embedkit.encoder.model import Encoder

    # special pieces ([PAD], [MASK]...) never fill a blank: with a large -k they would be listed
    # with probability 0 and print as empty text
    result = [[(piece, p) for piece, p in cands if p > 0] for cands in Encoder.load(encdir).fill(text, k)]
    if as_json:
        echo_json({"masks": result})
        return
    for n, cands in enumerate(result, 1):
        if len(result) > 1:
            click.echo(f"[MASK] {n}")
        for piece, p in cands:
            click.echo(f"{dumps(piece)}\t{p:.4f}")


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("prompt")
@click.option("--tokens", type=int, default=30, show_default=True, help="At most this many new pieces.")
@click.option("--temperature", type=float, default=0.8, show_default=True, help="0 = always the most likely piece.")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@json_option("One JSON object: {\"text\": ...}.")
@quiet_option
def generate(encdir, prompt, tokens, temperature, seed, as_json, quiet):
    """Continue PROMPT with pieces sampled from a clm encoder (stops at the end of a line: the
    continuation never holds a newline)."""
    import math

    from embedkit.errors import UsageError

    if not math.isfinite(temperature) or temperature < 0:
        raise UsageError(f"--temperature must be a number >= 0 (got {temperature})")
    if tokens < 0:
        raise UsageError(f"--tokens must not be negative (got {tokens})")
    from embedkit.encoder.model import Encoder

    text = Encoder.load(encdir).generate(prompt, tokens, temperature, seed)
    if text.startswith(prompt):  # a piece can hold a newline with more after it: cut there
        text = prompt + text[len(prompt):].split("\n", 1)[0]
    if as_json:
        echo_json({"text": text})
    else:
        click.echo(text)


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("train", type=click.Path(allow_dash=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="MODEL file to write (kind encoder-classifier; `classify test/predict` read it).")
@click.option("--valid", type=click.Path(allow_dash=True), help="Labelled lines: accuracy after each epoch.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Passes over TRAIN (with --resume: the new total).  [default: 3]")
@click.option("--lr", type=float, default=None, help="Peak learning rate (AdamW).  [default: 5e-05]")
@click.option("--pool", type=click.Choice(["mean", "first"]), default=None,
              help="Head input: mean of the last layer's piece states, or the first piece's.  "
              "[default: mean]")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Lines per step.  [default: 32]")
@click.option("--warmup", type=click.IntRange(0), default=None,
              help="Linear warmup steps.  [default: a tenth of all steps]")
@click.option("--label-prefix", default=None,
              help="Prefix of label words in fastText-style lines.  [default: __label__]")
@click.option("--lowercase", is_flag=True, default=None,
              help="Lower-case the text (also when the model predicts).")
@threads_option("Threads (BLAS and kernels).")
@click.option("--seed", type=_SEED, default=None,
              help="Seed of the head and the batch order.  [default: 0]")
@click.option("--checkpoint-every", type=click.IntRange(1), default=None,
              help="Steps between checkpoints (MODEL.ckpt; also after every epoch).  "
              "[default: 500]")
@click.option("--resume", is_flag=True,
              help="Continue from MODEL.ckpt (bit-exact with --threads 1); settings not given "
              "are the checkpoint's.")
@json_option("Print the summary as one JSON object.")
@quiet_option
def finetune(encdir, train, output, valid, threads, resume, as_json, quiet, **options):
    """Fine-tune the encoder in ENCDIR end to end with a linear softmax head on its pooled output,
    on TRAIN's labelled lines ('LABEL<TAB>text' or '__label__LABEL text'). Lines longer than the
    encoder's max length are cut to it. MODEL is rewritten after every epoch; MODEL.ckpt beside
    it holds the training state (`--resume` continues from it; delete it when done)."""
    _threads(threads)
    from embedkit.classify.finetune import finetune as run

    def report(rec):
        if valid is not None and not as_json:
            click.echo(f"epoch {rec['epoch']} valid accuracy {rec['valid_accuracy']:.4f}")

    summary = run(encdir, train, output, valid=valid, threads=threads, resume=resume,
                  quiet=quiet, on_epoch=report, **options)
    if not quiet:
        for w in summary["warnings"]:
            click.echo(f"embedkit: warning: {w}", err=True)
    if as_json:
        echo_json(summary)
        return
    last = summary["history"][-1]
    click.echo(f"model {summary['model']} ({len(summary['labels'])} labels, {summary['n_train']} "
               f"lines, {summary['lines_truncated']} cut to {summary['max_len']} pieces)")
    click.echo(f"steps {summary['steps']} (warmup {summary['warmup']})")
    click.echo(f"train accuracy {last['train_accuracy']:.4f}")
    if summary["valid_accuracy"] is not None:
        click.echo(f"valid accuracy {summary['valid_accuracy']:.4f}")
