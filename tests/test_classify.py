"""The supervised classifier: exact hashes, updates and trees against slow references, metrics
on hand-made predictions, model-file round trips and lies, and parity with fastText."""
from __future__ import annotations

import random

import numpy as np
import pytest

from embedkit.classify import kernels as K
from embedkit.classify.metrics import Scorer, evaluate, fasttext_lines, top_k
from embedkit.classify.model import Classifier, load_model
from embedkit.classify.tables import encoded, huffman
from embedkit.errors import InputError
from embedkit.subwords import fnv1a32

M64 = (1 << 64) - 1


# ---- slow references of fastText ---------------------------------------------------------------
def ref_int32_hash(word: str) -> int:
    h = fnv1a32(word.encode("utf-8", "surrogateescape"))
    return h - (1 << 32) if h >= 1 << 31 else h


def ref_word_ngrams(words: list[str], n: int, buckets: int) -> list[int]:
    """fastText's Dictionary::addWordNgrams: uint64 h = hashes[i] (sign-extended int32), then
    h = h * 116049371 + hashes[j]; bucket h % buckets."""
    hashes = [ref_int32_hash(w) for w in words]
    out = []
    for i in range(len(hashes)):
        h = hashes[i] & M64
        for j in range(i + 1, min(len(hashes), i + n)):
            h = (h * 116049371 + (hashes[j] & M64)) & M64
            out.append(h % buckets)
    return out


REF_TABLE = [1.0 / (1.0 + np.exp(-(i * 2 * 8.0 / 512 - 8.0))) for i in range(513)]


def ref_sigmoid(x: float) -> float:
    if x < -8:
        return 0.0
    if x > 8:
        return 1.0
    return REF_TABLE[int((x + 8) * 512 / 8 / 2)]


def ref_update(win, wout, rows, labels, lr, loss, target=None, negatives=(), tree=None):
    """fastText's Model::update + Loss::forward for one example, in float64 NumPy."""
    win, wout = win.astype(np.float64), wout.astype(np.float64)
    hidden = win[rows].mean(axis=0)
    grad = np.zeros_like(hidden)

    def binary(j, positive):
        score = ref_sigmoid(float(wout[j] @ hidden))
        alpha = lr * (float(positive) - score)
        grad[:] += alpha * wout[j]
        wout[j] += alpha * hidden

    if loss == "softmax":
        s = wout @ hidden
        p = np.exp(s - s.max())
        p /= p.sum()
        for j in range(len(wout)):
            alpha = lr * ((j == target) - p[j])
            grad += alpha * wout[j]
            wout[j] += alpha * hidden
    elif loss == "ns":
        binary(target, True)
        for j in negatives:
            binary(j, False)
    elif loss == "hs":
        ptr, node, code = tree
        for k in range(ptr[target], ptr[target + 1]):
            binary(node[k], code[k] == 1)
    else:
        for j in range(len(wout)):
            binary(j, j in labels)
    grad /= len(rows)
    for r in rows:
        win[r] += grad
    return win, wout


# ---- hashes -----------------------------------------------------------------------------------
WORDS = ["a", "b", "hello", "</s>", "café", "naïve\udcff", "日本"]


def test_word_hashes_match_fasttext_hash():
    data, offsets = encoded(WORDS)
    assert K.word_hashes(data, offsets).tolist() == [ref_int32_hash(w) for w in WORDS]
    # fnv1a32("a") is 0xe40c292c: negative as fastText's int32, so the n-gram sign extension matters
    assert ref_int32_hash("a") == 0xE40C292C - (1 << 32)


