"""Every command keeps the README's promises: ``--quiet``/``-q`` silence stderr, ``--json`` is
strict JSON (no NaN/Infinity), and a reader that closes stdout early is not an error (exit 0).

To cover a new command, add a row to ``SWEEP``: its arguments (``{name}`` fields are filled from
the ``files`` fixture, ``{new}`` is a fresh output path) and whether it takes ``--json``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import NamedTuple

import pytest

from cli_run import run


class Case(NamedTuple):
    command: str  # as typed: "bpe learn"
    args: tuple  # after the command; str.format'ed with the fixture's paths
    json: bool  # prints results, so takes --json


SWEEP = [
    Case("demo", ("--corpus", "{corpus}", "--out", "{new}", "--threads", "1"), True),
    Case("bpe learn", ("{corpus}", "-o", "{new}", "--vocab-size", "280"), True),
    Case("bpe encode", ("-t", "{tok}", "{corpus}", "--ids"), False),
    Case("bpe decode", ("-t", "{tok}", "{ids}"), False),
    Case("bpe convert", ("{tok}", "{new}.json"), False),
    Case("bpe count-words", ("{corpus}", "-o", "{new}.tsv"), True),
    Case("train", ("{corpus}", "-o", "{new}", "--dim", "8", "--min-count", "1", "--epochs", "1"),
         True),
    Case("nn", ("{vec}", "cat", "dog", "-k", "3"), True),
    Case("analogy", ("{vec}", "cat", "dog", "mat", "-k", "2"), True),
    Case("vectors", ("{vec}", "cat", "unseenword"), True),
    Case("eval", ("{vec}", "--similarity", "{pairs}", "--analogies", "{questions}"), True),
    Case("convert", ("{vec}", "-"), False),
    Case("encoder train", ("{corpus}", "-t", "{tok}", "-o", "{new}", "--steps", "2", "--dim", "16",
                           "--heads", "2", "--ffn", "32", "--layers", "1", "--max-len", "16",
                           "--batch-size", "4", "--threads", "1"), True),
    Case("encoder embed", ("{mlm}", "{corpus}", "--pool", "mean", "--threads", "1"), False),
    Case("encoder fill", ("{mlm}", "the cat [MASK] on the mat", "-k", "3"), True),
    Case("encoder generate", ("{clm}", "the cat", "--tokens", "5"), True),
]
# Commands other work adds and tests itself; anything else must have a row above.
OTHERS = ("classify", "probe", "encoder finetune")

SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .", "the cat and the dog .",
             "my friend walked along the river bank .", "the bird flew over a house ."]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from embedkit import BPETokenizer, train
    from embedkit.encoder import trainer

    d = tmp_path_factory.mktemp("sweep")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES[i % 5] for i in range(300)) + "\n")
    tok = BPETokenizer.train([str(corpus)], 300)
    tok.save(d / "tok")
    (d / "ids.txt").write_text("\n".join(" ".join(map(str, tok.encode(s))) for s in SENTENCES) + "\n")
    train([str(corpus)], dim=8, min_count=1, epochs=1, subwords="char", buckets=500).save(d / "v.ekv")
    (d / "pairs.txt").write_text("cat dog 3\n")  # one pair: Spearman is undefined -> null
    (d / "q.txt").write_text(": x\ncat dog mat park\n")
    small = dict(dim=16, heads=2, ffn=32, layers=1, max_len=16, batch_size=4, steps=2, threads=1)
    trainer.train([str(corpus)], tok, d / "mlm", **small)
    trainer.train([str(corpus)], tok, d / "clm", objective="clm", **small)
    paths = dict(corpus=corpus, tok=d / "tok", ids=d / "ids.txt", vec=d / "v.ekv",
                 pairs=d / "pairs.txt", questions=d / "q.txt", mlm=d / "mlm", clm=d / "clm")
    return d, {k: str(v) for k, v in paths.items()}


def argv(case: Case, files, tag: str, *extra) -> list[str]:
    d, paths = files
    new = str(d / f"out-{case.command.replace(' ', '-')}-{tag}")
    return [*case.command.split(), *(a.format(new=new, **paths) for a in case.args), *extra]


def _no_constants(token):
    raise ValueError(f"not strict JSON: {token}")


def strict_json_lines(text: str) -> list:
    assert text.endswith("\n"), text[-200:]
    return [json.loads(line, parse_constant=_no_constants) for line in text.splitlines()]


def test_sweep_covers_every_command():
    import importlib

    from embedkit.cli import COMMANDS

    names = []
    for name, (module, attr, _) in COMMANDS.items():
        if name in OTHERS:
            continue
        cmd = getattr(importlib.import_module(module), attr)
        subs = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in subs] if subs else [name]
    missing = {n for n in names if n not in OTHERS} - {c.command for c in SWEEP}
    assert not missing, f"add a row to SWEEP in {__file__} for: {sorted(missing)}"


@pytest.mark.parametrize("case", SWEEP, ids=[c.command for c in SWEEP])
def test_quiet_and_json(case, files, capsys):
    code, out, err = run(argv(case, files, "q", "-q"), capsys)
    assert code == 0 and err == "", err
    assert out
    flag = ["--json"] if case.json else []
    code, out, err = run(argv(case, files, "quiet", "--quiet", *flag), capsys)
    assert code == 0 and err == "", err
    if case.json:
        assert strict_json_lines(out)


def test_eval_json_writes_null_for_an_undefined_correlation(files, capsys):
    case = next(c for c in SWEEP if c.command == "eval")
    code, out, _ = run(argv(case, files, "null", "--json"), capsys)
    similarity = strict_json_lines(out)[0]
    assert code == 0 and similarity["used"] == 1 and similarity["spearman"] is None


def test_closed_stdout_is_not_an_error(files):
    """All commands at once (as `cmd | head -0` would): exit 0, nothing on stderr but progress."""
    procs = []
    for case in SWEEP:
        p = subprocess.Popen([sys.executable, "-m", "embedkit", *argv(case, files, "pipe", "-q")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()  # the reader is gone before the command writes anything
        procs.append((case, p))
        if len(procs) % 4 == 0:
            procs[-4][1].wait(timeout=300)
    for case, p in procs:
        err = p.stderr.read()
        assert p.wait(timeout=300) == 0 and err == b"", (case.command, err[-500:])


def test_dumps_is_strict_json():
    import numpy as np

    from embedkit.cli.common import dumps

    text = dumps({"a": float("nan"), "b": [1.0, float("-inf"), np.float32(2.5)], "c": np.int64(3)})
    assert json.loads(text, parse_constant=_no_constants) == {"a": None, "b": [1.0, None, 2.5], "c": 3}
    assert dumps(["é", 0.1]) == '["é", 0.1]'
