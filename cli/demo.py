"""``embedkit demo``: the README's first command — BPE, vectors and neighbours, no downloads.

The built-in corpus is English every Python installation has: the ``pydoc_data.topics`` help texts
and the docstrings of the standard library's source files (about 350k words), read as text (no
module is imported, so nothing runs). Steps: corpus -> BPE vocabulary -> vectors -> neighbours.
"""
from __future__ import annotations

import os
import re
import sys
import time

import click

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_PROBES = ("file", "list", "error", "thread", "string", "socket", "number", "unicode")
_SKIP_DIRS = ("site-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo")


def stdlib_texts():
    """Paragraphs of English: pydoc topics, then triple-quoted strings of stdlib ``.py`` files."""
    import sysconfig

    from pydoc_data import topics

    yield from topics.topics.values()
    root = sysconfig.get_paths()["stdlib"]
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    source = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            yield from source.split('"""')[1::2]


def tokenized_lines(texts):
    """Lower-cased word tokens, one paragraph per line (what ``embedkit train`` expects)."""
    for text in texts:
        for para in text.split("\n\n"):
            words = _WORD.findall(para.lower())
            if len(words) >= 3:
                yield " ".join(words)


def _step(msg: str, quiet: bool) -> None:
    if not quiet:
        click.echo(f"[demo] {msg}", err=True)


@click.command()
@click.option("--corpus", type=click.Path(dir_okay=False), default=None,
              help="Your own text file instead of the built-in standard-library corpus.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder for the corpus, tokenizer and vectors (default: a new temp folder).")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars or step messages.")
def demo(corpus, out, threads, seed, quiet):
    """Learn a BPE vocabulary and word vectors on a corpus every Python has, then show neighbours.

    Takes well under a minute on 2 cores (about 5 s here). Prints where the model is and how to
    query it.
    """
    import tempfile
    from pathlib import Path

    from embedkit.errors import InputError, UsageError

    if not 1 <= threads <= 1024:  # BPE learning forks one process per thread
        raise UsageError(f"--threads must be between 1 and 1024 (got {threads})")
    if out is None:
        out = tempfile.mkdtemp(prefix="embedkit-demo-")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    text_path = folder / "corpus.txt"
    from embedkit.io import atomic_write
    from embedkit.progress import bar

    if corpus is None:
        _step("gathering the built-in corpus (pydoc topics + standard-library docstrings)", quiet)
        source = stdlib_texts()
    else:
        from embedkit.corpus import iter_lines

        _step(f"reading {corpus}", quiet)
        source = (line.text for line in iter_lines([corpus], errors="replace"))
    words = 0
    with atomic_write(text_path, "w") as f, bar(None, "corpus", "words", quiet) as b:
        for line in tokenized_lines(source):
            f.write(line + "\n")
            n = line.count(" ") + 1
            words += n
            b.update(n)
    if words < 1000:
        raise InputError(corpus or "built-in corpus", f"only {words} words: too small for a demo")
    _step(f"corpus: {words:,} words -> {text_path}", quiet)

    from embedkit import BPETokenizer, train

    _step("learning a BPE vocabulary (4,000 tokens)", quiet)
    tok = BPETokenizer.train([str(text_path)], 4000, byte_level=False, threads=threads, quiet=quiet)
    tok_dir = folder / "tokenizer"
    tok.save(tok_dir)
    example = "unbelievably tokenization"
    _step(f"BPE pieces of {example!r}: {' '.join(tok.subword_text([example]))}", quiet)

    subwords = "bpe" if _bpe_subwords_available() else "char"
    _step(f"training skip-gram vectors (dim 100, 5 epochs, {subwords} subwords, "
          f"{threads} threads)", quiet)
    kw = {"tokenizer": str(tok_dir)} if subwords == "bpe" else {"buckets": 200_000}
    vecs = train([str(text_path)], model="skipgram", dim=100, epochs=5, min_count=3,
                 threads=threads, seed=seed, subwords=subwords, quiet=quiet, **kw)
    model_path = folder / "vectors.ekv"
    vecs.save(model_path)
    vecs.save(folder / "vectors.vec", format="vec")
    click.echo(f"{len(vecs):,} words x {vecs.dim} dims trained on {words:,} words in "
               f"{time.perf_counter() - t0:.0f} s; model: {model_path}\n")
    # Misspellings get good vectors from char n-grams; BPE pieces of a 4k vocabulary are too
    # coarse for that on this small corpus, so the OOV probe is shown only with char subwords.
    oov = ["tokenizaton"] if subwords == "char" else []
    for probe in [w for w in _PROBES if w in vecs][:6] + oov:
        try:
            near = vecs.most_similar(probe, k=6)
        except KeyError:
            continue
        tag = "" if probe in vecs else " (not in the vocabulary: built from subwords)"
        click.echo(f"{probe}{tag}: " + ", ".join(f"{w} {s:.2f}" for w, s in near))
    click.echo(f"\nTry: embedkit nn {model_path} socket\n"
               f"     embedkit analogy {model_path} list append dict\n"
               f"     embedkit vectors {model_path} unseenword")
    sys.stdout.flush()


def _bpe_subwords_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("embedkit.wordvec.bpe_subwords") is not None
