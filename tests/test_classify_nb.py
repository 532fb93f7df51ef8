"""``classify train --model nb`` (NB-weighted logistic regression): log-count ratios by hand,
parity with scikit-learn's LogisticRegression on the same scaled features, the CLI end to end,
the model file (round trip, determinism, every lying field) and accuracy on the probe sets."""
from __future__ import annotations

import hashlib
import json
import random
import sys

import numpy as np
import pytest

from embedkit import Classifier
from embedkit.classify.model import load_model
from embedkit.classify.nb import NBClassifier
from embedkit.cli import main
from embedkit.errors import InputError, UsageError
from embedkit.store import read_store, write_store
from cli_run import main_ok, one_error, run

sklearn = pytest.importorskip("sklearn.linear_model")

BIG = 2**30 - 1  # buckets: n-gram collisions among a few hundred bigrams are then ~impossible


def corpus(path, n, labels, seed, multi=False):
    """Lines whose words lean to their label (w{label}{i}) over shared noise; with ``multi``
    some lines carry two labels."""
    rnd = random.Random(seed)
    out, rows = [], []
    for _ in range(n):
        labs = [rnd.choice(labels)]
        if multi and rnd.random() < 0.4:
            labs = sorted(set(labs + [rnd.choice(labels)]))
        words = [f"w{rnd.choice(labs)}{rnd.randrange(6)}" for _ in range(2)]
        words += [f"n{rnd.randrange(12)}" for _ in range(rnd.randrange(1, 5))]
        rnd.shuffle(words)
        rows.append((labs, words))
        out.append(" ".join(f"__label__{lab}" for lab in labs) + " " + " ".join(words))
    path.write_text("\n".join(out) + "\n")
    return rows


def feature_sets(words, ngrams):
    """The features of a line, written independently of embedkit: words and joined n-grams."""
    f = set(words)
    for k in range(2, ngrams + 1):
        f |= {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}
    return f


def reference(rows, labels, c, ngrams, tests):
    """scikit-learn NB-LR per one-vs-rest problem: (logits of ``tests`` [n, K], ratios [K])."""
    from sklearn.linear_model import LogisticRegression

    sets = [feature_sets(w, ngrams) for _, w in rows]
    names = sorted(set().union(*sets))
    col = {f: j for j, f in enumerate(names)}
    X = np.zeros((len(rows), len(names)))
    for i, s in enumerate(sets):
        X[i, [col[f] for f in s]] = 1
    T = np.zeros((len(tests), len(names)))
    for i, w in enumerate(tests):
        T[i, [col[f] for f in feature_sets(w, ngrams) if f in col]] = 1
    logits, ratios = [], []
    for lab in labels:
        y = np.array([lab in labs for labs, _ in rows])
        p = 1 + X[y].sum(0)
        q = 1 + X[~y].sum(0)
        r = np.log((p / p.sum()) / (q / q.sum()))
        m = LogisticRegression(C=c, tol=1e-12, max_iter=100_000).fit(X * r, y)
        logits.append(m.decision_function(T * r))
        ratios.append(np.sort(r))
    return np.stack(logits, axis=1), ratios


