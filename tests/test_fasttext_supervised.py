"""Supervised fastText `.bin` and quantized `.ftz`: word vectors and predictions equal fastText's.

Models are trained in the test with fasttext-wheel (tiny dims, few epochs). The reference for
predictions is the wheel's single-line ``predict`` (``ft.f.predict(line + "\\n", k, threshold,
"strict")``): its list form returns wrong probabilities under NumPy 2 (one value repeated).
"""
from __future__ import annotations

import random
import struct
import subprocess
import sys

import numpy as np
import pytest

from embedkit.errors import EmbedkitError, InputError, UsageError
from embedkit.vectors.model import UnknownWordError, load

fasttext = pytest.importorskip("fasttext", reason="fasttext-wheel (test extra) not installed")
from embedkit.classify import fasttext as ftc  # noqa: E402  (after the skip: needs numba)
from embedkit.classify.metrics import top_k  # noqa: E402

VOCAB = ("good bad great awful film movie plot actor boring fun love hate café über naïve the a "
         "is was 日本 ok").split()
TEST_EXTRA = ["unseen", "zzqx", "goood", "filmy", "日本語", "__label__pos", "__label__xyz",
              "</s>"]
OOV = ["zzqx", "héllo", "naïveté", "日本語", "goood", "a", "filmy", "🙂ok"]
LOSSES = ("softmax", "hs", "ns", "ova")
CONFIGS = ((1, 0), (2, 0), (2, 4))  # (wordNgrams, maxn)


def _line(rng, words, label_pool, multi=False):
    labels = rng.sample(label_pool, rng.randint(1, 2) if multi else 1)
    text = [rng.choice(words) for _ in range(rng.randint(1, 14))]
    if "pos" in labels:
        text += ["good", "love"][: rng.randint(0, 2)]
    return " ".join([f"__label__{x}" for x in labels] + text)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftsup")
    rng = random.Random(0)
    labels = ["pos", "neg", "neu", "mixed"]
    (d / "train.txt").write_text("\n".join(_line(rng, VOCAB, labels, multi=i % 3 == 0)
                                           for i in range(600)) + "\n", encoding="utf-8")
    test = [" ".join(rng.choice(VOCAB + TEST_EXTRA) for _ in range(rng.randint(0, 25)))
            for _ in range(400)]
    test += ["", "a </s> good good good", "__label__neg", " ".join(rng.choice(VOCAB)
                                                                    for _ in range(3000))]
    # Many labels (>= 256 output rows) so the output matrix can be quantized (-qout).
    many = []
    for _ in range(3000):
        k = rng.randrange(300)
        words = " ".join(f"w{(k + rng.randrange(4)) % 400}" for _ in range(5))
        many.append(f"__label__L{k} {words}")
    (d / "many.txt").write_text("\n".join(many) + "\n", encoding="utf-8")
    many_test = [" ".join(f"w{rng.randrange(420)}" for _ in range(rng.randint(0, 8)))
                 for _ in range(200)]
    return d, test, many_test


def _train(d, name, **kw):
    opts = dict(dim=8, epoch=3, minCount=1, bucket=2000, thread=1, verbose=0, seed=1)
    opts.update(kw)
    m = fasttext.train_supervised(str(d / opts.pop("input", "train.txt")), **opts)
    path = d / f"{name}.bin"
    m.save_model(str(path))
    return m, path


@pytest.fixture(scope="module")
def models(data):
    """name -> (path, test lines); .bin for every loss x config, and .ftz variants."""
    d, test, many_test = data
    out = {}
    for loss in LOSSES:
        for ngrams, maxn in CONFIGS:
            name = f"{loss}-n{ngrams}-m{maxn}"
            _, path = _train(d, name, loss=loss, wordNgrams=ngrams, minn=2 if maxn else 0,
                             maxn=maxn)
            out[name] = (path, test)
    quant = {  # name: (base model, quantize options)
        "q-plain": ("softmax-n2-m4", dict(qnorm=False, cutoff=0, retrain=False, dsub=3)),
        "q-qnorm-cutoff-retrain": ("softmax-n2-m4", dict(qnorm=True, cutoff=300, retrain=True,
                                                         epoch=1)),
        "q-hs-cutoff": ("hs-n2-m0", dict(qnorm=True, cutoff=260, retrain=False)),
        "q-ova": ("ova-n2-m4", dict(qnorm=False, cutoff=400, retrain=False)),
    }
    for name, (base, kw) in quant.items():
        m = fasttext.load_model(str(d / f"{base}.bin"))
        m.quantize(input=str(d / "train.txt"), verbose=0, **kw)
        m.save_model(str(d / f"{name}.ftz"))
        out[name] = (d / f"{name}.ftz", test)
    for loss in ("softmax", "hs"):
        m, _ = _train(d, f"many-{loss}", input="many.txt", dim=6, epoch=2, loss=loss, wordNgrams=2,
                      bucket=1000)
        m.quantize(input=str(d / "many.txt"), qnorm=True, qout=True, cutoff=0, retrain=False)
        m.save_model(str(d / f"many-{loss}-qout.ftz"))
        out[f"many-{loss}-qout"] = (d / f"many-{loss}-qout.ftz", many_test)
    return out


