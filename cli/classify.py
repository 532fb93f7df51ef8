"""``embedkit classify train / test / predict``: a thin layer over ``embedkit.classify``.

MODEL for ``test`` / ``predict`` is anything ``classify.model.load_model`` opens: a model from
``classify train``, a fastText supervised ``.bin``/``.ftz`` or one from ``encoder finetune``.
"""
from __future__ import annotations

import os
import sys

import click

from .common import echo_json, json_option, quiet_option, threads_option

_SEED = click.IntRange(0, 2**63 - 1)
_PREFIX = click.option("--label-prefix", default="__label__", show_default=True,
                       help="Words starting with it are labels (fastText format).")


def _warn(msg: str) -> None:
    click.echo(f"embedkit: warning: {msg}", err=True)


@click.group()
def classify():
    """fastText-style supervised text classification (or NB-weighted logistic regression:
    `train --model nb`).

    Data: fastText lines ('__label__A [__label__B ...] text') or 'LABEL<TAB>text', told apart by
    content; text is split on whitespace; '-' reads stdin.
    """


@classify.command()
@click.argument("train", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-o", "--output", "model", required=True, type=click.Path(dir_okay=False),
              help="MODEL file to write (written atomically, only when training succeeds).")
@click.option("--model", "kind", type=click.Choice(["fasttext", "nb"]), default="fasttext",
              show_default=True, help="nb: NB-weighted logistic regression (NBSVM-style, binary "
              "uni+bi-grams by default; strong on reviews); takes "
              "--l2, not --dim/--lr/--epochs/--neg/--subwords/--pretrained-vectors.")
@click.option("--l2", "l2", default="1.0", show_default=True, metavar="C|auto",
              help="--model nb: inverse L2 strength C (scikit-learn's LogisticRegression C); "
              "auto: the best of 0.1 0.3 1 3 10 by 5-fold cross-validation.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--lr", type=float, default=0.1, show_default=True,
              help="Start learning rate (decays linearly to 0).")
@click.option("--dim", type=int, default=100, show_default=True, help="Hidden (vector) size.")
@click.option("--word-ngrams", type=int, default=None,
              help="Hash word n-grams up to this length into --buckets.  [default: 1; 2 with "
              "--model nb]")
@click.option("--buckets", type=int, default=2_000_000, show_default=True,
              help="Hash buckets of word and char n-grams (unused with --word-ngrams 1 and no subwords).")
@click.option("--min-count", type=int, default=1, show_default=True, help="Drop rarer words.")
@click.option("--min-count-label", type=int, default=1, show_default=True, help="Drop rarer labels.")
@click.option("--loss", type=click.Choice(["softmax", "ns", "hs", "ova"]), default="softmax",
              show_default=True, help="hs: hierarchical softmax (Huffman tree of label counts); "
              "ns: negative sampling; ova: one-vs-all sigmoids (multi-label).")
@click.option("--neg", type=int, default=5, show_default=True, help="Negative labels per example (--loss ns).")
@click.option("--subwords", type=click.Choice(["none", "char", "bpe"]), default="none",
              show_default=True, help="char: fastText char n-grams (--minn..--maxn); bpe: pieces "
              "from --tokenizer. Both give rows to unseen words.")
@click.option("--minn", type=int, default=3, show_default=True, help="Shortest char n-gram.")
@click.option("--maxn", type=int, default=6, show_default=True, help="Longest char n-gram.")
@click.option("--tokenizer", metavar="TOKDIR", default=None, help="With --subwords bpe.")
@click.option("--pretrained-vectors", metavar="VECTORS", default=None,
              help="Start word rows from these vectors (any format `embedkit` reads; dim = --dim).")
@click.option("--valid", metavar="FILE", default=None,
              help="Print validation accuracy on FILE after every epoch (stderr).")
@_PREFIX
@click.option("--lowercase", is_flag=True, help="Lower-case the text (the model keeps doing so).")
@threads_option("Hogwild training threads.")
@click.option("--seed", type=_SEED, default=0, show_default=True,
              help="Random seed; with --threads 1 the MODEL file is identical run to run.")
