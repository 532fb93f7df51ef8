"""The query commands end to end: output formats, stdin batches, exit codes, bad input."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from embedkit.cli import main
from embedkit.vectors.model import Vectors, load


@pytest.fixture
def model(tmp_path):
    words = ["king", "queen", "man", "woman", "apple", "pear", "héllo"]
    m = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                  [0, 0, .2, 1], [.5, .5, .5, .5]], np.float32)
    path = tmp_path / "m.ekv"
    Vectors.from_arrays(words, m).save(path)
    return path


def run(argv, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_nn_prints_word_tab_cosine_without_the_query(model, capsys):
    code, out, err = run(["nn", model, "pear", "-k", "2"], capsys)
    assert code == 0 and err == ""
    assert out == "apple\t0.980581\nhéllo\t0.588348\n"


def test_nn_several_words_blocks_and_unknown_word(model, capsys):
    code, out, err = run(["nn", model, "pear", "nope", "apple", "-k", "1"], capsys)
    assert code == 0
    assert out == "apple\t0.980581\n\n\npear\t0.980581\n"
    assert "unknown word 'nope'" in err and err.count("\n") == 1
    code, out, err = run(["nn", model, "nope"], capsys)
    assert code == 2 and out == "" and "unknown word 'nope'" in err


def test_nn_stdin_batch_json(model, capsys, monkeypatch):
    code, out, err = run(["nn", model, "-k", "1", "--json"], capsys, "pear\n\n  nope \napple\n",
                         monkeypatch)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["query"] for r in rows] == ["pear", "nope", "apple"]
    assert rows[0]["neighbours"] == [{"word": "apple", "cosine": 0.980581}]
    assert "error" in rows[1] and "nope" in err
    code, out, err = run(["nn", model], capsys, "nope\nzzz\n", monkeypatch)
    assert code == 2 and err.count("unknown word") == 2


def test_analogy_vectors_eval_convert(model, tmp_path, capsys, monkeypatch):
    code, out, _ = run(["analogy", model, "man", "king", "woman", "-k", "1"], capsys)
    assert code == 0 and out.split("\t")[0] == "queen"
    code, out, _ = run(["analogy", model, "man", "king", "woman", "-k", "1", "--json"], capsys)
    assert json.loads(out)["neighbours"][0]["word"] == "queen"
    code, out, err = run(["vectors", model, "pear", "nope"], capsys)
    assert code == 0 and out == "pear 0 0 0.200000003 1\n" and "nope" in err
    code, out, _ = run(["vectors", model], capsys, "king\n", monkeypatch)
    assert out == "king 1 1 0 0\n"
    (tmp_path / "s.tsv").write_text("king\tqueen\t9\nman\twoman\t5\napple\tpear\t8\nx\ty\t1\n")
    (tmp_path / "a.txt").write_text(": family\nman king woman queen\n: gram1\nman king woman apple\n")
    code, out, _ = run(["eval", model, "--similarity", tmp_path / "s.tsv", "--analogies",
                        tmp_path / "a.txt", "--json"], capsys)
    sim, ana = [json.loads(line) for line in out.splitlines()]
    assert sim["used"] == 3 and sim["pairs"] == 4 and abs(sim["spearman"] - 0.5) < 1e-9
    assert ana["semantic"]["accuracy"] == 1.0 and ana["syntactic"]["accuracy"] == 0.0
    assert [(s["section"], s["correct"], s["incorrect"]) for s in ana["sections"]] == \
        [("family", 1, 0), ("gram1", 0, 1)]
    code, out, _ = run(["eval", model, "--analogies", tmp_path / "a.txt"], capsys)
    assert "2/2 questions used" in out and "family\t1/1\t100.00%" in out
    assert "gram1\t0/1\t0.00%" in out
    for name, fmt in (("o.vec", "vec"), ("o.bin", "w2v-bin"), ("o.ekv", "native")):
        assert run(["convert", model, tmp_path / name], capsys)[0] == 0
        got, want = load(tmp_path / name), load(model)
        assert got.words == want.words
        np.testing.assert_array_equal(np.asarray(got.vectors), np.asarray(want.vectors))
    code, _, err = run(["convert", model, tmp_path / "o.xyz"], capsys)
    assert code == 2 and "--to" in err


def test_convert_to_stdout(model, tmp_path):
    def convert(*args):
        return subprocess.run([sys.executable, "-m", "embedkit", "convert", str(model), "-", *args],
                              capture_output=True, cwd=tmp_path)

    r = convert()
    assert r.returncode == 0 and r.stdout.decode().splitlines()[0] == "7 4"
    assert r.stdout.decode().count("\n") == 8 and not (tmp_path / "-").exists()
    r = convert("--to", "w2v-bin")
    (tmp_path / "o.bin").write_bytes(r.stdout)
    assert r.returncode == 0 and load(tmp_path / "o.bin").words == load(model).words
    r = convert("--to", "native")
    assert r.returncode == 2 and b"needs a file" in r.stderr and r.stderr.count(b"\n") == 1


@pytest.mark.parametrize("argv,problem", [
    (["nn", "{model}", "king", "-k", "0"], "-k must be at least 1"),
    (["nn", "{tmp}/missing.vec", "king"], "no such file"),
    (["nn", "{tmp}", "king"], "is a folder"),
    (["eval", "{model}"], "nothing to evaluate"),
    (["eval", "{model}", "--similarity", "{tmp}/none.tsv"], "none.tsv: no such file"),
    (["analogy", "{model}", "king", "nope", "man"], "unknown word 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(model, tmp_path, capsys, argv, problem):
    argv = [a.format(model=model, tmp=tmp_path) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and problem in err and err.count("\n") == 1 and "Traceback" not in err


def _main_and_modules(argv) -> tuple[str, str]:
    """Run main(argv) in a fresh process: (stdout, 'CODE NUMPY NUMBA') from stderr's last line."""
    code = ("import sys; from embedkit.cli import main\n"
            f"try: main({argv!r}); c = None\nexcept SystemExit as e: c = e.code\n"
            "print(c, 'numpy' in sys.modules, 'numba' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return r.stdout, r.stderr.strip().splitlines()[-1]


def test_query_help_imports_no_numpy():
    for cmd in ("nn", "analogy", "vectors", "eval", "convert"):
        out, status = _main_and_modules([cmd, "--help"])
        assert status == "0 False False", (cmd, status)
        assert out.startswith(f"Usage: embedkit {cmd} ") and "--help" in out


def test_nn_on_native_does_not_import_numba(model):
    out, status = _main_and_modules(["nn", str(model), "king", "-k", "1"])
    assert status == "0 True False" and out == "man\t0.707107\n", (out, status)


def test_stdin_with_invalid_utf8_names_the_line(model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"pear\n\xff\n")))
    with pytest.raises(SystemExit) as e:
        main(["nn", str(model)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "<stdin>:2: not valid UTF-8" in err


def test_stdin_queries_ignore_a_utf8_bom_and_crlf(model, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfpear\r\nking\r\n")))
    code, out, err = run(["vectors", model], capsys)
    assert code == 0 and err == "" and out == "pear 0 0 0.200000003 1\nking 1 1 0 0\n"


def test_eval_skips_non_finite_scores_and_blank_lines(model, tmp_path, capsys):
    (tmp_path / "s.tsv").write_text("king\tqueen\t9\nman\twoman\tnan\napple\tpear\t8\n"
                                    "man\tking\tinf\nwoman\tpear\t1\n")
    code, out, _ = run(["eval", model, "--similarity", tmp_path / "s.tsv", "--json"], capsys)
    sim = json.loads(out)
    assert code == 0 and sim["used"] == 3 and sim["invalid_lines"] == 2
    assert sim["spearman"] == pytest.approx(0.5)
    (tmp_path / "a.txt").write_text("\n: family\n\nman king woman queen\n")
    code, out, _ = run(["eval", model, "--analogies", tmp_path / "a.txt"], capsys)
    assert code == 0 and "1/1 questions used" in out
    code, _, err = run(["eval", model, "--similarity", tmp_path], capsys)
    assert code == 2 and "is a folder, expected a file" in err and "vector" not in err


def test_usage_errors_and_closed_pipes(model):
    r = subprocess.run([sys.executable, "-m", "embedkit", "nn", str(model), "-k", "many"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("embedkit: error: Invalid value for '-k': 'many' is not a valid integer. "
                        "(see 'embedkit nn --help')\n")
    sh = (f"yes pear | head -20000 | {sys.executable} -m embedkit nn {model} -k 3 | head -1; "
          "exit ${PIPESTATUS[2]}")
    r = subprocess.run(["bash", "-c", sh], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "apple\t0.980581\n", "")
