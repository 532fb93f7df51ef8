"""``embedkit nn / analogy / vectors / eval / convert``: thin wrappers over ``embedkit.vectors``.

Exit codes: 0 when every query was answered, or in a batch (several words, or stdin) when at least
one was — each unknown word is named on stderr and its answer left empty; 2 when the only query,
or every query, is unknown, and for any bad input (one-line error, no traceback).
"""
from __future__ import annotations

import itertools
import sys

import click

from .common import dumps, echo_json, json_option, quiet_option

_K = click.option("-k", "k", type=int, default=10, show_default=True, help="How many neighbours.")
_JSON = json_option("One JSON object per query (JSON Lines).")
_MODEL = click.argument("model", type=click.Path(dir_okay=True))
_RESTRICT = click.option("--restrict", type=click.IntRange(min=0), default=0, show_default=True,
                         help="Answer from the N most frequent words only (0 = all; gensim's "
                              "restrict_vocab). Queries may be any word.")


def _check_k(k: int) -> None:
    from embedkit.errors import UsageError

    if k < 1:
        raise UsageError(f"-k must be at least 1 (got {k})")


def _keep(ctx, param, value):
    ctx.meta["embedkit." + param.name] = value
    return value


def _read_options(f):
    """``--unicode-errors`` and ``--strict``: how words files from the wild hold are read."""
    f = click.option("--strict", "strict_words", is_flag=True, expose_value=False, callback=_keep,
                     help="Refuse duplicate words and lines with more than D+1 fields (by default "
                          "the first duplicate is kept and the leading fields are the word).")(f)
    return click.option("--unicode-errors", type=click.Choice(["keep", "replace", "strict"]),
                        default="keep", show_default=True, expose_value=False, callback=_keep,
                        help="Words that are not valid UTF-8: keep their bytes (convert writes "
                             "them back unchanged; shown with U+FFFD), replace the bad bytes "
                             "by U+FFFD, or refuse the file.")(f)


def _open(model: str):
    """Load with the ``_read_options`` the command got; say on stderr what was tolerated."""
    from embedkit.vectors.model import load

    ctx = click.get_current_context()
    vecs = load(model, unicode_errors=ctx.meta.get("embedkit.unicode_errors", "keep"),
                strict=ctx.meta.get("embedkit.strict_words", False))
    if vecs.load_warning and not ctx.params.get("quiet"):
        click.echo(f"embedkit: warning: {vecs.load_warning}", err=True)
    _show_undecodable()
    return vecs


def _show_undecodable() -> None:
    """Kept bytes of invalid UTF-8 words (lone surrogates) print as U+FFFD, not a crash."""
    import codecs

    # The UTF-8 encoder takes non-ASCII replacements only as bytes: one U+FFFD per bad byte.
    codecs.register_error("embedkit-show", lambda e: (b"\xef\xbf\xbd" * (e.end - e.start), e.end))
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="embedkit-show")