def _reference(ft, line, k=-1):
    return ft.f.predict(line + "\n", k, 0.0, "strict")  # [(prob, label), ...], best first


def test_word_vectors_equal_fasttext(models):
    for name, (path, _) in models.items():
        ft = fasttext.load_model(str(path))
        vecs = load(path)
        assert vecs.words == ft.get_words(), name
        got = np.asarray(vecs.vectors)
        want = np.stack([ft.get_word_vector(w) for w in vecs.words])
        assert np.abs(got - want).max() < 1e-5, name
        for w in OOV:
            ref = ft.get_word_vector(w)
            try:
                mine = vecs[w]
            except UnknownWordError:  # no n-gram row at all: fastText gives zeros
                assert not ref.any(), (name, w)
                continue
            assert np.abs(mine - ref).max() < 1e-5, (name, w)
        kind = None if vecs.scheme is None else vecs.scheme.kind
        if vecs.settings["maxn"] == 0:
            assert kind is None, name
        else:
            assert kind == ("char-pruned" if vecs.settings["pruned"] else "char"), name


def test_predictions_equal_fasttext_on_every_line(models):
    for name, (path, lines) in models.items():
        ft = fasttext.load_model(str(path))
        pred = ftc.load(path)
        assert pred.label_prefix == "__label__" and pred.label_style == "fasttext"
        assert pred.labels == [lab[len("__label__"):] for lab in ft.get_labels()], name
        assert pred.multilabel == name.startswith(("ova", "q-ova"))
        probs = pred.predict_proba([line.split() for line in lines])
        assert probs.dtype == np.float32 and probs.shape == (len(lines), len(pred.labels))
        index = {"__label__" + lab: j for j, lab in enumerate(pred.labels)}
        ours_top2 = top_k(probs, k=2)
        worst = 0.0
        for i, line in enumerate(lines):
            ref = _reference(ft, line)
            cols = [index[lab] for _, lab in ref]
            worst = max(worst, float(np.abs(probs[i, cols] - [p for p, _ in ref]).max()))
            # The same top-2 labels, except where two labels tie exactly (then the order is the
            # heap's or, for hs, the tree walk's; the metrics' top_k breaks ties by index).
            for (j, p), (ref_p, lab) in zip(ours_top2[i], _reference(ft, line, 2)):
                assert j == index[lab] or abs(p - ref_p) < 1e-7, (name, line)
                assert abs(p - ref_p) < 1e-4
        assert worst < 1e-4, (name, worst)


def test_byte_path_gives_the_string_paths_probabilities(models, tmp_path):
    """``classify predict``'s bytes -> ids kernel (models without char n-grams) scores every
    line exactly as ``predict_proba`` does from strings, so it is held to fastText above."""
    from embedkit.classify.data import split_words

    seen = 0
    for name, (path, lines) in models.items():
        pred = ftc.load(path)
        vocab = pred.byte_vocab()
        if pred.model.args["maxn"] > 0:
            assert vocab is None, name
            continue
        seen += 1
        f = tmp_path / f"{name}.txt"
        f.write_text("\n".join(lines) + "\n", encoding="utf-8")
        got = np.concatenate([pred.predict_ids(*b) for b in vocab.batches([str(f)], "__label__",
                                                                          size=37)])
        want = pred.predict_proba([[w for w in split_words(line) if not w.startswith("__label__")]
                                   for line in lines])
        assert np.array_equal(got, want), name
    assert seen >= 5  # every loss with maxn 0, and the quantized ones without char n-grams


def test_threaded_batches_equal_one_thread(models, monkeypatch):
    path, lines = models["q-hs-cutoff"]
    pred = ftc.load(path)
    texts = [line.split() for line in lines]
    threaded = pred.predict_proba(texts)
    monkeypatch.setattr(ftc, "_WORKERS", 1)
    assert np.array_equal(pred.predict_proba(texts), threaded)


