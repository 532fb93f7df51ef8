"""``embedkit train``: corpus files in, ``NAME.vec`` and ``NAME.ekv`` out (heavy imports deferred)."""
from __future__ import annotations

import click

from .common import SCHEDULER_HELP, echo_json, json_option, quiet_option, threads_option

_EXTS = (".vec", ".ekv")


def output_paths(name: str) -> tuple[str, str]:
    """``NAME`` → (``NAME.vec``, ``NAME.ekv``); a given .vec/.ekv extension is dropped first."""
    for ext in _EXTS:
        if name.endswith(ext):
            name = name[: -len(ext)]
    return name + ".vec", name + ".ekv"


@click.command("train")
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", "name", required=True, metavar="NAME",
              help="Write NAME.vec (word2vec text) and NAME.ekv (native model).")
@click.option("--model", type=click.Choice(["cbow", "skipgram"]), default="cbow", show_default=True)
@click.option("--dim", type=int, default=100, show_default=True, help="Vector dimension.")
@click.option("--window", type=int, default=5, show_default=True, help="Max context words on each side.")
@click.option("--negative", type=int, default=5, show_default=True, help="Negative samples per target.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--min-count", type=int, default=5, show_default=True, help="Drop rarer words.")
@click.option("--max-vocab", type=int, default=None, help="Keep at most N most frequent words.")
@click.option("--sample", type=float, default=1e-4, show_default=True,
              help="Subsampling threshold for frequent words (0 = off).")
@click.option("--lr", type=float, default=0.05, show_default=True, help="Start learning rate (decays to 0).")
@threads_option("Hogwild training threads (--threads 1 --seed S: identical files run to run).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; with --threads 1 the output is identical run to run.")
@click.option("--subwords", type=click.Choice(["none", "char", "bpe"]), default="none", show_default=True,
              help="char: fastText n-grams; bpe: pieces from --tokenizer. Both give OOV vectors.")
@click.option("--minn", type=int, default=3, show_default=True, help="Shortest char n-gram.")
@click.option("--maxn", type=int, default=6, show_default=True, help="Longest char n-gram.")
@click.option("--buckets", type=int, default=2_000_000, show_default=True, help="Char n-gram hash buckets.")
@click.option("--tokenizer", metavar="TOKDIR", default=None,
              help="With --subwords bpe: a TOKDIR from `embedkit bpe learn`, HF vocab.json + "
                   "merges.txt, or a subword-nmt codes file.")
@click.option("--bpe-bag", type=click.Choice(["all", "weighted", "segmentation"]), default=None,
              help="With --subwords bpe: a word's rows are the pieces of its segmentation "
                   "(the default), all BPE tokens it contains (all), or those tokens weighed "
                   "by how rare they are (weighted).")
@click.option("--bpe-min-len", type=int, default=None,
              help="With --bpe-bag all/weighted: shortest token in a bag, in characters (a word boundary "
                   "counts as one).  [default: 2]")
@click.option("--bpe-max-len", type=int, default=None,
              help="With --bpe-bag all/weighted: longest token in a bag (0 = no bound).  [default: 0]")
@click.option("--lowercase", is_flag=True, help="Lower-case the corpus before counting.")
@click.option("--scheduler", metavar="SPEC",
              help=SCHEDULER_HELP.replace("Count on Dask", "Count the vocabulary on Dask")
              + " Training itself runs here.")
@quiet_option
@json_option("Print the summary as one JSON object.")
def train(corpus, name, model, dim, window, negative, epochs, min_count, max_vocab, sample, lr,
          threads, seed, subwords, minn, maxn, buckets, tokenizer, bpe_bag, bpe_min_len, bpe_max_len,
          lowercase, scheduler, quiet, as_json):
    """Train word vectors on CORPUS files (whitespace-separated tokens, one sentence per line;
    '-' reads stdin, .gz is read directly; quoted globs such as 'shards/*.gz' are expanded)."""
    import os

    from embedkit.errors import OutputError, UsageError
    from embedkit.wordvec.args import TrainOptions

    opts = TrainOptions(model, dim, window, negative, epochs, min_count, max_vocab, sample, lr,
                        threads, seed, subwords, minn, maxn, buckets, tokenizer, lowercase,
                        bpe_bag=bpe_bag, bpe_min_len=bpe_min_len, bpe_max_len=bpe_max_len).validate()
    vec_path, ekv_path = output_paths(name)
    if not os.path.basename(vec_path[:-len(".vec")]):
        raise UsageError(f"-o {name}: give a name, not a folder (e.g. -o {os.path.join(name, 'vectors')} "
                         f"writes vectors.vec and vectors.ekv there)")
    folder = os.path.dirname(vec_path) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"{vec_path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{vec_path}: folder {folder} is not writable")
    for p in (vec_path, ekv_path):
        if os.path.isdir(p):
            raise OutputError(f"{p}: is a folder, expected a file name")

    from embedkit.io import atomic_files
    from embedkit.wordvec.trainer import as_vectors, fit

    from .common import corpus_files

    corpus = corpus_files(corpus, scheduler and "--scheduler")
    counts = None
    if scheduler:
        from embedkit.cluster import connect, train_counts

        with connect(scheduler) as runner:
            counts = train_counts(runner, corpus, lowercase=opts.lowercase, quiet=quiet)
    m = as_vectors(fit(corpus, opts, quiet=quiet, counts=counts))
    with atomic_files([ekv_path, vec_path]) as (ekv_tmp, vec_tmp):  # the pair appears together
        m.save_native(ekv_tmp)
        m.save_vec(vec_tmp)
    if as_json:
        echo_json({"words": len(m.words), "dim": m.dim, "tokens": m.settings["tokens"],
                   "vec": vec_path, "ekv": ekv_path})
        return
    click.echo(f"{len(m.words)} words x {m.dim} dimensions ({m.settings['tokens']} tokens): "
               f"{vec_path} {ekv_path}")