def test_log_count_ratio_by_hand(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text("__label__a x y\n__label__a x x\n__label__b y z\n")
    m = Classifier.train(t, model="nb", word_ngrams=1)
    assert m.words == ["x", "y", "z"] and m.labels == ["a", "b"] and m.ratio.shape == (3, 1)
    # positive class b: p = 1 + [0, 1, 1], q = 1 + [2, 1, 0] (x counted once per line)
    assert m.ratio[:, 0] == pytest.approx(np.log([(1 / 5) / (3 / 6), (2 / 5) / (2 / 6),
                                                  (2 / 5) / (1 / 6)]), abs=1e-6)
    z, _ = reference([(["a"], ["x", "y"]), (["a"], ["x", "x"]), (["b"], ["y", "z"])], ["b"], 1.0,
                     1, [["x"], ["z", "q"], []])
    assert m.decision([["x"], ["z", "q"], []])[:, 0] == pytest.approx(z[:, 0], abs=1e-4)


def test_word_ngrams_defaults_to_2_with_nb_and_1_without(tmp_path, capsys):
    t = tmp_path / "t.txt"
    t.write_text("__label__a x y\n__label__a x x\n__label__b y z\n")
    assert Classifier.train(t, model="nb").settings["word_ngrams"] == 2
    assert Classifier.train(t, epochs=1, dim=4).settings["word_ngrams"] == 1
    for extra, want in ((["--model", "nb"], 2), ([], 1), (["--model", "nb", "--word-ngrams", "1"], 1)):
        out = tmp_path / f"m{len(extra)}.ekc"
        code, _, err = run(["classify", "train", str(t), "-o", str(out), "-q", *extra], capsys)
        assert code == 0, err
        assert load_model(out).settings["word_ngrams"] == want


@pytest.mark.parametrize("ngrams,c", [(1, 1.0), (2, 1.0), (3, 0.3)])
def test_binary_matches_sklearn(tmp_path, ngrams, c):
    rows = corpus(tmp_path / "t.txt", 120, ["p", "q"], seed=ngrams)
    tests = [w for _, w in corpus(tmp_path / "u.txt", 40, ["p", "q"], seed=99)]
    m = Classifier.train(tmp_path / "t.txt", model="nb", word_ngrams=ngrams, buckets=BIG, l2=c)
    z, ratios = reference(rows, [m.labels[1]], c, ngrams, tests)
    assert m.ratio.shape[0] == len(ratios[0])  # as many columns as distinct features: no collision
    assert np.sort(m.ratio[:, 0]) == pytest.approx(ratios[0], abs=1e-5)
    p1 = 1 / (1 + np.exp(-z[:, 0]))
    got = m.predict_proba(tests)
    assert got.dtype == np.float32 and got.shape == (40, 2)
    assert got[:, 1] == pytest.approx(p1, abs=1e-4) and got.sum(1) == pytest.approx(1, abs=1e-6)


def test_ngram_buckets_hash_as_the_fasttext_style_model(tmp_path):
    from embedkit.classify.kernels import word_hashes
    from embedkit.classify.tables import encoded

    t = tmp_path / "t.txt"
    t.write_text("__label__a aa bb cc\n__label__b cc aa\n")
    m = Classifier.train(t, model="nb", word_ngrams=3, buckets=1000)
    h = dict(zip(["aa", "bb", "cc"], word_hashes(*encoded(["aa", "bb", "cc"])).tolist()))

    def bucket(*ws):  # fastText's Dictionary::addWordNgrams in uint64
        v = h[ws[0]] % 2**64
        for w in ws[1:]:
            v = (v * 116049371 + h[w] % 2**64) % 2**64
        return v % 1000

    want = {bucket("aa", "bb"), bucket("aa", "bb", "cc"), bucket("bb", "cc"), bucket("cc", "aa")}
    assert m.bucket_ids.tolist() == sorted(want)


def plain_scores(m, tests):
    """The logits of ``tests`` in plain Python from the model's own arrays (each distinct word
    and stored n-gram bucket once), and the (unseen word in the n-gram, bucket stored) pairs met."""
    from embedkit.classify.kernels import word_hashes
    from embedkit.classify.tables import encoded

    V, n, buckets = len(m.words), int(m.settings["word_ngrams"]), int(m.settings["buckets"])
    col = {w: i for i, w in enumerate(m.words)}
    stored = {b: V + i for i, b in enumerate(m.bucket_ids.tolist())}
    v = m.ratio.astype(np.float64) * m.weight
    want, hits = [], set()
    for words in tests:
        words = [w.lower() for w in words] if m.lowercase else words
        h = word_hashes(*encoded(words)).tolist() if words else []
        feats = {col[w] for w in words if w in col}
        for a in range(len(words)):
            x = h[a] % 2**64
            for b in range(a + 1, min(len(words), a + n)):
                x = (x * 116049371 + h[b] % 2**64) % 2**64
                hits.add((any(w not in col for w in words[a:b + 1]), x % buckets in stored))
                if x % buckets in stored:
                    feats.add(stored[x % buckets])
        want.append(m.bias + sum((v[j] for j in feats), np.zeros(len(m.bias))))
    return np.array(want), hits


@pytest.mark.parametrize("ngrams,lower,buckets", [(2, False, 5), (3, True, 5), (2, False, 11)])
def test_prediction_scores_each_distinct_feature_once(tmp_path, ngrams, lower, buckets):
    """Prediction against the plain-Python scorer: with few buckets, n-grams of unseen words land
    on stored buckets; repeats count once; unknown columns are skipped; words are lower-cased
    when the model is; the batch's first unseen word (``zz``) also ends an n-gram."""
    t = tmp_path / "t.txt"
    t.write_text("__label__a Aa bb cc\n__label__b cc aa dd\n__label__c bb bb ee\n")
    m = Classifier.train(t, model="nb", word_ngrams=ngrams, buckets=buckets, lowercase=lower)
    tests = [["aa", "zz", "bb"], ["aa", "bb", "aa", "bb"], ["zz", "AA", "qq", "cc"], [], ["qq"],
             ["ee"] * 3 + ["cc"], ["cc", "qq", "zz", "yy", "bb"]]
    want, hits = plain_scores(m, tests)
    assert (True, True) in hits and (True, False) in hits  # unseen n-grams: stored or not
    assert m.decision(tests) == pytest.approx(want, abs=1e-12)


def test_prediction_of_a_line_with_more_features_than_the_first_buffer(tmp_path):
    """A line of ~600 distinct known words (the kernel starts with room for 256 features) scores
    as the plain-Python scorer says, and so do the lines after it."""
    rng = random.Random(5)
    words = [f"w{i}" for i in range(600)]
    t = tmp_path / "t.txt"
    t.write_text("".join(f"__label__{'ab'[i % 2]} {' '.join(rng.sample(words, 8))}\n"
                         for i in range(400)))
    m = Classifier.train(t, model="nb", word_ngrams=2, buckets=BIG)
    tests = [words, ["w1", "w2"], list(reversed(words))[:300]]
    assert len(m.words) > 580
    want, _ = plain_scores(m, tests)
    assert m.decision(tests) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("loss", ["softmax", "ova"])
def test_multiclass_and_multilabel_match_sklearn(tmp_path, loss):
    labels = ["r", "s", "t"]
    rows = corpus(tmp_path / "t.txt", 150, labels, seed=3, multi=loss == "ova")
    tests = [w for _, w in corpus(tmp_path / "u.txt", 30, labels, seed=98)]
    m = Classifier.train(tmp_path / "t.txt", model="nb", word_ngrams=2, buckets=BIG, loss=loss)
    assert m.multilabel == (loss == "ova") and m.ratio.shape[1] == 3
    z, _ = reference(rows, m.labels, 1.0, 2, tests)
    assert m.decision(tests) == pytest.approx(z, abs=2e-4)
    p = m.predict_proba(tests)
    if loss == "ova":
        want = 1 / (1 + np.exp(-z))
    else:
        e = np.exp(z - z.max(1, keepdims=True))
        want = e / e.sum(1, keepdims=True)
    assert p == pytest.approx(want, abs=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb")
    corpus(d / "train.txt", 300, ["x", "y", "z"], seed=1)
    corpus(d / "test.txt", 100, ["x", "y", "z"], seed=2)
    model = d / "m.ekn"
    with pytest.raises(SystemExit) as e:
        main(["classify", "train", str(d / "train.txt"), "-o", str(model), "--model", "nb",
              "--word-ngrams", "2", "--buckets", "100000", "-q"])
    assert e.value.code == 0
    return d, model


def test_cli_test_and_predict(trained, capsys):
    d, model = trained
    m = load_model(model)
    assert isinstance(m, NBClassifier) and m.label_style == "fasttext" and not m.multilabel
    code, out, _ = run(["classify", "test", str(model), str(d / "test.txt")], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "N\t100" and float(lines[1].split("\t")[1]) > 0.9
    assert float(lines[1].split("\t")[1]) == pytest.approx(m.test(d / "test.txt")["precision_at_k"],
                                                           abs=1e-3)
    code, out, _ = run(["classify", "test", str(model), str(d / "test.txt"), "--json",
                        "--per-label", "-k", "2"], capsys)
    r = json.loads(out)
    assert r["k"] == 2 and set(r["per_label"]) == {"x", "y", "z"}
    code, out, _ = run(["classify", "test", str(model), str(d / "test.txt"), "--per-label"], capsys)
    assert "F1-Score : " in out and "confusion" in out
    texts = [ln.split()[1:] for ln in (d / "test.txt").read_text().splitlines()]
    probs = m.predict_proba(texts)
    code, out, _ = run(["classify", "predict", str(model), str(d / "test.txt"), "-k", "2",
                        "--prob"], capsys)
    rows = [ln.split() for ln in out.splitlines()]
    assert code == 0 and len(rows) == 100
    for row, p in zip(rows, probs):
        best = np.argsort(-p, kind="stable")[:2]
        assert [row[0], row[2]] == [f"__label__{m.labels[j]}" for j in best]
        assert float(row[1]) == pytest.approx(p[best[0]], rel=1e-5)
    code, out, _ = run(["classify", "predict", str(model), str(d / "test.txt"), "--threshold",
                        "1.01"], capsys)
    assert out == "\n" * 100


def test_round_trip_exact(trained, tmp_path):
    d, model = trained
    m = load_model(model)
    m.save(tmp_path / "again.ekn")
    assert (tmp_path / "again.ekn").read_bytes() == model.read_bytes()
    fresh = Classifier.train(d / "train.txt", model="nb", word_ngrams=2, buckets=100000)
    texts = [ln.split()[1:] for ln in (d / "test.txt").read_text().splitlines()] + [[], ["??"]]
    assert np.array_equal(fresh.predict_proba(texts), m.predict_proba(texts))
    assert fresh.predict(["wx1 n3"], k=3) == m.predict(["wx1 n3"], k=3)


def test_identical_files_whatever_threads(trained, tmp_path):
    d, model = trained
    digests = set()
    for i, threads in enumerate(["1", "1", "3"]):
        out = tmp_path / f"r{i}.ekn"
        assert main_ok(["classify", "train", str(d / "train.txt"), "-o", str(out), "--model",
                        "nb", "--word-ngrams", "2", "--buckets", "100000", "--seed", "5",
                        "--threads", threads, "-q"])
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1


@pytest.mark.parametrize("extra,needle", [
    (["--dim", "10"], "--dim"), (["--epochs", "5"], "--epochs"), (["--lr", "0.1"], "--lr"),
    (["--subwords", "char"], "--subwords"), (["--neg", "3"], "--neg"),
    (["--pretrained-vectors", "v.txt"], "--pretrained-vectors"), (["--loss", "hs"], "--loss hs"),
    (["--l2", "0"], "--l2"), (["--l2", "nan"], "--l2"), (["--l2", "big"], "--l2")])
def test_refused_options(trained, tmp_path, capsys, extra, needle):
    d, _ = trained
    out = tmp_path / "m.ekn"
    code, _, err = run(["classify", "train", str(d / "train.txt"), "-o", str(out), "--model", "nb",
                        *extra], capsys)
    assert needle in one_error(code, err) and not out.exists()


def test_l2_refused_for_fasttext_and_api_checks(trained, tmp_path, capsys):
    d, _ = trained
    code, _, err = run(["classify", "train", str(d / "train.txt"), "-o", str(tmp_path / "m"),
                        "--l2", "1"], capsys)
    assert "--l2 is only used with --model nb" in one_error(code, err)
    with pytest.raises(UsageError, match="--dim"):
        Classifier.train(d / "train.txt", model="nb", dim=5)
    with pytest.raises(UsageError, match="--model"):
        Classifier.train(d / "train.txt", model="svm")


def test_bad_training_data(tmp_path, capsys):
    empty = tmp_path / "e.txt"
    empty.write_text("")
    out = tmp_path / "m.ekn"
    code, _, err = run(["classify", "train", str(empty), "-o", str(out), "--model", "nb",
                        "-q"], capsys)
    assert "empty" in one_error(code, err) and not out.exists()
    t = tmp_path / "t.txt"
    t.write_text("__label__a good good\nno label here\n__label__b bad bad\nnor here\n")
    code, so, err = run(["classify", "train", str(t), "-o", str(out), "--model", "nb"], capsys)
    assert code == 0 and "2 lines" in so
    warn = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "t.txt:2: skipped 2 line(s) without a label" in warn[0]
    assert load_model(out).predict(["bad", "good"]) == [[("b", pytest.approx(0.5, abs=0.5))],
                                                        [("a", pytest.approx(0.5, abs=0.5))]]


@pytest.mark.parametrize("loss", ["softmax", "ova"])
def test_single_class(tmp_path, capsys, loss):
    t = tmp_path / "t.txt"
    t.write_text("__label__a one\n__label__a two\n")
    out = tmp_path / "m.ekn"
    code, _, err = run(["classify", "train", str(t), "-o", str(out), "--model", "nb", "--loss",
                        loss], capsys)
    assert code == 0 and "only one label ('a')" in err
    p = load_model(out).predict_proba([["one"], ["zzz"]])
    # softmax over one label: 1; ova: the smoothed prior (2 + 1) / (2 + 2)
    assert p[:, 0] == pytest.approx(1.0 if loss == "softmax" else 0.75)


def test_valid_reports_accuracy(trained, tmp_path, capsys):
    d, _ = trained
    code, out, err = run(["classify", "train", str(d / "train.txt"), "-o", str(tmp_path / "m"),
                          "--model", "nb", "--valid", str(d / "test.txt"), "--json"], capsys)
    h = json.loads(out)["history"]
    assert code == 0 and len(h) == 1 and h[0]["valid_accuracy"] > 0.9 and h[0]["iterations"] > 0
    assert "nb: " in err and "valid accuracy" in err


def _rewrite(src, dst, meta_fn=None, arrays_fn=None):
    meta, arrays = read_store(src, "nb-classifier", mmap=False)
    arrays = dict(arrays)
    if meta_fn:
        meta_fn(meta)
    if arrays_fn:
        arrays_fn(arrays)
    write_store(dst, "nb-classifier", meta, arrays)


def _set(d, key, value):
    d[key] = value


@pytest.mark.parametrize("meta_fn,arrays_fn,needle", [
    (lambda m: _set(m, "format", 9), None, "format"),
    (lambda m: _set(m["settings"], "loss", "hs"), None, "settings.loss"),
    (lambda m: _set(m["settings"], "word_ngrams", 0), None, "settings.word_ngrams"),
    (lambda m: _set(m["settings"], "buckets", 10), None, "bucket_ids"),
    (lambda m: _set(m["settings"], "l2", -1), None, "settings.l2"),
    (lambda m: _set(m, "labels", m["labels"][:2]), None, "ratio"),
    (lambda m: _set(m, "words", m["words"][:-1]), None, "ratio"),
    (lambda m: _set(m, "words", [m["words"][0]] * len(m["words"])), None, "words"),
    (lambda m: _set(m, "lowercase", "yes"), None, "lowercase"),
    (None, lambda a: _set(a, "bias", np.full(3, np.nan)), "bias"),
    (None, lambda a: _set(a, "weight", a["weight"][:, :2].copy()), "weight"),
    (None, lambda a: _set(a, "bucket_ids", a["bucket_ids"][::-1].copy()), "bucket_ids"),
    (None, lambda a: a.pop("ratio"), "ratio"),
])
def test_corrupt_model_file(trained, tmp_path, capsys, meta_fn, arrays_fn, needle):
    d, model = trained
    bad = tmp_path / "bad.ekn"
    _rewrite(model, bad, meta_fn, arrays_fn)
    with pytest.raises(InputError, match=needle):
        load_model(bad)
    code, out, err = run(["classify", "test", str(bad), str(d / "test.txt")], capsys)
    assert needle in one_error(code, err) and out == ""


def test_truncated_model_file(trained, tmp_path, capsys):
    d, model = trained
    bad = tmp_path / "cut.ekn"
    bad.write_bytes(model.read_bytes()[:-100])
    code, out, err = run(["classify", "predict", str(bad), str(d / "test.txt")], capsys)
    assert "truncated" in one_error(code, err) and out == ""


@pytest.mark.parametrize("name,floor", [("pros_cons", 0.944), ("movie_reviews", 0.88)])
def test_probe_set_accuracy(shared_data, name, floor):
    probe = shared_data / "probe"
    m = Classifier.train(probe / f"{name}.train.tsv", model="nb", word_ngrams=2, lowercase=True)
    assert m.label_style == "tsv"
    assert m.test(probe / f"{name}.test.tsv")["accuracy"] >= floor


def test_lowercase_kept_at_predict_and_stdin_training(tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b"__label__a Good day\n__label__b bad day\n__label__a good\n")))
    out = tmp_path / "m.ekn"
    code, _, _ = run(["classify", "train", "-", "-o", str(out), "--model", "nb", "--lowercase",
                      "-q"], capsys)
    m = load_model(out)
    assert code == 0 and m.lowercase and m.words == ["good", "day", "bad"]
    p = m.predict_proba([["GOOD"], ["good"], ["Bad"]])
    assert np.array_equal(p[0], p[1]) and p[0, 0] > p[2, 0]


@pytest.mark.parametrize("labels", [["p", "q"], ["r", "s", "t"]])
def test_l2_auto_cross_validates(tmp_path, labels):
    corpus(tmp_path / "t.txt", 200, labels, seed=4)
    m = Classifier.train(tmp_path / "t.txt", model="nb", l2="auto", seed=3)
    cv = m.settings["l2_cv"]
    assert cv["grid"] == [0.1, 0.3, 1.0, 3.0, 10.0] and len(cv["accuracy"]) == 5
    best = [c for c, a in zip(cv["grid"], cv["accuracy"]) if a >= max(cv["accuracy"]) - 1e-12]
    assert m.settings["l2"] == best[0]  # the best mean fold accuracy; ties: the smaller C
    assert all(0.5 < a <= 1 for a in cv["accuracy"])
    fixed = Classifier.train(tmp_path / "t.txt", model="nb", l2=m.settings["l2"])
    assert np.array_equal(m.predict_proba([["wp1", "n2"]]), fixed.predict_proba([["wp1", "n2"]]))
