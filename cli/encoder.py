"""``embedkit encoder train / embed / fill / generate``: a thin layer over ``embedkit.encoder``.

Heavy modules (NumPy, Numba) are imported inside the commands, after ``--threads`` has set the
BLAS thread count through the environment (it must be set before NumPy loads OpenBLAS).
"""
from __future__ import annotations

import json
import os
import sys

import click


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
@click.option("--objective", type=click.Choice(["mlm", "clm"]), default=None,
              help="mlm: blank filling (BERT); clm: next piece (causal).  [default: mlm]")
@click.option("--layers", type=int, default=None, help="Transformer layers.  [default: 2]")
@click.option("--dim", type=int, default=None, help="Model dimension.  [default: 128]")
@click.option("--heads", type=int, default=None, help="Attention heads (must divide --dim).  [default: 4]")
@click.option("--ffn", type=int, default=None, help="Feed-forward dimension.  [default: 512]")
@click.option("--max-len", type=int, default=None, help="Pieces per training window.  [default: 128]")
@click.option("--positions", type=click.Choice(["sinusoidal", "learned"]), default=None,
              help="Position encodings.  [default: sinusoidal]")
@click.option("--batch-size", type=int, default=None, help="Windows per step.  [default: 32]")
@click.option("--steps", type=int, default=None, help="Training steps.  [default: 1000]")
@click.option("--epochs", type=float, default=None, help="Passes over the corpus pieces instead of --steps.")
@click.option("--lr", type=float, default=None, help="Peak learning rate.  [default: 0.001]")
@click.option("--warmup", type=int, default=None, help="Linear warmup steps.  [default: 200]")
@click.option("--seed", type=int, default=None, help="Random seed.  [default: 0]")
@click.option("--threads", type=int, default=None, help="Threads (BLAS and kernels).  [default: all cores]")
@click.option("--init-embeddings", "init_vectors", type=click.Path(),
              help="Start piece embeddings from vectors trained on the same TOKDIR pieces.")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints.  [default: 500]")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in ENCDIR (bit-exact with --threads 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
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
    if as_json:
        click.echo(json.dumps({k: summary[k] for k in keys}))
        return
    held = summary["heldout_loss"]
    what = "masked pieces" if summary["objective"] == "mlm" else "next piece"
    click.echo(f"steps            {summary['steps']}")
    click.echo(f"tokens/s         {summary['tokens_per_s']:.0f}")
    click.echo("held-out loss    " + (f"{held:.4f} nats ({what})" if held is not None
                                      else "n/a (corpus has fewer than 20 lines)"))
    click.echo(f"unigram entropy  {summary['unigram_entropy']:.4f} nats")


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


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "npy"]), default="jsonl", show_default=True)
@click.option("--layer", type=int, default=-1, show_default=True,
              help="0 = piece+position embeddings, 1..L = layer outputs, -1 = last.")
@click.option("--pool", type=click.Choice(["none", "mean"]), default="none", show_default=True,
              help="none: a vector per piece; mean: one per line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default stdout).")
@click.option("--threads", type=int, default=None, help="Threads.  [default: all cores]")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def embed(encdir, files, fmt, layer, pool, output, threads, quiet):
    """Contextual vectors of each line of FILES (default stdin): JSON lines
    {"pieces": [...], "vectors": [[...], ...]} (with --pool mean: "vector": [...]), or one .npy
    array (rows = pieces of all lines in order, or lines with --pool mean)."""
    _threads(threads)
    from embedkit.errors import UsageError

    if fmt == "npy" and output is None and sys.stdout.isatty():
        raise UsageError("--format npy writes binary: give -o FILE or redirect stdout")
    import numpy as np

    from embedkit.encoder.model import Encoder
    from embedkit.encoder.threads import set_threads
    from embedkit.io import atomic_write
    from embedkit.progress import bar

    set_threads(threads)
    enc = Encoder.load(encdir)
    texts = _read_texts(list(files) or ["-"])

    def results():
        with bar(None, "embedding", "lines", quiet) as progress:
            for chunk in _chunks(texts, 256):
                vecs = enc.embed(chunk, layer=layer, pool=pool)
                for text, v in zip(chunk, vecs):
                    yield enc.pieces(text), v
                progress.update(len(chunk))

    if fmt == "npy":
        rows = [v.reshape(-1, enc.dim) for _, v in results()]
        arr = np.concatenate(rows) if rows else np.zeros((0, enc.dim), np.float32)
        if output is None:
            np.save(sys.stdout.buffer, arr)
        else:
            with atomic_write(output, "wb") as f:
                np.save(f, arr)
        return

    def lines():
        for pieces, v in results():
            key = "vector" if pool == "mean" else "vectors"
            yield json.dumps({"pieces": pieces, key: np.round(v.astype(np.float64), 6).tolist()},
                             ensure_ascii=False) + "\n"

    if output is None:
        for line in lines():
            sys.stdout.write(line)
    else:
        with atomic_write(output, "w") as f:
            f.writelines(lines())


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("text")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Candidates per [MASK].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {\"masks\": [[[piece, p], ...], ...]}.")
def fill(encdir, text, k, as_json):
    """The most likely pieces for each [MASK] in TEXT (mlm encoders): piece<TAB>probability."""
    from embedkit.encoder.model import Encoder

    result = Encoder.load(encdir).fill(text, k)
    if as_json:
        click.echo(json.dumps({"masks": result}, ensure_ascii=False))
        return
    for n, cands in enumerate(result, 1):
        if len(result) > 1:
            click.echo(f"[MASK] {n}")
        for piece, p in cands:
            click.echo(f"{piece.strip() or repr(piece)}\t{p:.4f}")


@encoder.command()
@click.argument("encdir", type=click.Path())
@click.argument("prompt")
@click.option("--tokens", type=int, default=30, show_default=True, help="At most this many new pieces.")
@click.option("--temperature", type=float, default=0.8, show_default=True, help="0 = always the most likely piece.")
@click.option("--seed", type=int, default=0, show_default=True)
def generate(encdir, prompt, tokens, temperature, seed):
    """Continue PROMPT with pieces sampled from a clm encoder (stops at the end of a line)."""
    from embedkit.encoder.model import Encoder

    click.echo(Encoder.load(encdir).generate(prompt, tokens, temperature, seed))
