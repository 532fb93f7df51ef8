"""``embedkit classify train / test / predict`` end to end, and every bad input the issue lists:
one line on stderr, exit 2, no MODEL file."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from embedkit.cli import main
from cli_run import main_ok, one_error

from test_classify import separable


def run(args, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    train = separable(d / "train.txt", 900)
    test = separable(d / "test.txt", 200, seed=1)
    model = d / "m.ekc"
    assert main_ok(["classify", "train", str(train), "-o", str(model), "--epochs", "5",
                    "--lr", "0.5", "--dim", "16", "--word-ngrams", "2", "--buckets", "5000", "-q"])
    return d, train, test, model


def test_train_test_predict(data, capsys, monkeypatch):
    d, train, test, model = data
    code, out, err = run(["classify", "test", str(model), str(test)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "N\t200" and lines[1].startswith("P@1\t") and lines[2].startswith("R@1\t")
    assert float(lines[1].split("\t")[1]) > 0.95
    code, out, _ = run(["classify", "test", str(model), str(test), "--json", "--per-label", "-k", "2"],
                       capsys)
    r = json.loads(out, parse_constant=lambda t: pytest.fail(f"not strict JSON: {t}"))
    assert r["k"] == 2 and r["precision_at_k"] == pytest.approx(r["correct"] / r["predicted"])
    assert set(r["per_label"]) == {"x", "y", "z"} and len(r["confusion"]["matrix"]) == 3
    code, out, _ = run(["classify", "test", str(model), str(test), "--per-label"], capsys)
    assert "F1-Score : " in out and "__label__x" in out and "confusion" in out
    # predict: one output line per input line, in order, blank lines included; labels ignored.
    code, out, _ = run(["classify", "predict", str(model), "-", "-k", "2", "--prob"], capsys,
                       stdin="x1 x2 n1\n\n__label__y z3 z4\n", monkeypatch=monkeypatch)
    rows = out.splitlines()
    assert code == 0 and len(rows) == 3
    first = rows[0].split()
    assert first[0] == "__label__x" and len(first) == 4 and float(first[1]) > float(first[3])
    assert rows[2].split()[0] == "__label__z"
    code, out, _ = run(["classify", "predict", str(model), str(test), "--threshold", "1.01"], capsys)
    assert out == "\n" * 200


def test_tsv_labels_print_bare(tmp_path, capsys):
    train = separable(tmp_path / "t.tsv", 600, style="tsv")
    model = tmp_path / "m.ekc"
    code, out, _ = run(["classify", "train", str(train), "-o", str(model), "--json", "-q",
                        "--epochs", "3", "--lr", "0.5", "--dim", "8", "--valid", str(train),
                        "--loss", "hs"], capsys)
    s = json.loads(out)
    assert code == 0 and s["labels"] == 3 and len(s["history"]) == 3
    assert s["history"][-1]["valid_accuracy"] > 0.9
    pred = tmp_path / "in.txt"
    pred.write_text("y1 y2\n")
    code, out, _ = run(["classify", "predict", str(model), str(pred)], capsys)
    assert out == "y\n"


def test_valid_prints_per_epoch(data, tmp_path, capsys):
    d, train, test, _ = data
    code, out, err = run(["classify", "train", str(train), "-o", str(tmp_path / "v.ekc"),
                          "--epochs", "2", "--dim", "8", "--valid", str(test)], capsys)
    assert code == 0
    assert [ln.split(":")[0] for ln in err.splitlines() if ln.startswith("epoch")] == \
        ["epoch 1/2", "epoch 2/2"]


def test_same_seed_one_thread_gives_identical_files(data, tmp_path):
    _, train, _, _ = data
    digests = []
    for i in range(2):
        out = tmp_path / f"r{i}.ekc"
        subprocess.run([sys.executable, "-m", "embedkit", "classify", "train", str(train), "-o",
                        str(out), "--seed", "5", "--threads", "1", "--epochs", "2", "--dim", "8",
                        "--word-ngrams", "2", "--buckets", "3000", "--loss", "ns", "-q"],
                       check=True, capture_output=True)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_unlabelled_lines_skipped_and_reported(tmp_path, capsys):
    train = tmp_path / "t.txt"
    train.write_text("__label__a good good\nno label here\n__label__b bad bad\nnor here\n")
    code, out, err = run(["classify", "train", str(train), "-o", str(tmp_path / "m.ekc"),
                          "--dim", "4"], capsys)
    assert code == 0 and "2 lines" in out
    warn = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "t.txt:2: skipped 2 line(s) without a label" in warn[0]


def test_single_class_warns_but_trains(tmp_path, capsys):
    train = tmp_path / "t.txt"
    train.write_text("__label__a one\n__label__a two\n")
    code, out, err = run(["classify", "train", str(train), "-o", str(tmp_path / "m.ekc"),
                          "--dim", "4"], capsys)
    assert code == 0 and "only one label ('a')" in err
    code, out, err = run(["classify", "train", str(train), "-o", str(tmp_path / "m.ekc"),
                          "--dim", "4", "-q", "--json"], capsys)
    assert err == "" and "only one label ('a')" in json.loads(out)["warnings"][0]


def test_unseen_test_labels_count_as_wrong(data, tmp_path, capsys):
    _, _, _, model = data
    test = tmp_path / "t.txt"
    test.write_text("__label__x x1 x2\n__label__new x1 x2\n")
    code, out, err = run(["classify", "test", str(model), str(test), "--json"], capsys)
    r = json.loads(out)
    assert r["n"] == 2 and r["accuracy"] == 0.5 and r["unseen_labels"] == {"new": 1}
    assert "never seen in training (new) counted as wrong" in err


@pytest.mark.parametrize("case", ["empty", "unlabelled", "nan", "pretrained-dim", "missing",
                                  "bad-ngrams", "bad-utf8-label-only"])
def test_bad_training_input(case, data, tmp_path, capsys):
    _, train, _, _ = data
    model = tmp_path / "m.ekc"
    args = ["classify", "train", str(train), "-o", str(model), "--dim", "8", "-q"]
    if case == "empty":
        (tmp_path / "e.txt").write_text("")
        args[2] = str(tmp_path / "e.txt")
        want = "e.txt: empty: no labelled lines"
    elif case == "unlabelled":
        (tmp_path / "u.txt").write_text("just text\nmore text\n")
        args[2] = str(tmp_path / "u.txt")
        want = "no labelled lines (2 line(s) without a label)"
    elif case == "nan":
        args += ["--lr", "100", "--epochs", "5"]
        want = "training diverged (NaN/inf in epoch 1) with --lr 100; try a smaller --lr"
    elif case == "pretrained-dim":
        (tmp_path / "v.vec").write_text("1 3\nx1 1 2 3\n")
        args += ["--pretrained-vectors", str(tmp_path / "v.vec")]
        want = "v.vec: vectors of dimension 3, but --dim is 8"
    elif case == "missing":
        args[2] = str(tmp_path / "nope.txt")
        want = "nope.txt: no such file"
    elif case == "bad-ngrams":
        args += ["--word-ngrams", "0"]
        want = "--word-ngrams must be an integer in [1, 100], got 0"
    else:
        (tmp_path / "b.txt").write_bytes(b"__label__a \xff\xfe ok\n__label__b fine\n")
        args[2] = str(tmp_path / "b.txt")
        code, out, err = run(args, capsys)  # invalid UTF-8 is kept byte-exact, as fastText does
        assert code == 0 and model.exists()
        return
    code, out, err = run(args, capsys)
    assert want in one_error(code, err)
    assert not model.exists() and list(tmp_path.glob(".m.ekc*")) == []


@pytest.mark.parametrize("cmd", ["test", "predict"])
def test_wrong_model_kind(cmd, data, tmp_path, capsys):
    _, _, test, _ = data
    vec = tmp_path / "v.vec"
    vec.write_text("1 2\na 1 2\n")
    code, _, err = run(["classify", cmd, str(vec), str(test)], capsys)
    assert "v.vec: not a model file embedkit knows, expected a classifier" in one_error(code, err)
    code, _, err = run(["classify", cmd, str(tmp_path), str(test)], capsys)
    assert "is a folder, expected a classifier" in one_error(code, err)


def test_test_without_labels_is_an_error(data, tmp_path, capsys):
    _, _, _, model = data
    t = tmp_path / "t.txt"
    t.write_text("no labels\n")
    code, _, err = run(["classify", "test", str(model), str(t)], capsys)
    assert "no labelled lines" in one_error(code, err)


def test_bad_option_loads_neither_numpy_nor_numba(tmp_path):
    code = ("import sys\nfrom embedkit.cli import main\n"
            "try:\n    main(['classify', 'train', 'x.txt', '-o', 'm.ekc', '--loss', 'hs', "
            "'--epochs', '0'])\nexcept SystemExit as e:\n"
            "    print(e.code, 'numpy' in sys.modules, 'numba' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.stdout.split() == ["2", "False", "False"]
    assert "--epochs must be an integer in [1, 100000], got 0" in r.stderr


def test_train_from_stdin(data, tmp_path, capsys, monkeypatch):
    _, train, test, _ = data
    model = tmp_path / "s.ekc"
    code, out, _ = run(["classify", "train", "-", "-o", str(model), "--dim", "8", "--epochs", "3",
                        "--lr", "0.5", "-q"], capsys, stdin=train.read_text(), monkeypatch=monkeypatch)
    assert code == 0 and "900 lines" in out
    code, out, _ = run(["classify", "test", str(model), str(test), "--json"], capsys)
    assert json.loads(out)["accuracy"] > 0.9


def test_fasttext_bin_is_a_model_too(data, tmp_path, capsys):
    fasttext = pytest.importorskip("fasttext")
    _, train, test, _ = data
    ft = fasttext.train_supervised(str(train), epoch=3, lr=0.5, dim=10, bucket=1000,
                                   wordNgrams=2, thread=1, verbose=0)
    ft.save_model(str(tmp_path / "ft.bin"))
    n, p, r = ft.test(str(test))
    code, out, _ = run(["classify", "test", str(tmp_path / "ft.bin"), str(test)], capsys)
    assert code == 0 and out.splitlines() == [f"N\t{n}", f"P@1\t{p:.3g}", f"R@1\t{r:.3g}"]


def test_crlf_and_bom_train_the_same_model(data, tmp_path, capsys):
    _, train, _, _ = data
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + train.read_bytes().replace(b"\n", b"\r\n"))
    outs = []
    for src in (train, crlf):
        out = tmp_path / f"{src.stem}.ekc"
        code, _, _ = run(["classify", "train", str(src), "-o", str(out), "--dim", "8",
                          "--threads", "1", "--seed", "2", "-q"], capsys)
        assert code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_nul_byte_is_an_error(tmp_path, capsys):
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"__label__a one\n__label__b t\x00wo\n")
    code, _, err = run(["classify", "train", str(bad), "-o", str(tmp_path / "m.ekc"), "-q"], capsys)
    assert "b.txt" in one_error(code, err) and not (tmp_path / "m.ekc").exists()


def test_ctrl_c_leaves_no_model(data, tmp_path):
    import signal
    import time

    _, train, _, _ = data
    model = tmp_path / "m.ekc"
    p = subprocess.Popen([sys.executable, "-m", "embedkit", "classify", "train", str(train), "-o",
                          str(model), "--epochs", "100000", "--dim", "8", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and b"interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_custom_label_prefix_is_kept_by_the_model(tmp_path, capsys):
    train = tmp_path / "t.txt"
    train.write_text("#pos good fine\n#neg bad awful\n" * 50)
    model = tmp_path / "m.ekc"
    code, _, _ = run(["classify", "train", str(train), "-o", str(model), "--label-prefix", "#",
                      "--dim", "4", "--epochs", "5", "--lr", "0.5", "-q"], capsys)
    assert code == 0
    code, out, _ = run(["classify", "test", str(model), str(train), "--json"], capsys)
    assert json.loads(out)["n"] == 100 and json.loads(out)["accuracy"] == 1.0
    (tmp_path / "in.txt").write_text("good #neg fine\nawful\n")
    code, out, _ = run(["classify", "predict", str(model), str(tmp_path / "in.txt")], capsys)
    assert out == "#pos\n#neg\n"
