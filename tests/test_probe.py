"""Linear probes: the logistic regression (gradients, Hessian, optimum, scikit-learn parity), the
seeded stratified folds, features from vectors and from an encoder, `embedkit probe` and every
bad input it refuses."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.classify import logreg
from embedkit.classify.features import open_features
from embedkit.classify.logreg import LogReg
from embedkit.classify.probe import C_GRID, choose_c, probe, stratified_folds
from embedkit.encoder.model import Encoder
from embedkit.vectors.model import Vectors
from cli_run import run


def numgrad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        old = x.flat[i]
        x.flat[i] = old + eps
        fp = f()
        x.flat[i] = old - eps
        fm = f()
        x.flat[i] = old
        g.flat[i] = (fp - fm) / (2 * eps)
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)


def blobs(rng, n, d, k, spread=1.0):
    centers = rng.standard_normal((k, d)) * 2
    y = np.arange(n) % k
    x = centers[y] + rng.standard_normal((n, d)) * spread
    return x * rng.uniform(0.5, 20, d) + rng.uniform(-5, 5, d), y  # unequal scales and offsets


@pytest.mark.parametrize("k", [2, 4])
def test_loss_gradient_matches_finite_differences(k):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 5)), rng.integers(0, k, 30)
    kk = 1 if k == 2 else k
    theta = rng.standard_normal(5 * kk + kk)
    f = lambda: logreg.loss_and_grad(theta, x, y, k, 0.7)[0]
    assert rel_err(logreg.loss_and_grad(theta, x, y, k, 0.7)[1], numgrad(f, theta)) < 1e-7


def test_binary_hessian_matches_finite_differences_of_the_gradient():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 4)), rng.integers(0, 2, 40)
    theta = rng.standard_normal(5)
    h = logreg.binary_hessian(theta, x, 0.3)
    num = np.stack([numgrad(lambda j=j: logreg.loss_and_grad(theta, x, y, 2, 0.3)[1][j], theta)
                    for j in range(5)])
    assert rel_err(h, num) < 1e-7


def test_loss_value_by_hand():
    # one example, w = 0, b = 0: log 2 for the logistic loss, log K for softmax; plus the penalty
    x, y = np.array([[1.0, 2.0]]), np.array([1])
    assert logreg.loss_and_grad(np.zeros(3), x, y, 2, 1.0)[0] == pytest.approx(math.log(2))
    theta = np.array([1.0, 0.0, 0.0])  # w = (1, 0): z = 1, penalty 0.5 / (C n) = 0.25 at C = 2
    assert logreg.loss_and_grad(theta, x, y, 2, 2.0)[0] == pytest.approx(math.log1p(math.e ** -1) + 0.25)
    assert logreg.loss_and_grad(np.zeros(9), x, y, 3, 1.0)[0] == pytest.approx(math.log(3))


def test_tiny_symmetric_set_has_the_optimum_of_its_scalar_equation():
    """x = -2, -1, 1, 2 with labels 0 0 1 1: by symmetry b = 0, and w solves
    sum_i x_i (sigmoid(w x_i) - y_i) + w / C = 0 on the standardised x; found by bisection."""
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    y = np.array([0, 0, 1, 1])
    c = 1.5
    xs = x[:, 0] / math.sqrt(2.5)
    g = lambda w: sum(xi * (1 / (1 + math.exp(-w * xi)) - yi) for xi, yi in zip(xs, y)) + w / c
    lo, hi = 0.0, 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
    m = LogReg.fit(x, y, 2, c)
    assert m.coef[0, 0] == pytest.approx(lo, abs=1e-6)
    assert m.intercept[0] == pytest.approx(0.0, abs=1e-8)
    assert m.predict(x).tolist() == [0, 0, 1, 1]
    p = m.predict_proba(np.array([[0.0], [1.0]]))
    assert p[0].tolist() == pytest.approx([0.5, 0.5])
    assert p[1, 1] == pytest.approx(1 / (1 + math.exp(-lo / math.sqrt(2.5))))


def test_newton_and_lbfgs_find_the_same_optimum():
    rng = np.random.default_rng(3)
    x, y = blobs(rng, 200, 6, 2, spread=3.0)
    xs = (x - x.mean(0)) / x.std(0)
    fg = lambda t: logreg.loss_and_grad(t, xs, y, 2, 0.5)
    a, _, _ = logreg.newton(fg, lambda t: logreg.binary_hessian(t, xs, 0.5), np.zeros(7), tol=1e-10)
    b, _, _ = logreg.lbfgs(fg, np.zeros(7), tol=1e-10)
    assert np.max(np.abs(a - b)) < 1e-6


def test_warm_started_path_equals_separate_fits():
    rng = np.random.default_rng(4)
    x, y = blobs(rng, 150, 4, 3, spread=2.0)
    path = LogReg.fit_path(x, y, 3, [0.1, 1.0, 10.0])
    for m in path:
        alone = LogReg.fit(x, y, 3, m.c)
        assert np.max(np.abs(m.predict_proba(x) - alone.predict_proba(x))) < 1e-5


@pytest.mark.parametrize("k", [2, 3])
def test_parity_with_sklearn(k):
    sklearn = pytest.importorskip("sklearn.linear_model", reason="scikit-learn not installed")
    rng = np.random.default_rng(5 + k)
    xa, ya = blobs(rng, 600, 5, k, spread=4.0)
    x, y, xt, yt = xa[:400], ya[:400], xa[400:], ya[400:]
    for c in (0.05, 1.0):
        ours = LogReg.fit(x, y, k, c)
        xs = (x - ours.mean) / ours.scale
        ref = sklearn.LogisticRegression(C=c, tol=1e-12, max_iter=100000).fit(xs, y)
        xts = (xt - ours.mean) / ours.scale
        assert np.max(np.abs(ours.predict_proba(xt) - ref.predict_proba(xts))) < 1e-5
        assert np.array_equal(ours.predict(xt), ref.predict(xts))
        coef = ours.coef.T if k > 2 else ours.coef[:, 0][None]
        assert np.max(np.abs(coef - ref.coef_)) < 1e-4
        acc = np.mean(ours.predict(xt) == yt)
        assert acc == pytest.approx(ref.score(xts, yt), abs=1e-12) and 0.5 < acc < 1.0


def test_stratified_folds_are_seeded_balanced_and_deterministic():
    y = np.array([0] * 23 + [1] * 10 + [2] * 7)
    a = stratified_folds(y, 5, 0)
    assert np.array_equal(a, stratified_folds(y, 5, 0))
    assert not np.array_equal(a, stratified_folds(y, 5, 1))
    sizes = np.bincount(a, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 40
    for label in range(3):
        per = np.bincount(a[y == label], minlength=5)
        assert per.max() - per.min() <= 1


def test_choose_c_is_deterministic_and_picks_the_best_mean():
    rng = np.random.default_rng(6)
    x, y = blobs(rng, 120, 8, 2, spread=6.0)
    c1, per1 = choose_c(x, y, 2, 5, seed=3)
    c2, per2 = choose_c(x, y, 2, 5, seed=3)
    assert (c1, per1) == (c2, per2)
    assert per1[c1] == max(per1.values()) and set(per1) == set(C_GRID)
    # the first C reaching the best mean wins (the strongest regularisation among ties)
    assert c1 == min(c for c, v in per1.items() if v == per1[c1])


# ---- features and the end-to-end probe --------------------------------------------------------

POS, NEG, FILLER = ["good", "great", "nice"], ["bad", "awful", "poor"], ["the", "a", "camera", "lens"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    words = POS + NEG + FILLER
    vec = rng.standard_normal((len(words), 6))
    vec[:, 0] = [1] * 3 + [-1] * 3 + [0] * 4  # a sentiment axis: every line is separable,
    vec[6:] = 0                                # at any C: filler words add nothing
    Vectors.from_arrays(words, vec).save_native(d / "v.ekv")

    def lines(n, seed):
        r = np.random.default_rng(seed)
        out = []
        for i in range(n):
            lab = "pos" if i % 2 else "neg"
            ws = [r.choice(POS if i % 2 else NEG)] + list(r.choice(FILLER, 2))
            r.shuffle(ws)
            out.append(f"{lab}\t{' '.join(ws)}")
        return out

    (d / "train.tsv").write_text("\n".join(lines(60, 1)) + "\n")
    (d / "test.tsv").write_text("\n".join(lines(20, 2) + ["neu\tthe camera", "pos\tzzz"]) + "\n")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(lines(60, 3) * 2) + "\n")
    tok = BPETokenizer.train([str(corpus)], 300)
    Encoder.train(str(corpus), tok, d / "enc", steps=5, dim=16, heads=2, ffn=32, layers=2,
                  max_len=8, batch_size=4, warmup=1, threads=1)
    return d


def test_vector_features_are_mean_word_vectors_and_zeros_for_unknown_lines(data):
    f = open_features(data / "v.ekv")
    v = f.vectors
    x, zero = f.matrix([["good", "lens", "unknown"], ["zzz"], []])
    assert np.allclose(x[0], (v["good"] + v["lens"]) / 2, atol=1e-7)
    assert not x[1].any() and not x[2].any() and zero == 2


@pytest.mark.parametrize("pool,layer", [("mean", -1), ("first", -1), ("mean", 0), ("first", 1)])
def test_encoder_features_are_pooled_encoder_states(data, pool, layer):
    f = open_features(data / "enc", pool=pool, layer=layer)
    enc = Encoder.load(data / "enc")
    texts = [["good", "camera", "the", "lens"], ["bad"], []]
    x, zero = f.matrix(texts)
    for words, row in zip(texts[:2], x):
        states = enc.embed(" ".join(words), layer=layer)
        want = states.mean(axis=0) if pool == "mean" else states[0]  # first: in its context
        assert np.allclose(row, want, atol=1e-5)
    assert not x[2].any() and zero == 1


def test_probe_api_on_a_separable_set(data):
    r = probe(data / "v.ekv", data / "train.tsv", data / "test.tsv", kfold=5)
    assert r["cv"] == "inner" and r["cv_accuracy"] == 1.0 and r["c"] in C_GRID
    # 20 separable lines right, 'neu' (never seen) and the all-unknown 'zzz' line: 20/22 at most
    assert r["n_train"] == 60 and r["n_test"] == 22 and r["test_unseen_labels"] == 1
    assert r["zero_feature_lines"] == {"train": 0, "test": 1}
    assert r["test_accuracy"] in (20 / 22, 21 / 22)
    assert r["labels"] == ["neg", "pos"] and r["dim"] == 6
    assert any("never seen in training" in w for w in r["warnings"])
    assert probe(data / "v.ekv", data / "train.tsv", data / "test.tsv", kfold=5) == r


def test_probe_without_test_runs_the_outer_cross_validation(data):
    r = probe(data / "v.ekv", data / "train.tsv", kfold=4)
    assert r["cv"] == "outer" and len(r["cv_fold_accuracy"]) == 4 and len(r["c_per_fold"]) == 4
    assert r["cv_accuracy"] == pytest.approx(np.mean(r["cv_fold_accuracy"]))
    assert r["test_accuracy"] is None and r["c"] is None


def test_cli_plain_and_json(data, capsys):
    code, out, err = run(["probe", data / "v.ekv", data / "train.tsv", data / "test.tsv",
                          "--kfold", 5, "--threads", 1, "-q"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "cv accuracy 1.0000" in lines
    assert any(line.startswith("test accuracy 0.9") for line in lines)
    assert "test lines with unseen labels 1 (counted wrong)" in lines
    assert err == ""
    code, out, err = run(["probe", data / "v.ekv", data / "train.tsv", "--kfold", 3, "--json",
                          "--threads", 1], capsys)
    assert code == 0
    r = json.loads(out)
    assert r["cv"] == "outer" and r["test_accuracy"] is None and r["kfold"] == 3


def test_cli_encoder_features(data, capsys):
    code, out, err = run(["probe", data / "enc", data / "train.tsv", data / "test.tsv",
                          "--kfold", 3, "--pool", "first", "--layer", 1, "--json", "-q"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["kind"] == "encoder" and r["dim"] == 16 and 0 <= r["test_accuracy"] <= 1


def test_unlabelled_lines_are_skipped_counted_and_warned(data, capsys, tmp_path):
    train = tmp_path / "t.tsv"
    train.write_text((data / "train.tsv").read_text() + "no label here\n\nanother one\n")
    code, out, err = run(["probe", data / "v.ekv", train, "--kfold", 3, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["skipped_unlabelled"]["train"] == 2
    assert "skipped 2 line(s) without a label" in err and "t.tsv:61" in err


@pytest.fixture
def bad(data, tmp_path):
    one = tmp_path / "one.tsv"
    one.write_text("pos\tgood camera\npos\tnice lens\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    nolabel = tmp_path / "nolabel.txt"
    nolabel.write_text("just text\nmore text\n")
    multi = tmp_path / "multi.txt"
    multi.write_text("__label__a __label__b good\n__label__a bad\n")
    text = tmp_path / "notvectors.txt"
    text.write_text("hello world\n")
    nanvec = tmp_path / "nan.vec"
    nanvec.write_text("2 2\ngood nan 1\nbad 1 0\n")
    (tmp_path / "folder").mkdir()
    return {"one": one, "empty": empty, "nolabel": nolabel, "multi": multi, "text": text,
            "nan": nanvec, "folder": tmp_path / "folder"}


@pytest.mark.parametrize("args,message", [
    (["{v}", "{one}"], "one label 'pos': a probe needs at least two classes"),
    (["{v}", "{empty}"], "empty.tsv: empty file: no labelled lines"),
    (["{v}", "{nolabel}"], "no labelled lines (2 without a label)"),
    (["{v}", "{multi}"], "multi.txt:1: line has 2 labels"),
    (["{text}", "{train}"], "unrecognised vector file"),
    (["{folder}", "{train}"], "not an encoder folder"),
    (["{missing}", "{train}"], "no such file or folder"),
    (["{nan}", "{train}"], "nan"),
    (["{v}", "{train}", "--kfold", "1"], "--kfold must be at least 2"),
    (["{v}", "{train}", "--kfold", "61"], "--kfold 61 needs at least 61 labelled training lines"),
    (["{v}", "{train}", "--layer", "1"], "--layer applies to an encoder"),
    (["{v}", "{train}", "--pool", "first"], "--pool first applies to an encoder"),
    (["{enc}", "{train}", "--layer", "5"], "--layer must be in -3..2"),
    (["{v}", "{train}", "{missing}"], "no such file"),
    (["{v}", "{missing}"], "no such file"),
])
def test_bad_input_is_one_line_exit_2(data, bad, capsys, tmp_path, args, message):
    names = dict(bad, v=data / "v.ekv", train=data / "train.tsv", enc=data / "enc",
                 missing=tmp_path / "missing.tsv")
    argv = ["probe"] + [a.format(**names) for a in args]
    if "--kfold" not in args:
        argv += ["--kfold", "3"]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("embedkit: error: ") and err.count("\n") == 1, err
    assert message.lower() in err.lower()


def test_a_finetuned_model_is_not_features(data, capsys, tmp_path):
    from embedkit.store import write_store

    write_store(tmp_path / "m.ekc", "encoder-classifier", {}, {})
    code, _, err = run(["probe", tmp_path / "m.ekc", data / "train.tsv"], capsys)
    assert code == 2 and "is a fine-tuned classifier" in err