def _stdin_queries():
    """One query per non-empty stdin line (surrounding whitespace stripped); strict UTF-8."""
    from embedkit.errors import InputError

    stream = getattr(sys.stdin, "buffer", sys.stdin)
    for lineno, line in enumerate(stream, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError("-", f"not valid UTF-8 (byte {e.start + 1})", lineno) from None
        q = line.strip()
        if lineno == 1:
            q = q.lstrip("\ufeff")  # a UTF-8 BOM (files saved by Windows tools) is not part of the word
        if q:
            yield q


class _Answers:
    """Prints answers in query order and keeps the tally that decides the exit code."""

    def __init__(self, as_json: bool):
        self.as_json, self.answered, self.failed, self.printed = as_json, 0, 0, 0

    def emit(self, query: str, result) -> None:
        from embedkit.vectors.model import UnknownWordError

        if isinstance(result, UnknownWordError):
            self.failed += 1
            click.echo(f"embedkit: {result}", err=True)
            if self.as_json:
                echo_json({"query": query, "error": str(result)})
            elif self.printed:
                click.echo("")
            self.printed += 1
            return
        self.answered += 1
        if self.as_json:
            echo_json({"query": query, "neighbours": _neighbours(result)})
        else:
            text = "".join(f"{w}\t{s:.6f}\n" for w, s in result)
            click.echo(("\n" if self.printed else "") + text, nl=False)
        self.printed += 1

    def exit_code(self, batch: bool) -> int:
        if self.failed and (not batch or self.answered == 0):
            return 2
        return 0


def _neighbours(result) -> list[dict]:
    return [{"word": w, "cosine": round(s, 6)} for w, s in result]


@click.command()
@_MODEL
@click.argument("words", nargs=-1)
@_K
@_RESTRICT
@_JSON
@_read_options
@quiet_option
def nn(model, words, k, restrict, as_json, quiet):
    """Nearest neighbours of WORDS (cosine), as 'word<TAB>cosine' lines.

    Without WORDS, reads one query per stdin line (answered in batches, one matrix product each),
    or prompts when stdin is a terminal. Several queries: answers are separated by an empty line,
    in query order. Out-of-vocabulary words get a vector from subwords when the model has them.
    """
    _check_k(k)
    vectors = _open(model)
    out = _Answers(as_json)
    if words:
        for q, r in zip(words, vectors.most_similar_many(words, k, "collect", restrict)):
            out.emit(q, r)
        return out.exit_code(batch=len(words) > 1)
    if sys.stdin.isatty():
        return _interactive(vectors, k, restrict, out)
    queries = _stdin_queries()
    while chunk := list(itertools.islice(queries, 1024)):
        for q, r in zip(chunk, vectors.most_similar_many(chunk, k, "collect", restrict)):
            out.emit(q, r)
        sys.stdout.flush()
    return out.exit_code(batch=True)


def _interactive(vectors, k, restrict, out: _Answers) -> int:
    click.echo(f"{vectors!r}; type a word (Ctrl-D to quit)", err=True)
    while True:
        try:
            q = input("query word? ").strip()
        except EOFError:
            click.echo("", err=True)
            return 0
        if q:
            out.printed = 0
            out.emit(q, vectors.most_similar_many([q], k, "collect", restrict)[0])


@click.command()
@_MODEL
@click.argument("a")
@click.argument("b")
@click.argument("c")
@_K
@_RESTRICT
@json_option("One JSON object: {\"query\": [A, B, C], \"neighbours\": [...]} (or \"error\").")
@_read_options
@quiet_option
def analogy(model, a, b, c, k, restrict, as_json, quiet):
    """'A is to B as C is to ?': the words nearest to B - A + C (3CosAdd), A, B and C excluded."""
    from embedkit.vectors.model import UnknownWordError

    _check_k(k)
    try:
        result = _open(model).analogy(a, b, c, k, restrict=restrict)
    except UnknownWordError as e:
        if not as_json:
            raise
        click.echo(f"embedkit: {e}", err=True)
        echo_json({"query": [a, b, c], "error": str(e)})
        return 2
    if as_json:
        echo_json({"query": [a, b, c], "neighbours": _neighbours(result)})
    else:
        click.echo("".join(f"{w}\t{s:.6f}\n" for w, s in result), nl=False)


@click.command()
@_MODEL
@click.argument("words", nargs=-1)
@json_option("One JSON object per word: {\"query\": w, \"vector\": [...]} (or \"error\").")
@_read_options
@quiet_option
def vectors(model, words, as_json, quiet):
    """Print 'word v1 ... vD' for WORDS (or one word per stdin line); OOV words via subwords.

    A word holding whitespace would make its line unreadable as text: use --json for those.
    """
    from embedkit.vectors.model import UnknownWordError

    vecs = _open(model)
    queries = words or _stdin_queries()
    fmt = " ".join(["%.9g"] * vecs.dim)
    answered = failed = 0
    for q in queries:
        try:
            if not as_json and (not q or any(c.isspace() for c in q)):
                raise UnknownWordError(q, "holds whitespace, so its 'word v1 ... vD' line could "
                                          "not be read back (use --json)")
            v = vecs[q]
        except UnknownWordError as e:
            click.echo(f"embedkit: {e}", err=True)
            if as_json:
                echo_json({"query": q, "error": str(e)})
            failed += 1
            continue
        if as_json:
            click.echo(dumps({"query": q, "vector": v.astype(float).tolist()}))
        else:
            click.echo(f"{q} " + fmt % tuple(v.astype(float).tolist()))
        answered += 1
    batch = not words or len(words) > 1
    return 2 if failed and (not batch or not answered) else 0


@click.command("eval")
@_MODEL
@click.option("--similarity", "similarity", multiple=True, type=click.Path(),
              help="Word-pair file 'w1 w2 score' (TAB or spaces, WordSim-353 style); repeatable.")
@click.option("--analogies", "analogies", multiple=True, type=click.Path(),
              help="Analogy file (': section' + 'a b c d' lines, Google style); repeatable.")
@click.option("--restrict", type=int, default=30000, show_default=True,
              help="Analogies: search and accept only the N most frequent words (0 = all).")
@click.option("--case-sensitive", is_flag=True, help="Do not upper-case words before lookup.")
@json_option("One JSON object per evaluated file (JSON Lines); a missing figure is null.")
@_read_options
@quiet_option
def eval_(model, similarity, analogies, restrict, case_sensitive, as_json, quiet):
    """Spearman rho on similarity sets and 3CosAdd accuracy on analogy sets (gensim-compatible).

    Pairs or questions with a word outside the vocabulary are skipped and reported as coverage,
    as gensim does. Similarity uses the 300,000 most frequent words, like gensim.
    """
    from embedkit.errors import UsageError

    if not similarity and not analogies:
        raise UsageError("nothing to evaluate: give --similarity FILE and/or --analogies FILE")
    if restrict < 0:
        raise UsageError(f"--restrict must be >= 0 (got {restrict})")
    from embedkit.progress import figure

    vecs = _open(model)
    ci = not case_sensitive
    results = []
    for path in similarity:
        results.append(("similarity", vecs.evaluate_similarity(path, case_insensitive=ci)))
    for path in analogies:
        results.append(("analogies", vecs.evaluate_analogies(path, restrict=restrict or None,
                                                             case_insensitive=ci)))
    for kind, r in results:
        if as_json:
            echo_json({"kind": kind, **r})
        elif kind == "similarity":
            click.echo(f"{r['file']}: similarity: {r['used']}/{r['pairs']} pairs used "
                       f"(coverage {100 * r['coverage']:.1f}%), spearman {figure(r['spearman'])}, "
                       f"pearson {figure(r['pearson'])}")
        else:
            click.echo(f"{r['file']}: analogies: {r['used']}/{r['questions']} questions used "
                       f"(coverage {100 * r['coverage']:.1f}%), accuracy {_pct(r['semantic'])} "
                       f"semantic, {_pct(r['syntactic'])} syntactic, "
                       f"{100 * r['accuracy']:.2f}% total")
            for s in r["sections"]:
                n = s["correct"] + s["incorrect"]
                click.echo(f"  {s['section']}\t{s['correct']}/{n}\t{100 * s['accuracy']:.2f}%")


def _pct(group: dict) -> str:
    return f"{100 * group['accuracy']:.2f}%"


_SUFFIX = {".ekv": "native", ".vec": "vec", ".txt": "vec", ".bin": "w2v-bin"}


@click.command()
@click.argument("src", metavar="IN", type=click.Path(dir_okay=True))
@click.argument("dst", metavar="OUT", type=click.Path(dir_okay=True))
@click.option("--to", "to", type=click.Choice(["vec", "w2v-bin", "native"]),
              help="Output format (default: from OUT's extension: .ekv, .vec/.txt, .bin).")
@_read_options
@quiet_option
def convert(src, dst, to, quiet):
    """Convert vectors of any readable format to word2vec text, word2vec binary or native.

    Only native (.ekv) keeps subwords (OOV vectors of a fastText .bin or a model trained with
    --subwords): word2vec text and binary hold one vector per word, so a note says what is
    dropped. OUT `-` writes word2vec text (or `--to w2v-bin`) to stdout.
    """
    import os
    import shutil

    from embedkit.errors import UsageError
    from embedkit.io import scratch_dir

    if dst == "-":
        to = to or "vec"
        if to == "native":
            raise UsageError("a native model needs a file (it is memory-mapped): give OUT a name")
        vecs = _open(src)
        _warn_dropped(vecs, to, quiet)
        with scratch_dir() as tmp:
            path = os.path.join(tmp, "out")
            vecs.save(path, format=to)
            with open(path, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
        return
    if to is None:
        to = _SUFFIX.get(os.path.splitext(dst)[1].lower())
        if to is None:
            raise UsageError(f"cannot tell the output format from {dst!r}: use --to vec|w2v-bin|native")
    vecs = _open(src)
    _warn_dropped(vecs, to, quiet)
    vecs.save(dst, format=to)


def _warn_dropped(vecs, to: str, quiet: bool) -> None:
    if vecs.scheme is not None and to != "native" and not quiet:
        click.echo(f"embedkit: note: {to} holds no subwords: the model's {vecs.scheme.kind} "
                   f"subwords (vectors for unseen words) are dropped; only native .ekv keeps them",
                   err=True)