def test_long_lines_are_not_cut_like_fasttext(models):
    """fastText's supervised ``getLine`` reads the whole line (MAX_LINE_SIZE only applies to
    unsupervised training): a 3,000-token line must not be cut at 1,024 tokens."""
    path, lines = models["hs-n2-m0"]
    long = max(lines, key=len).split()
    assert len(long) == 3000
    ft = fasttext.load_model(str(path))
    pred = ftc.load(path)
    full, cut = pred.predict_proba([long, long[:1024]])
    j = {lab: i for i, lab in enumerate(pred.labels)}
    ref = {lab[len("__label__"):]: p for p, lab in _reference(ft, " ".join(long))}
    assert max(abs(full[j[lab]] - p) for lab, p in ref.items()) < 1e-6
    assert max(abs(cut[j[lab]] - p) for lab, p in ref.items()) > 1e-5


def test_other_label_prefix(data):
    d, test, _ = data
    rng = random.Random(3)
    lines = [_line(rng, VOCAB, ["pos", "neg"]).replace("__label__", "#") for _ in range(300)]
    (d / "hash.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ft, path = _train(d, "hash", input="hash.txt", label="#", wordNgrams=2)
    pred = ftc.load(path)
    assert pred.label_prefix == "#" and sorted(pred.labels) == ["neg", "pos"]
    # The model as trained (fastText's args.label = "#"): "#x" tokens are labels, "__label__x"
    # tokens are words.
    probe = test[:100] + ["#pos good", "#neg", "#other good", "__label__pos bad"]
    probs = pred.predict_proba([line.split() for line in probe])
    for i, line in enumerate(probe):
        ref = _reference(ft, line)
        for p, lab in ref:
            assert abs(probs[i, pred.labels.index(lab[1:])] - p) < 1e-4, line
    assert ftc.label_prefix(["lbl:a", "lbl:b"]) == "lbl:" and ftc.label_prefix(["#x"]) == "#"


def test_huffman_tree_matches_fasttext_shape():
    left, right = ftc.huffman_tree(np.array([5, 3, 2, 1]))
    # leaves 3 (count 1) and 2 (2) merge into node 4 (3); node 4 then comes before leaf 1 (3):
    # a leaf is taken first only when its count is strictly smaller; the root joins 0 and 5
    assert (left[4:].tolist(), right[4:].tolist()) == ([3, 4, 0], [2, 1, 5])
    with pytest.raises(ValueError):
        ftc.huffman_tree(np.array([10 ** 15, 10 ** 15, 10 ** 15]))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True,
                          text=True)


def test_nn_and_vectors_cli_on_a_supervised_model(models):
    path = models["softmax-n2-m4"][0]
    ft = fasttext.load_model(str(path))
    r = _cli("nn", str(path), "good", "-k", "3")
    assert r.returncode == 0, r.stderr
    got = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert got == [w for w, _ in load(path).most_similar("good", 3)] and len(got) == 3
    r = _cli("vectors", str(path), "good", "zzqx")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["good", "zzqx"]
    for line in lines:
        word, *vals = line.split(" ")
        assert np.abs(np.array(vals, np.float32) - ft.get_word_vector(word)).max() < 1e-5


def test_classify_predict_and_test_cli_on_fasttext_models(models, data, tmp_path):
    d, _, _ = data
    path, lines = models["q-qnorm-cutoff-retrain"]
    ft = fasttext.load_model(str(path))
    (tmp_path / "in.txt").write_text("\n".join(lines[:150]) + "\n", encoding="utf-8")
    r = _cli("classify", "predict", str(path), str(tmp_path / "in.txt"), "-k", "2", "--prob")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert len(out) == 150
    for line, got in zip(lines, out):
        fields = got.split(" ")
        ref = _reference(ft, line, 2)
        assert [f for f in fields[::2]] == [lab for _, lab in ref] or \
            abs(ref[0][0] - ref[-1][0]) < 1e-7, line
        assert np.allclose(np.array(fields[1::2], float), [p for p, _ in ref], atol=1e-4)
    labelled = (d / "train.txt").read_text("utf-8").splitlines()[:200]
    (tmp_path / "test.txt").write_text("\n".join(labelled) + "\n", encoding="utf-8")
    r = _cli("classify", "test", str(path), str(tmp_path / "test.txt"), "-k", "2")
    assert r.returncode == 0, r.stderr
    n, p, rec = ft.test(str(tmp_path / "test.txt"), k=2)
    assert r.stdout.splitlines() == [f"N\t{n}", f"P@2\t{p:.3g}", f"R@2\t{rec:.3g}"]  # as fastText
    (tmp_path / "cut.ftz").write_bytes(path.read_bytes()[:-100])
    r = _cli("classify", "predict", str(tmp_path / "cut.ftz"), str(tmp_path / "in.txt"))
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"embedkit: error: {tmp_path / 'cut.ftz'}: truncated fastText file")