@json_option("Print a JSON summary (with the per-epoch history) instead of the summary line.")
@quiet_option
def train(train, model, kind, l2, epochs, lr, dim, word_ngrams, buckets, min_count,
          min_count_label, loss, neg, subwords, minn, maxn, tokenizer, pretrained_vectors, valid,
          label_prefix, lowercase, threads, seed, as_json, quiet):
    """Train a classifier on TRAIN file(s) and write MODEL."""
    from embedkit.errors import OutputError, UsageError

    folder = os.path.dirname(model) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"{model}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{model}: folder {folder} is not writable")

    from embedkit.classify.options import NOT_NB, ClassifyOptions, refuse_for_nb

    if kind == "nb":
        ctx = click.get_current_context()
        refuse_for_nb([k for k in NOT_NB if ctx.get_parameter_source(k).name != "DEFAULT"])
    elif click.get_current_context().get_parameter_source("l2").name != "DEFAULT":
        raise UsageError("--l2 is only used with --model nb")
    if l2 != "auto":
        try:
            l2 = float(l2)
        except ValueError:
            raise UsageError(f"--l2 must be a positive number or auto, got {l2!r}") from None
    opts = ClassifyOptions(dim, lr, epochs, word_ngrams, buckets, min_count, min_count_label, loss,
                           neg, subwords, minn, maxn, tokenizer, pretrained_vectors, valid,
                           label_prefix, lowercase, threads, seed, quiet, kind, l2).validate()
    from embedkit.classify.model import Classifier

    def on_epoch(rec):
        if valid is not None and not quiet and kind == "nb":
            click.echo(f"nb: {rec['iterations']} L-BFGS iterations, loss {rec['loss']:.4f} "
                       f"valid accuracy {rec['valid_accuracy']:.4f}", err=True)
        elif valid is not None and not quiet:
            click.echo(f"epoch {rec['epoch']}/{epochs}: loss {rec['loss'] or 0:.4f} "
                       f"valid accuracy {rec['valid_accuracy']:.4f}", err=True)

    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        if not quiet:
            _warn(msg)

    m = Classifier.train_with(list(train), opts, warn=note, on_epoch=on_epoch)
    m.save(model)
    s = m.settings
    if as_json:
        echo_json({"model": model, "words": len(m.words), "labels": len(m.labels),
                   "lines": s["lines"], "tokens": s["tokens"], "history": m.history,
                   "warnings": notes})
    else:
        click.echo(f"{len(m.words)} words, {len(m.labels)} labels, {s['lines']} lines "
                   f"({s['tokens']} tokens): {model}")


@classify.command()
@click.argument("model", type=click.Path())
@click.argument("test", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-k", type=click.IntRange(1, None), default=1, show_default=True,
              help="Predictions per line (P@k, R@k).")
@click.option("--threshold", type=float, default=0.0, show_default=True,
              help="Only predictions with probability >= this count.")
@click.option("--per-label", is_flag=True, help="Also precision / recall / F1 per label and a "
              "confusion table (gold rows, top-1 prediction columns).")
@click.option("--label-prefix", default=None,
              help="Words starting with it are labels.  [default: the model's, e.g. __label__]")
