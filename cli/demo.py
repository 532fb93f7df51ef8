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

from .common import echo_json, json_option, quiet_option, threads_option

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
              help="Folder for the corpus, tokenizer and vectors: new, empty or an earlier demo's "
                   "(default: a new temp folder).")
@threads_option("Threads for BPE counting and training.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@quiet_option
@json_option("Print the model's path and the neighbours as one JSON object.")
def demo(corpus, out, threads, seed, quiet, as_json):
    """Learn a BPE vocabulary and word vectors on a corpus every Python has, then show neighbours.

    Takes well under a minute on 2 cores (about 5 s here). Prints where the model is and how to
    query it. Every output appears at the end, together: a bad corpus or Ctrl-C leaves none.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from embedkit.errors import UsageError
    from embedkit.io import atomic_dir, check_dir

    made = out is None
    if made:
        out = tempfile.mkdtemp(prefix="embedkit-demo-")
    folder = Path(out)
    try:
        check_dir(folder, _MARKER)
        if corpus is not None and folder.is_dir() and os.path.exists(corpus) and any(
                os.path.samefile(corpus, folder / n) for n in _OUTPUTS if (folder / n).exists()):
            raise UsageError(f"--corpus {corpus} is one of the files the demo writes in {folder}")
        with atomic_dir(folder, _MARKER) as stage:
            vecs, words, t0 = _build(stage, corpus, threads, seed, quiet)
    except BaseException:
        if made:
            shutil.rmtree(folder, ignore_errors=True)  # the temp folder this run created
        raise
    model_path = folder / "vectors.ekv"
    # Misspellings get good vectors from char n-grams; BPE pieces of a 4k vocabulary are too
    # coarse for that on this small corpus, so the OOV probe is shown only with char subwords.
    oov = ["tokenizaton"] if vecs.scheme is not None and vecs.scheme.kind == "char" else []
    near = {}
    for probe in [w for w in _PROBES if w in vecs][:6] + oov:
        try:
            near[probe] = vecs.most_similar(probe, k=6)
        except KeyError:
            continue
    if as_json:
        echo_json({"model": str(model_path), "words": len(vecs), "dim": vecs.dim,
                   "corpus_words": words, "neighbours": {
                       p: [{"word": w, "cosine": round(c, 6)} for w, c in r] for p, r in near.items()}})
        return
    click.echo(f"{len(vecs):,} words x {vecs.dim} dims trained on {words:,} words in "
               f"{time.perf_counter() - t0:.0f} s; model: {model_path}\n")
    for probe, r in near.items():
        tag = "" if probe in vecs else " (not in the vocabulary: built from subwords)"
        click.echo(f"{probe}{tag}: " + ", ".join(f"{w} {s:.2f}" for w, s in r))
    click.echo(f"\nTry: embedkit nn {model_path} socket\n"
               f"     embedkit analogy {model_path} list append dict\n"
               f"     embedkit vectors {model_path} unseenword")
    sys.stdout.flush()


_MARKER = "vectors.ekv"  # an existing --out holding it is an earlier demo's folder
_OUTPUTS = ("corpus.txt", "vectors.ekv", "vectors.vec")


def _build(stage, corpus, threads, seed, quiet):
    """corpus -> tokenizer -> vectors, all written into the staging folder ``stage``."""
    from embedkit.errors import InputError
    from embedkit.io import atomic_write
    from embedkit.progress import bar

    t0 = time.perf_counter()
    text_path = stage / "corpus.txt"
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
    _step(f"corpus: {words:,} words", quiet)

    from embedkit import BPETokenizer, train

    _step("learning a BPE vocabulary (4,000 tokens)", quiet)
    tok = BPETokenizer.train([str(text_path)], 4000, byte_level=False, threads=threads, quiet=quiet)
    tok_dir = stage / "tokenizer"
    tok.save(tok_dir)
    example = "unbelievably tokenization"
    _step(f"BPE pieces of {example!r}: {' '.join(tok.subword_text([example]))}", quiet)

    subwords = "bpe" if _bpe_subwords_available() else "char"
    _step(f"training skip-gram vectors (dim 100, 5 epochs, {subwords} subwords, "
          f"{threads} threads)", quiet)
    kw = {"tokenizer": str(tok_dir)} if subwords == "bpe" else {"buckets": 200_000}
    vecs = train([str(text_path)], model="skipgram", dim=100, epochs=5, min_count=3,
                 threads=threads, seed=seed, subwords=subwords, quiet=quiet, **kw)
    vecs.save(stage / "vectors.ekv")
    vecs.save(stage / "vectors.vec", format="vec")
    return vecs, words, t0


def _bpe_subwords_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("embedkit.wordvec.bpe_subwords") is not None