def test_convert_ftz(models, tmp_path):
    ft = fasttext.load_model(str(models["q-plain"][0]))
    load(models["q-plain"][0]).save(tmp_path / "q.ekv")
    native = load(tmp_path / "q.ekv")
    for w in native.words[:5] + OOV[:4]:
        assert np.abs(native[w] - ft.get_word_vector(w)).max() < 1e-5
    with pytest.raises(UsageError, match="pruned"):  # its n-gram map has no native form
        load(models["q-qnorm-cutoff-retrain"][0]).save(tmp_path / "p.ekv")
    load(models["q-qnorm-cutoff-retrain"][0]).save(tmp_path / "p.vec", format="vec")
    pruned = fasttext.load_model(str(models["q-qnorm-cutoff-retrain"][0]))
    text = load(tmp_path / "p.vec")
    assert text.words == pruned.get_words()
    assert np.abs(text["good"] - pruned.get_word_vector("good")).max() < 1e-5


def test_truncated_and_corrupt_files_give_one_line_errors(models, tmp_path):
    rng = random.Random(7)
    for name in ("softmax-n2-m4", "q-qnorm-cutoff-retrain", "many-hs-qout"):
        data = models[name][0].read_bytes()
        for cut in (10, 70, 200, len(data) // 3, len(data) // 2, len(data) - 1):
            (tmp_path / "cut.bin").write_bytes(data[:cut])
            with pytest.raises(InputError):
                load(tmp_path / "cut.bin")
            with pytest.raises(InputError):
                ftc.load(tmp_path / "cut.bin")
        if name == "q-qnorm-cutoff-retrain":
            r = _cli("nn", str(tmp_path / "cut.bin"), "good")
            assert r.returncode == 2 and r.stdout == ""
            assert r.stderr.count("\n") == 1 and r.stderr.startswith("embedkit: error: "), r.stderr
        for _ in range(60):  # byte flips and header numbers: a clean error or finite answers
            d = bytearray(data)
            if rng.random() < 0.5:
                for _ in range(rng.randint(1, 4)):
                    d[rng.randrange(len(d))] = rng.randrange(256)
            else:
                off = rng.randrange(0, 160)
                d[off:off + 4] = struct.pack("<i", rng.choice([0, -1, 2 ** 31 - 1, 255, 1]))
            (tmp_path / "bad.bin").write_bytes(bytes(d))
            for use in (lambda: load(tmp_path / "bad.bin")["good"],
                        lambda: ftc.load(tmp_path / "bad.bin").predict_proba([["good", "zz"], []])):
                try:
                    assert np.isfinite(use()).all()
                except EmbedkitError:
                    pass


def test_wrong_kinds_of_fasttext_file_are_refused(shared_data, tmp_path):
    for name in ("lee_fasttext_new.bin", "lee_fasttext.bin", "toy-model.bin"):
        path = shared_data / "fasttext" / name
        assert len(load(path)) > 0  # the real unsupervised files still load
        with pytest.raises(InputError, match="unsupervised|pre-2017"):
            ftc.load(path)


_BOUNDS_CHILD = r'''
import random, struct, sys
import numpy as np
from embedkit.errors import EmbedkitError
from embedkit.classify import fasttext as ftc
from embedkit.vectors.model import load
rng = random.Random(11)
for src in sys.argv[2:]:
    data = open(src, "rb").read()
    for n in range(40):
        d = bytearray(data)
        if n:
            for _ in range(rng.randint(1, 6)):
                d[rng.randrange(len(d))] = rng.randrange(256)
        open(sys.argv[1], "wb").write(bytes(d))
        for use in (lambda: load(sys.argv[1])["good"],
                    lambda: ftc.load(sys.argv[1]).predict_proba([["good", "zz", "a"], [], ["x"]])):
            try:
                use()
            except EmbedkitError:
                pass
print("ok")
'''


def test_kernels_stay_in_bounds_on_corrupt_models(models, tmp_path):
    """Mutated models under NUMBA_BOUNDSCHECK=1 (own cache dir): an out-of-bounds index would be
    an IndexError, which the child does not catch."""
    import os

    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    files = [str(models[n][0]) for n in ("hs-n2-m4", "q-qnorm-cutoff-retrain", "many-hs-qout")]
    r = subprocess.run([sys.executable, "-c", _BOUNDS_CHILD, str(tmp_path / "m.bin"), *files],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