@json_option("Print every figure as one JSON object.")
@quiet_option
def test(model, test, k, threshold, per_label, label_prefix, as_json, quiet):
    """Score MODEL on labelled TEST file(s): N, P@k, R@k as `fasttext test` prints them."""
    from embedkit.classify.data import Reader
    from embedkit.classify.metrics import evaluate, fasttext_lines
    from embedkit.classify.model import load_model

    m = load_model(model)
    label_prefix = label_prefix or getattr(m, "label_prefix", "__label__")
    reader = Reader(label_prefix)
    r = evaluate(m, reader(list(test)), k, threshold)
    if r["n"] == 0:
        from embedkit.errors import InputError

        raise InputError(test[0], "no labelled lines (expected '__label__LABEL text' or "
                                  "'LABEL<TAB>text')")
    notes = []
    if reader.skipped_message():
        notes.append(reader.skipped_message())
    if r["unseen_lines"] or r["unseen_labels"]:
        notes.append(f"{test[0]}: {sum(r['unseen_labels'].values())} gold label(s) never seen in "
                     f"training ({', '.join(list(r['unseen_labels'])[:5])}"
                     f"{', ...' if len(r['unseen_labels']) > 5 else ''}) counted as wrong; "
                     f"{r['unseen_lines']} line(s) have no known label")
    if not quiet:
        for n in notes:
            _warn(n)
    if as_json:
        if not per_label:
            r = {key: v for key, v in r.items() if key not in ("per_label", "confusion")}
        echo_json(r)
        return
    for line in fasttext_lines(r):
        click.echo(line)
    if per_label:
        style = getattr(m, "label_style", "fasttext")
        prefix = getattr(m, "label_prefix", "__label__") if style == "fasttext" else ""
        for name, v in r["per_label"].items():
            click.echo(f"F1-Score : {_f(v['f1'])}  Precision : {_f(v['precision'])}  "
                       f"Recall : {_f(v['recall'])}  support {v['support']}  {prefix}{name}")
        c = r["confusion"]
        names = [prefix + n for n in c["predicted"]] + ["(none)"]
        corner = "gold\\pred"
        width = max(len(n) for n in names + [prefix + g for g in c["gold"]] + [corner])
        click.echo("confusion (rows: gold, columns: top-1 prediction)")
        click.echo("  ".join([f"{corner:<{width}}"] + names))
        for g, row, none in zip(c["gold"], c["matrix"], c["no_prediction"]):
            cells = [f"{v:>{len(n)}}" for v, n in zip(row + [none], names)]
            click.echo("  ".join([f"{prefix + g:<{width}}"] + cells))


def _f(x) -> str:
    return "--------" if x is None else f"{x:.6f}"


@classify.command()
@click.argument("model", type=click.Path())
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True))
@click.option("-k", type=click.IntRange(1, None), default=1, show_default=True,
              help="Labels per line, best first.")
@click.option("--prob", is_flag=True, help="Print 'label prob' pairs.")
@click.option("--threshold", type=float, default=0.0, show_default=True,
              help="Drop labels with a probability below this.")
@click.option("--label-prefix", default=None,
              help="Input words starting with it are labels and ignored (as fastText does).  "
              "[default: the model's, e.g. __label__]")
@quiet_option
def predict(model, files, k, prob, threshold, label_prefix, quiet):
    """Top-k labels of every line of FILE(s) (default: stdin), one output line per input line,
    in input order (`__label__X` style when the model was trained on fastText-style data).

    Batches of 1,024 lines are scored by one worker thread while the next batch is read, so the
    (GIL-free) scoring kernel overlaps the reading and writing. A model that needs only word ids
    and hashes (no subwords, no lower-casing) has its input cut and looked up by a kernel on the
    bytes (``byte_ids``), with no Python string per word."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from embedkit.classify.metrics import top_k, top_k_arrays
    from embedkit.classify.model import load_model
    from embedkit.classify.data import iter_word_batches

    m = load_model(model)
    own = getattr(m, "label_prefix", "__label__")
    label_prefix = label_prefix or own
    prefix = own if getattr(m, "label_style", "fasttext") == "fasttext" else ""
    names = [(prefix + n) for n in m.labels]
    out = sys.stdout.buffer

    def emit(scores):
        if k == 1 and not prob:
            idx, p = top_k_arrays(scores, 1)
            text = "\n".join(map(names.__getitem__, idx[:, 0].tolist()))
            if not np.all(p >= threshold):
                text = "\n".join(names[i] if q >= threshold else ""
                                 for i, q in zip(idx[:, 0].tolist(), p[:, 0].tolist()))
        elif prob:
            text = "\n".join(" ".join(f"{names[j]} {q:.6g}" for j, q in row)
                             for row in top_k(scores, k, threshold))
        else:
            text = "\n".join(" ".join(names[j] for j, _ in row) for row in top_k(scores, k, threshold))
        out.write((text + "\n").encode("utf-8", "surrogateescape"))

    paths = list(files) or ["-"]
    vocab = m.byte_vocab() if hasattr(m, "byte_vocab") else None
    if vocab is None:
        work = ((m.predict_proba, (batch,)) for batch in iter_word_batches(paths, label_prefix))
    else:
        work = ((m.predict_ids, batch) for batch in vocab.batches(paths, label_prefix))
    with ThreadPoolExecutor(1) as pool:
        pending = None
        for score, batch in work:
            job = pool.submit(score, *batch)
            if pending is not None:
                emit(pending.result())
            pending = job
        if pending is not None:
            emit(pending.result())
    out.flush()