@pytest.mark.parametrize("n,buckets", [(2, 2_000_000), (3, 1000), (4, 7)])
def test_word_ngram_rows_match_add_word_ngrams(n, buckets):
    words = WORDS + ["a", "b"]
    data, offsets = encoded(words)
    hashes = K.word_hashes(data, offsets)
    m = len(words)
    ptr = np.arange(m + 1, dtype=np.int64)  # word w's bag: row w
    bag = np.arange(m, dtype=np.int64)
    bucket_row = np.full(buckets, -1, np.int32)
    bucket_row[::2] = 100 + np.arange(len(bucket_row[::2]))  # even buckets stored, odd virtual
    rows = np.empty(m * n, np.int64)
    empty = np.zeros(0, np.int64)
    nr = K._line_rows(np.arange(m, dtype=np.int64), m, m, ptr, bag, hashes, np.zeros(1, np.int64),
                      empty, empty, n, buckets, bucket_row, rows, np.empty(m, np.int64))
    want = [b // 2 + 100 if b % 2 == 0 else -(b + 1) for b in ref_word_ngrams(words, n, buckets)]
    assert rows[:m].tolist() == list(range(m))
    assert rows[m:nr].tolist() == want
    used = np.zeros(buckets, bool)
    ids = np.concatenate([[-2], np.arange(m), [-1]]).astype(np.int32)
    K.mark_ngrams(ids, hashes, n, buckets, used)
    assert set(np.flatnonzero(used).tolist()) == set(ref_word_ngrams(words, n, buckets))


def test_word_ngram_rows_are_fasttexts_own(tmp_path):
    """fastText's sentence vector of a supervised model is the mean of the line's input rows, word
    n-grams included: our rows for the same line, read from fastText's matrix, give it exactly."""
    fasttext = pytest.importorskip("fasttext")
    train = tmp_path / "t.txt"
    train.write_text("__label__a the cat sat on the mat\n__label__b le café était très bon\n" * 5)
    # thread=10: fastText's Matrix::uniform fills one tenth of the rows per thread (the rest stay
    # 0), so only with >= 10 threads do the bucket rows differ from each other.
    ft = fasttext.train_supervised(str(train), epoch=1, dim=8, wordNgrams=3, bucket=1009,
                                   minCount=1, thread=10, verbose=0)
    words = ft.get_words()
    V = len(words)
    index = {w: i for i, w in enumerate(words)}
    matrix = ft.get_input_matrix()
    assert np.all(np.abs(matrix).max(axis=1) > 0)
    hashA = K.word_hashes(*encoded(words))
    ptrA = np.arange(V + 1, dtype=np.int64)  # word w's bag: its row w
    bucket_row = V + np.arange(1009, dtype=np.int32)
    for text in ["the cat sat", "un café très unseen bon", "the"]:
        toks = text.split() + ["</s>"]
        oov = list(dict.fromkeys(w for w in toks if w not in index))
        ids = np.array([index[w] if w in index else V + oov.index(w) for w in toks], np.int64)
        hashB = K.word_hashes(*encoded(oov)) if oov else np.zeros(0, np.int64)
        rows = np.empty(len(toks) * 3, np.int64)
        nr = K._line_rows(ids, len(toks), V, ptrA, np.arange(V, dtype=np.int64), hashA,
                          np.zeros(len(oov) + 1, np.int64), np.zeros(0, np.int64), hashB, 3, 1009,
                          bucket_row, rows, np.empty(len(toks), np.int64))
        assert nr == sum(w in index for w in toks) + 2 * len(toks) - 3
        np.testing.assert_allclose(matrix[rows[:nr]].mean(axis=0), ft.get_sentence_vector(text),
                                   atol=1e-6)


# ---- one update step, each loss ------------------------------------------------------------------
def _one_step(loss, labels, L=3, dim=6, lr=0.3, neg=2):
    rng = np.random.default_rng(0)
    V = 5
    win = rng.uniform(-0.5, 0.5, (V, dim)).astype(np.float32)
    wout = rng.uniform(-0.5, 0.5, (L, dim)).astype(np.float32)
    ptr = np.arange(V + 1, dtype=np.int64)
    bag = np.arange(V, dtype=np.int64)
    ids = np.array([-(lab + 2) for lab in labels] + [1, 3, 3, 0, -1], np.int32)
    counts = np.array([50, 30, 20][:L], np.int64)
    tree = huffman(counts)
    from embedkit.wordvec.vocab import negative_table

    negtab = negative_table(counts, power=0.5)
    from embedkit.wordvec.kernels import seed_state

    rngs = np.array([seed_state(7, 1)], np.uint64)
    w1, o1 = win.copy(), wout.copy()
    st = K.train_lines(ids, np.zeros(1, np.int64), np.arange(L, dtype=np.int64), ptr, bag,
                       np.zeros(V, np.int64), 1, 0, np.zeros(0, np.int32), w1, o1,
                       {"softmax": 0, "ns": 1, "hs": 2, "ova": 3}[loss], neg, negtab, *tree,
                       K.sigmoid_table(), lr, 1e18, np.zeros(1, np.int64), 0, rngs,
                       np.zeros((1, 2)), np.zeros(1, np.int32), 4, 1)
    assert st == K.OK
    return win, wout, w1, o1, tree


@pytest.mark.parametrize("loss", ["softmax", "hs", "ova"])
def test_update_step_matches_reference(loss):
    labels = [1] if loss != "ova" else [0, 2]
    win, wout, w1, o1, tree = _one_step(loss, labels)
    rw, ro = ref_update(win, wout, [1, 3, 3, 0], labels, 0.3, loss, target=1, tree=tree)
    np.testing.assert_allclose(w1, rw, atol=1e-6)
    np.testing.assert_allclose(o1, ro, atol=1e-6)
    assert not np.allclose(w1, win)  # the step did move the rows


def test_ns_step_matches_reference():
    # Two labels: every negative of label 1 must be label 0 (fastText redraws the target).
    win, wout, w1, o1, _ = _one_step("ns", [1], L=2, neg=3)
    rw, ro = ref_update(win, wout, [1, 3, 3, 0], [1], 0.3, "ns", target=1, negatives=[0, 0, 0])
    np.testing.assert_allclose(w1, rw, atol=1e-6)
    np.testing.assert_allclose(o1, ro, atol=1e-6)


def test_huffman_tree_of_known_counts():
    # Worked by hand through fastText's buildTree: inner nodes 3 = {2, 1}, 4 = {3, 0}.
    ptr, node, code = huffman(np.array([5, 3, 2]))
    paths = [(node[ptr[j]:ptr[j + 1]].tolist(), code[ptr[j]:ptr[j + 1]].tolist()) for j in range(3)]
    assert paths == [([1], [1]), ([0, 1], [1, 0]), ([0, 1], [0, 0])]
    ptr, node, code = huffman(np.array([4]))
    assert ptr.tolist() == [0, 0] and len(node) == 0


# ---- metrics -----------------------------------------------------------------------------------
def test_top_k_ties_and_threshold():
    s = np.array([[0.4, 0.4, 0.2], [0.1, 0.6, 0.3]], np.float32)
    assert [[j for j, _ in r] for r in top_k(s, 2)] == [[1, 0], [1, 2]]  # tie: larger index first
    assert [[j for j, _ in r] for r in top_k(s, 3, threshold=0.3)] == [[1, 0], [1, 2]]
    assert top_k(s, 5)[0][2][0] == 2


def test_metrics_by_hand_multilabel():
    labels = ["a", "b", "c"]
    scores = np.array([[0.7, 0.2, 0.1],   # gold a       top2 a,b -> 1 correct of 2
                       [0.1, 0.5, 0.4],   # gold b,c     top2 b,c -> 2 of 2
                       [0.3, 0.3, 0.4],   # gold a       top2 c,b (tie: b over a) -> 0
                       [0.2, 0.5, 0.3]],  # gold z(unseen) top2 b,c -> 0
                      np.float32)
    Ex = __import__("collections").namedtuple("Ex", "labels words")
    exs = [Ex(("a",), []), Ex(("b", "c"), []), Ex(("a",), []), Ex(("z",), [])]
    r = evaluate(scores, exs, k=2, labels=labels)
    assert (r["n"], r["predicted"], r["gold"], r["correct"]) == (4, 8, 5, 3)
    assert r["precision_at_k"] == 3 / 8 and r["recall_at_k"] == 3 / 5
    assert r["accuracy"] == 2 / 4
    assert r["unseen_labels"] == {"z": 1} and r["unseen_lines"] == 1
    pl = r["per_label"]
    assert pl["a"]["precision"] == 1.0 and pl["a"]["recall"] == 0.5
    assert pl["b"]["predicted"] == 4 and pl["b"]["precision"] == 0.25
    assert pl["c"]["f1"] == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    c = r["confusion"]
    assert c["gold"] == ["a", "b", "c", "z"]
    assert c["matrix"] == [[1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert fasttext_lines(r) == ["N\t4", "P@2\t0.375", "R@2\t0.6"]
    r1 = evaluate(scores, exs, k=1, threshold=0.6, labels=labels)
    assert r1["predicted"] == 1 and r1["precision_at_k"] == 1.0


def test_scorer_empty_ratios_are_none():
    r = Scorer(["a"]).result()
    assert r["precision_at_k"] is None and r["accuracy"] is None


# ---- training, prediction, files ----------------------------------------------------------------
def separable(path, n=1500, seed=0, style="fasttext"):
    """Three labels, each with its own indicative words, plus shared noise words."""
    rnd = random.Random(seed)
    vocab = {lab: [f"{lab}{i}" for i in range(20)] for lab in ("x", "y", "z")}
    noise = [f"n{i}" for i in range(50)]
    lines = []
    for _ in range(n):
        lab = rnd.choice("xyz")
        words = rnd.sample(vocab[lab], 2) + rnd.sample(noise, 5)
        rnd.shuffle(words)
        lines.append((f"__label__{lab} " if style == "fasttext" else f"{lab}\t") + " ".join(words))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def sep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sep")
    return separable(d / "train.txt"), separable(d / "test.txt", 300, seed=1)


@pytest.mark.parametrize("loss", ["softmax", "ns", "hs", "ova"])
def test_learns_separable_data(sep, loss):
    train, test = sep
    m = Classifier.train(train, epochs=5, lr=0.5, word_ngrams=2, buckets=10_000, loss=loss, dim=20)
    r = m.test(test)
    assert r["accuracy"] > 0.97
    assert m.multilabel == (loss == "ova") and m.label_style == "fasttext"
    p = m.predict_proba([["x1", "n3"], ["nothing", "known"]])
    assert p.shape == (2, 3) and np.all(np.isfinite(p))
    if loss == "softmax":
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_save_load_round_trip_and_sniffer(sep, tmp_path):
    train, test = sep
    m = Classifier.train(train, epochs=2, word_ngrams=3, buckets=5000, subwords="char",
                         minn=2, maxn=3, dim=8, loss="hs")
    m.save(tmp_path / "m.ekc")
    m2 = load_model(tmp_path / "m.ekc")
    texts = [["x1", "x2", "n1"], ["unseenword", "x1"], []]
    np.testing.assert_array_equal(m.predict_proba(texts), m2.predict_proba(texts))
    assert m2.test(test) == m.test(test)
    assert m.predict(["x1 y2", "z3"], k=2)[0][0][0] in ("x", "y")


def test_unstored_buckets_count_as_zero_rows(sep):
    """A bigram no training line had is not stored: it adds a zero row to the mean (fastText's
    row would be untouched initial noise of mean zero)."""
    train, _ = sep
    m = Classifier.train(train, epochs=1, word_ngrams=2, buckets=1_000_003, dim=8)
    t = m.tables
    words = ["x1", "y1", "</s>"]
    b = ref_word_ngrams(words, 2, 1_000_003)
    assert t.bucket_row[b[0]] == -1  # "x1 y1" never occurs in training
    rows = [m.parts.input[t.index[w]] for w in words] + [np.zeros(8, np.float32)]
    rows.append(m.parts.input[t.bucket_row[b[1]]] if t.bucket_row[b[1]] >= 0 else np.zeros(8))
    h = np.mean(rows, axis=0)
    s = m.parts.output @ h
    p = np.exp(s - s.max())
    np.testing.assert_allclose(m.predict_proba([["x1", "y1"]])[0], p / p.sum(), rtol=1e-4)


def test_pretrained_vectors(sep, tmp_path):
    train, _ = sep
    vec = tmp_path / "v.vec"
    vec.write_text("2 4\nx1 1 2 3 4\nn1 -1 0 0 1\n")
    m = Classifier.train(train, epochs=1, lr=1e-7, dim=4, pretrained_vectors=str(vec))
    np.testing.assert_allclose(m.parts.input[m.tables.index["x1"]], [1, 2, 3, 4], atol=1e-4)
    with pytest.raises(InputError, match="dimension 4, but --dim is 5"):
        Classifier.train(train, epochs=1, dim=5, pretrained_vectors=str(vec))


def test_tsv_style_and_lowercase(tmp_path):
    train = separable(tmp_path / "t.tsv", 600, style="tsv")
    m = Classifier.train(train, epochs=3, lr=0.5, dim=10, lowercase=True)
    assert m.label_style == "tsv" and m.labels[0] in "xyz"
    assert m.predict([["X1", "X2"]])[0][0][0] == "x"


def test_lying_headers(sep, tmp_path):
    from embedkit.store import read_store, write_store

    train, _ = sep
    Classifier.train(train, epochs=1, dim=4, word_ngrams=2, buckets=1000).save(tmp_path / "m.ekc")
    meta, arrays = read_store(tmp_path / "m.ekc", mmap=False)

    def lie(field, change):
        m2, a2 = __import__("copy").deepcopy(meta), {k: v.copy() for k, v in arrays.items()}
        change(m2, a2)
        write_store(tmp_path / "bad.ekc", "classifier", m2, a2)
        with pytest.raises(InputError, match=field):
            Classifier.load(tmp_path / "bad.ekc")

    lie("input: float32 \\[1\\d+, 4\\], expected float32 \\[1\\d+, 5\\]",
        lambda m, a: m["settings"].update(dim=5))
    lie("settings.dim", lambda m, a: m["settings"].update(dim="4"))
    lie("settings.loss", lambda m, a: m["settings"].update(loss="magic"))
    lie("output: float32 \\[3, 4\\], expected float32 \\[4, 4\\]",
        lambda m, a: m.update(labels=m["labels"] + ["extra"]))
    lie("labels: repeated", lambda m, a: m.update(labels=[m["labels"][0]] * 3))
    lie("words: repeated", lambda m, a: m.update(words=m["words"][:-1] + [m["words"][0]]))
    lie("bucket_ids", lambda m, a: a.update(bucket_ids=a["bucket_ids"][::-1].copy()))
    lie("input", lambda m, a: a.update(input=a["input"][:-1]))
    lie("label_style", lambda m, a: m.update(label_style="xml"))
    lie("format", lambda m, a: m.update(format=9))


def test_load_model_refuses_other_kinds(tmp_path):
    vec = tmp_path / "v.vec"
    vec.write_text("1 2\na 1 2\n")
    with pytest.raises(InputError, match="expected a classifier"):
        load_model(vec)
    with pytest.raises(InputError, match="is a folder"):
        load_model(tmp_path)
    from embedkit.vectors.model import load

    load(vec).save_native(tmp_path / "v.ekv")
    with pytest.raises(InputError, match="word-vectors model, expected a classifier"):
        load_model(tmp_path / "v.ekv")


# ---- parity with fastText -------------------------------------------------------------------------
def test_parity_with_fasttext_on_separable_data(sep):
    fasttext = pytest.importorskip("fasttext")
    train, test = sep
    ft = fasttext.train_supervised(str(train), epoch=5, lr=0.5, wordNgrams=2, bucket=10_000,
                                   dim=20, thread=1, seed=1, verbose=0)
    n, p_ft, _ = ft.test(str(test))
    ours = Classifier.train(train, epochs=5, lr=0.5, word_ngrams=2, buckets=10_000, dim=20).test(test)
    assert p_ft > 0.97 and ours["precision_at_k"] > 0.97 and ours["n"] == n


def test_parity_with_fasttext_on_pros_cons(shared_data, tmp_path):
    fasttext = pytest.importorskip("fasttext")
    src = shared_data / "probe" / "pros_cons.train.tsv"
    lines = src.read_text(encoding="utf-8").splitlines()
    rnd = random.Random(0)
    rnd.shuffle(lines)
    lab = [ln.split("\t", 1) for ln in lines]
    train = tmp_path / "train.txt"
    train.write_text("".join(f"__label__{a} {b}\n" for a, b in lab[:5000]))
    test = tmp_path / "test.txt"
    test.write_text("".join(f"__label__{a} {b}\n" for a, b in lab[5000:7000]))
    ft = fasttext.train_supervised(str(train), epoch=5, lr=0.5, wordNgrams=2, bucket=200_000,
                                   dim=50, thread=1, verbose=0)
    ft_acc = ft.test(str(test))[1]
    ours = Classifier.train(train, epochs=5, lr=0.5, word_ngrams=2, buckets=200_000, dim=50,
                            threads=1).test(test)["accuracy"]
    assert ft_acc > 0.85
    assert ours >= ft_acc - 0.02, (ours, ft_acc)


def test_bpe_subwords_give_unseen_words_rows(sep, tmp_path):
    from embedkit.bpe.model import BPETokenizer

    train, test = sep
    lines = [ln.split(" ", 1)[1] for ln in train.read_text().splitlines()]
    BPETokenizer.train(lines, 300).save(tmp_path / "tok")
    m = Classifier.train(train, epochs=3, lr=0.5, dim=8, subwords="bpe", tokenizer=str(tmp_path / "tok"))
    P = m.tables.pieces
    assert P > 0 and m.parts.input.shape[0] == len(m.words) + P
    assert m.test(test)["accuracy"] > 0.9
    # "x1x2" was never seen: only its pieces (rows V..V+P) speak for it, and they say x.
    assert m.predict([["x1x2"]])[0][0][0] == "x"
    m.save(tmp_path / "m.ekc")
    texts = [["x1x2", "n3"], ["z1"]]
    np.testing.assert_array_equal(Classifier.load(tmp_path / "m.ekc").predict_proba(texts),
                                  m.predict_proba(texts))


def test_reader_labels_anywhere_as_fasttext(tmp_path):
    from embedkit.classify.data import Reader

    f = tmp_path / "d.txt"
    f.write_text("__label__a __label__b one two\n"          # labels in front (fast path)
                 "one __label__c two __label__a\n"          # labels anywhere (fastText's rule)
                 "__label__a __label__ x__label__y z\n"     # a bare prefix is a word
                 "__label__a __label__a dup\n")
    got = [(e.labels, e.words) for e in Reader()([f])]
    assert got == [(("a", "b"), ["one", "two"]), (("c", "a"), ["one", "two"]),
                   (("a",), ["__label__", "x__label__y", "z"]), (("a",), ["dup"])]


def test_ova_multilabel(tmp_path):
    rnd = random.Random(3)
    lines = []
    for _ in range(800):
        tags = rnd.sample(["red", "green", "blue"], rnd.choice([1, 2]))
        words = [f"{t}{rnd.randrange(5)}" for t in tags] + [f"n{rnd.randrange(30)}" for _ in range(3)]
        lines.append(" ".join(f"__label__{t}" for t in tags) + " " + " ".join(words))
    train = tmp_path / "t.txt"
    train.write_text("\n".join(lines) + "\n")
    m = Classifier.train(train, epochs=10, lr=0.5, dim=10, loss="ova")
    assert m.multilabel
    got = {lab for lab, _ in m.predict([["red1", "blue2", "n4"]], k=3, threshold=0.5)[0]}
    assert got == {"red", "blue"}
    r = m.test(train, k=2, threshold=0.5)
    assert r["precision_at_k"] > 0.95 and r["recall_at_k"] > 0.95
