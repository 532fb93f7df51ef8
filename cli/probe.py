"""``embedkit probe FEATURES TRAIN [TEST]``: linear-probe accuracy of frozen features."""
from __future__ import annotations

import os
import sys

import click

from .common import dumps, json_option, quiet_option, threads_option


@click.command()
@click.argument("features", type=click.Path())
@click.argument("train", type=click.Path(allow_dash=True))
@click.argument("test", required=False, type=click.Path(allow_dash=True))
@click.option("--pool", type=click.Choice(["mean", "first"]), default="mean", show_default=True,
              help="Encoder features: mean of the pieces' states, or the first piece's.")
@click.option("--layer", type=int, default=None,
              help="Encoder layer: 0 = embeddings, 1..L, -1 = last.  [default: -1]")
@click.option("--kfold", type=int, default=10, show_default=True,
              help="Folds of the cross-validation that chooses C (and, without TEST, scores).")
@click.option("--label-prefix", default="__label__", show_default=True,
              help="Prefix of label words in fastText-style lines.")
@click.option("--lowercase", is_flag=True, help="Lower-case the text before looking words up.")
@threads_option("Threads (BLAS, encoder).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed of the folds.")
@json_option("Print the result as one JSON object.")
@quiet_option
def probe(features, train, test, pool, layer, kfold, label_prefix, lowercase, threads, seed,
          as_json, quiet):
    """Train an L2-regularised logistic regression on frozen FEATURES (word vectors: mean of a
    line's word vectors; an ENCDIR: pooled encoder states) of TRAIN's labelled lines, C chosen by
    stratified k-fold cross-validation on TRAIN (grid 2^-8..2^4). Prints the cross-validated
    accuracy and, with TEST, the test accuracy.

    Lines are 'LABEL<TAB>text' or fastText's '__label__LABEL text'; text is split on whitespace.
    """
    if "numpy" not in sys.modules:  # OpenBLAS reads its thread count when NumPy loads it
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    from embedkit.classify.probe import probe as run

    r = run(features, train, test, pool=pool, layer=layer, kfold=kfold,
            label_prefix=label_prefix, lowercase=lowercase, threads=threads, seed=seed,
            quiet=quiet)
    if not quiet:
        for w in r["warnings"]:
            click.echo(f"embedkit: warning: {w}", err=True)
    if as_json:
        click.echo(dumps(r))
        return
    click.echo(f"features {r['features']}")
    n = f"n train {r['n_train']}"
    if r["n_test"] is not None:
        n += f" test {r['n_test']}"
    click.echo(f"{n} ({len(r['labels'])} labels)")
    if r["cv"] == "inner":
        click.echo(f"C {r['c']:g} (chosen by {r['kfold']}-fold cross-validation on TRAIN)")
    else:
        click.echo(f"C per outer fold {' '.join(f'{c:g}' for c in r['c_per_fold'])}")
    click.echo(f"cv accuracy {r['cv_accuracy']:.4f}")
    if r["test_accuracy"] is not None:
        click.echo(f"test accuracy {r['test_accuracy']:.4f}")
        if r["test_unseen_labels"]:
            click.echo(f"test lines with unseen labels {r['test_unseen_labels']} (counted wrong)")
    zero = r["zero_feature_lines"]
    if zero["train"] or zero["test"]:
        click.echo(f"zero-feature lines train {zero['train']}" +
                   (f" test {zero['test']}" if zero["test"] is not None else ""))
