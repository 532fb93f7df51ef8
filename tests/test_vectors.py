"""The Vectors object: lookup (OOV via subwords), exact top-k, analogy and evaluation vs gensim."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.errors import InputError, UsageError
from embedkit.subwords import CharNgrams
from embedkit.vectors.evaluate import rank_average, spearman
from embedkit.vectors.model import UnknownWordError, Vectors, load


def _model(n=200, d=16, seed=0, **kw):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    return Vectors.from_arrays(words, rng.standard_normal((n, d)).astype(np.float32), **kw)


def _brute(v, q, k, skip=()):
    m = np.asarray(v.vectors, np.float64)
    sims = m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    order = [i for i in np.argsort(-sims, kind="stable") if i not in skip]
    return [(v.words[i], sims[i]) for i in order[:k]]


def test_most_similar_equals_brute_force_and_excludes_the_query():
    v = _model()
    got = v.most_similar("w7", k=5)
    want = _brute(v, np.asarray(v.vectors[7], np.float64), 5, skip={7})
    assert [w for w, _ in got] == [w for w, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    assert "w7" not in [w for w, _ in v.most_similar("w7", k=199)]
    assert len(v.most_similar("w7", k=1000)) == 199
    by_vec = v.most_similar(np.asarray(v.vectors[7]), k=1)
    assert by_vec[0][0] == "w7" and abs(by_vec[0][1] - 1) < 1e-5
    q = np.asarray(v.vectors[7], np.float64)
    assert [w for w, _ in v.most_similar("w7")] == [w for w, _ in _brute(v, q, 10, skip={7})]  # k=10
    assert list(v) == v.words and len(v) == 200
    w8 = np.asarray(v.vectors[8], np.float64)
    assert v.similarity("w7", "w8") == pytest.approx(q @ w8 / np.linalg.norm(q) / np.linalg.norm(w8),
                                                     abs=1e-6)
    # restrict=5: answers only from w0..w4, also for a query word just outside them (w5)
    assert sorted(w for w, _ in v.most_similar_many(["w5"], k=5, restrict=5)[0]) == \
        ["w0", "w1", "w2", "w3", "w4"]


def test_batch_equals_one_at_a_time_and_collects_unknown_words():
    v = _model()
    queries = ["w1", "nope", "w50", "w199"]
    many = v.most_similar_many(queries, k=4, errors="collect")
    assert isinstance(many[1], UnknownWordError) and "nope" in str(many[1])
    for q, r in zip(queries, many):
        if q != "nope":
            one = v.most_similar(q, k=4)
            assert [w for w, _ in r] == [w for w, _ in one]
            assert np.allclose([s for _, s in r], [s for _, s in one], atol=1e-6)
    with pytest.raises(UnknownWordError, match="'nope'.*no subwords"):
        v.most_similar_many(queries, k=4)
    with pytest.raises(KeyError):
        v["nope"]
    with pytest.raises(UsageError, match="-k must be at least 1"):
        v.most_similar("w1", k=0)


def test_oov_vector_is_mean_of_subword_rows():
    scheme = CharNgrams(3, 4, 50)
    rows = np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)
    v = _model(scheme=scheme, subword_rows=rows)
    word = "héllo"
    assert word not in v
    want = rows[scheme.rows(word)].mean(axis=0)
    assert np.allclose(v[word], want, atol=1e-6)
    assert v.most_similar(word, k=3) == v.most_similar(want, k=3)
    assert v.has_vector(word) and not _model().has_vector(word)
    one = _model(scheme=CharNgrams(3, 3, 50), subword_rows=rows)  # "a" has one n-gram, "<a>"
    assert len(one.scheme.rows("a")) == 1 and np.array_equal(one["a"], rows[one.scheme.rows("a")[0]])
    with pytest.raises(UnknownWordError, match="'' .*it has no subwords"):
        one[""]


def test_analogy_equals_gensim_most_similar():
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    v = _model()
    kv = KeyedVectors(16)
    kv.add_vectors(v.words, np.asarray(v.vectors))
    got = v.analogy("w1", "w2", "w3", k=10)
    want = kv.most_similar(positive=["w2", "w3"], negative=["w1"], topn=10)
    assert [w for w, _ in got] == [w for w, _ in want]
    assert not {"w1", "w2", "w3"} & {w for w, _ in got}


def test_spearman_with_ties_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.integers(0, 3, 40)
    assert abs(spearman(x, y) - stats.spearmanr(x, y).statistic) < 1e-12
    assert rank_average([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def _eval_model(shared_data, tmp_path):
    """Vectors over the eval files' words (plus case variants), with some structure to find."""
    words = []
    for line in (shared_data / "eval" / "questions-words.txt").read_text().splitlines():
        if not line.startswith(":"):
            words += line.split()
    for line in (shared_data / "eval" / "wordsim353.tsv").read_text().splitlines():
        if not line.startswith("#"):
            words += line.split("\t")[:2]
    uniq = list(dict.fromkeys(words))
    rng = np.random.default_rng(0)
    rng.shuffle(uniq)
    uniq = uniq[: int(len(uniq) * 0.8)]  # some OOV
    vocab = uniq + [w.lower() for w in uniq[:200] if w.lower() != w] + [w.upper() for w in uniq[:50]]
    vocab = list(dict.fromkeys(vocab))
    base = rng.standard_normal((len(vocab), 24)).astype(np.float32)
    base[:, :4] += np.array([len(w) % 3 for w in vocab])[:, None]  # shared directions: solvable bits
    return Vectors.from_arrays(vocab, base)


def test_evaluation_matches_gensim(shared_data, tmp_path):
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    v = _eval_model(shared_data, tmp_path)
    kv = KeyedVectors(v.dim)
    kv.add_vectors(v.words, np.asarray(v.vectors))
    sim_file = shared_data / "eval" / "wordsim353.tsv"
    pearson, spear, oov = kv.evaluate_word_pairs(str(sim_file))
    r = v.evaluate_similarity(sim_file)
    assert abs(r["spearman"] - spear.statistic) < 1e-3
    assert abs(r["pearson"] - pearson.statistic) < 1e-3
    assert abs(r["oov_ratio"] - oov) < 1e-9 and 0 < r["coverage"] < 1
    ana_file = shared_data / "eval" / "questions-words.txt"
    for restrict in (30000, 1500):
        score, sections = kv.evaluate_word_analogies(str(ana_file), restrict_vocab=restrict)
        r = v.evaluate_analogies(ana_file, restrict=restrict)
        assert abs(r["accuracy"] - score) < 1e-3 and r["accuracy"] > 0
        # every section, in order, with gensim's counts (gensim appends its "Total accuracy")
        assert [s["section"] for s in r["sections"]] + ["Total accuracy"] == \
            [s["section"] for s in sections]
        for mine, theirs in zip(r["sections"], sections[:-1], strict=True):
            assert mine["section"] == theirs["section"]
            assert (mine["correct"], mine["incorrect"]) == (len(theirs["correct"]), len(theirs["incorrect"]))


def test_eval_on_tiny_files(tmp_path):
    v = Vectors.from_arrays(["king", "queen", "man", "woman", "Paris", "paris"],
                            np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [5, 5, 5], [3, 2, 1]],
                                     np.float32))
    (tmp_path / "sim.tsv").write_text("# c\nking\tqueen\t8\nman\twoman\t7\nking\tzebra\t1\nPARIS\tman\t2\n")
    r = v.evaluate_similarity(tmp_path / "sim.tsv")
    assert (r["pairs"], r["used"]) == (4, 3) and abs(r["coverage"] - 0.75) < 1e-12
    # gold 8, 7, 2 vs cosines 0.5, 0, 5/sqrt(75) ("PARIS" is the first spelling, "Paris")
    assert abs(r["spearman"] - (-0.5)) < 1e-12
    (tmp_path / "ana.txt").write_text(": royal\nman king woman queen\nman king zebra queen\n"
                                      ": gram-x\nking man queen woman\n")
    r = v.evaluate_analogies(tmp_path / "ana.txt")
    assert r["questions"] == 3 and r["used"] == 2
    assert r["semantic"]["correct"] == 1 and r["syntactic"]["correct"] == 1
    assert [(s["section"], s["correct"], s["incorrect"]) for s in r["sections"]] == \
        [("royal", 1, 0), ("gram-x", 1, 0)]
    assert r["oov_ratio"] == pytest.approx(100 / 3) and r["coverage"] == pytest.approx(2 / 3)
    (tmp_path / "bad.tsv").write_bytes(b"king queen 8\nman \xff 7\n")
    with pytest.raises(InputError, match=r"bad.tsv:2: not valid UTF-8"):
        v.evaluate_similarity(tmp_path / "bad.tsv")


def test_analogy_takes_the_best_of_the_top_5_only(tmp_path):
    """As gensim: of the 5 nearest rows, the first that is not a question word (case-folded);
    when all 5 are spellings of question words the answer is wrong, even if the 6th is right."""
    t = np.array([0.707, -0.293, 1, 0], np.float32)  # unit(king) - unit(man) + unit(woman)
    spellings = ["KING", "King", "kINg", "KiNg", "kinG"]
    rng = np.random.default_rng(0)
    words = ["king", "man", "woman", "queen"] + spellings
    rows = [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0]] + \
        [t + 0.01 * rng.standard_normal(4) for _ in spellings]
    v = Vectors.from_arrays(words, np.array(rows, np.float32))
    (tmp_path / "a.txt").write_text(": s\nman king woman queen\n")
    assert v.evaluate_analogies(tmp_path / "a.txt")["sections"][0]["incorrect"] == 1
    v4 = Vectors.from_arrays(words[:-1], np.array(rows[:-1], np.float32))  # 4 spellings
    assert v4.evaluate_analogies(tmp_path / "a.txt")["sections"][0]["correct"] == 1


def test_native_round_trip_keeps_everything(tmp_path):
    scheme = CharNgrams(2, 3, 20)
    rows = np.random.default_rng(1).standard_normal((20, 16)).astype(np.float32)
    v = _model(scheme=scheme, subword_rows=rows, counts=np.arange(200, 0, -1), settings={"a": 1})
    v.save(tmp_path / "m.ekv")
    w = load(tmp_path / "m.ekv")
    assert w.words == v.words and np.array_equal(np.asarray(w.vectors), v.vectors)
    assert isinstance(w.vectors, np.memmap)
    assert np.array_equal(w["zzz"], v["zzz"]) and w.settings == {"a": 1}
    assert w.counts.tolist() == list(range(200, 0, -1))
    for fmt in ("vec", "w2v-bin"):
        v.save(tmp_path / f"m.{fmt}", format=fmt)
        assert np.array_equal(np.asarray(load(tmp_path / f"m.{fmt}").vectors), v.vectors)
    with pytest.raises(UsageError, match="unknown format"):
        v.save(tmp_path / "x", format="pickle")


def test_default_restricts_and_lenient_load(tmp_path):
    """evaluate_analogies answers from the 30,000 most frequent words unless told otherwise,
    evaluate_similarity from 300,000; ``load`` keeps the first of a repeated word (strict=False)."""
    fill = [f"f{i}" for i in range(300_000 - 3)]
    base = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]], np.float32)
    for n, name, text in ((30_000, "a.txt", ": s\nman king woman queen\n"),
                          (300_000, "s.tsv", "man\tqueen\t3\nking\twoman\t1\nman\tking\t2\n")):
        words = ["man", "king", "woman"] + fill[:n - 3] + ["queen"]  # queen: the (n+1)th word
        rows = np.vstack([base[:3], np.full((n - 3, 3), 0.1, np.float32), base[3:]])
        v = Vectors.from_arrays(words, rows)
        (tmp_path / name).write_text(text)
        evaluate = v.evaluate_analogies if name == "a.txt" else v.evaluate_similarity
        assert (evaluate(tmp_path / name)["used"], evaluate(tmp_path / name, restrict=None)["used"]) \
            == ((0, 1) if name == "a.txt" else (2, 3))
    (tmp_path / "d.vec").write_text("3 2\na 1 0\nb 0 1\na 2 2\n")
    v = load(tmp_path / "d.vec")
    assert v.words == ["a", "b"] and v["a"].tolist() == [1, 0] and v.load_counts["duplicates"] == 1
    with pytest.raises(InputError, match="d.vec"):
        load(tmp_path / "d.vec", strict=True)


def test_native_bpe_subword_rows_must_match_the_vocabulary(tmp_path):
    from embedkit import BPETokenizer
    from embedkit.vectors.formats.native import save_native
    from embedkit.wordvec.bpe_subwords import BpePieces

    scheme = BpePieces(BPETokenizer.train(["low lower lowest slow"] * 3, 262, min_frequency=1))
    rows = np.random.default_rng(2).standard_normal((scheme.size, 4)).astype(np.float32)
    v = _model(d=4, scheme=scheme, subword_rows=rows)
    v.save(tmp_path / "m.ekv")
    assert np.array_equal(load(tmp_path / "m.ekv")["slowest"], v["slowest"])
    save_native(tmp_path / "bad.ekv", v.words, v.vectors, subwords=scheme.to_meta(),
                subword_rows=rows[:-1])
    with pytest.raises(InputError, match=f"has {scheme.size} pieces but 'subword_rows' has "
                                         f"{scheme.size - 1} rows"):
        load(tmp_path / "bad.ekv")


def test_native_model_with_nan_row_is_refused_on_query(tmp_path):
    from embedkit.errors import InputError
    from embedkit.vectors.formats.native import save_native

    m = np.ones((3, 4), np.float32)
    m[1, 2] = np.nan
    save_native(tmp_path / "n.ekv", ["a", "b", "c"], m)
    v = load(tmp_path / "n.ekv")
    with pytest.raises(InputError, match="n.ekv: non-finite value .* of 'b'"):
        v.most_similar("a")
    save_native(tmp_path / "e.ekv", [], np.zeros((0, 4), np.float32))
    with pytest.raises(InputError, match="empty model"):
        load(tmp_path / "e.ekv")


def test_big_batches_use_the_kernel_and_agree_with_argpartition(monkeypatch):
    from embedkit.vectors import search

    v = _model(n=500, d=8, seed=4)
    queries = [f"w{i}" for i in range(0, 500, 2)] + [np.ones(8)]
    plain = v.most_similar_many(queries, k=7)
    monkeypatch.setattr(search, "_KERNEL_MIN_QUERIES", 1)
    fast = v.most_similar_many(queries, k=7)
    assert [[w for w, _ in r] for r in fast] == [[w for w, _ in r] for r in plain]
    ties = Vectors.from_arrays(["a", "b", "c", "d"], np.array([[1, 0]] * 4, np.float32))
    assert [w for w, _ in ties.most_similar_many(["a", "d"], k=2)[1]] == ["a", "b"]


def test_similarity_lines_with_three_tab_fields_keep_phrases(tmp_path):
    """Exactly three TAB fields: each is one field, spaces and all (a phrase vocabulary);
    anything else is split on whitespace."""
    v = Vectors.from_arrays(["new york", "city", "big", "town"],
                            np.array([[1, 0], [1, 1], [0, 1], [1, 0.5]], np.float32))
    (tmp_path / "p.tsv").write_text("new york\tcity\t9\nbig town 3\nbig\tcity\t1\n")
    r = v.evaluate_similarity(tmp_path / "p.tsv", case_insensitive=False)
    assert (r["pairs"], r["used"], r["invalid_lines"]) == (3, 3, 0)
    (tmp_path / "q.tsv").write_text("new york city 9\n")  # four fields: not a pair line
    with pytest.raises(InputError, match="no word pairs found"):
        v.evaluate_similarity(tmp_path / "q.tsv", case_insensitive=False)


def test_similarity_counts_comments_blanks_bad_and_nan_lines_exactly(tmp_path):
    """Comments and blank lines are skipped, not counted; a bad or non-finite score is an
    invalid line; one usable pair is enough to report (its correlation is undefined: null)."""
    import math
    import warnings

    from embedkit.vectors.evaluate import pearson

    v = Vectors.from_arrays(["a", "b", "c"], np.array([[1, 0], [0, 1], [1, 1]], np.float32))
    (tmp_path / "s.tsv").write_text("# header\n\na b 1\nb c x\na c nan\na zebra 2\n#\n")
    r = v.evaluate_similarity(tmp_path / "s.tsv")
    assert (r["pairs"], r["used"], r["invalid_lines"]) == (2, 1, 2)
    assert r["coverage"] == 0.5 and r["oov_ratio"] == 50.0 and math.isnan(r["spearman"])
    (tmp_path / "one.tsv").write_text("a b 1\n")
    assert v.evaluate_similarity(tmp_path / "one.tsv")["used"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant side is undefined, not a 0/0 warning
        assert math.isnan(pearson(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])))


def test_analogy_accuracy_per_section_and_the_line_of_a_missing_header(tmp_path):
    v = Vectors.from_arrays(["king", "queen", "man", "woman", "x"],
                            np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [9, 0, 0]],
                                     np.float32))
    # man:king :: woman:queen is right; man:king :: woman:x is asked for x, answered queen
    (tmp_path / "a.txt").write_text(": royal\nman king woman queen\nman king woman x\n"
                                    ": gram-y\nman king woman queen\n")
    r = v.evaluate_analogies(tmp_path / "a.txt")
    assert [(s["section"], s["correct"], s["incorrect"], s["accuracy"]) for s in r["sections"]] \
        == [("royal", 1, 1, 0.5), ("gram-y", 1, 0, 1.0)]
    assert r["accuracy"] == pytest.approx(2 / 3) and r["semantic"]["accuracy"] == 0.5
    (tmp_path / "b.txt").write_text("\nman king woman queen\n")
    with pytest.raises(InputError, match=r"b\.txt:2: missing ': section' header"):
        v.evaluate_analogies(tmp_path / "b.txt")
    (tmp_path / "c.txt").write_bytes(b"\n: s\nman \xff woman queen\n")  # line 1 is empty
    with pytest.raises(InputError, match=r"c\.txt:3: not valid UTF-8"):
        v.evaluate_analogies(tmp_path / "c.txt")


def test_model_basics_answer_exactly():
    """Membership, has_vector and repr say exactly what they mean; shape lies are refused;
    -k defaults to 10; a model made in memory names itself "<vectors>" in errors."""
    v = _model(n=30)
    assert ("w3" in v) is True and ("zz" in v) is False
    assert v.has_vector("w3") is True and v.has_vector("zz") is False
    assert repr(v) == "<Vectors 30 x 16, subwords=none>"
    assert repr(_model(n=3, scheme=CharNgrams(2, 3, 5), subword_rows=np.zeros((5, 16), np.float32))) \
        == "<Vectors 3 x 16, subwords=char>"
    assert len(v.most_similar_many(["w0"])[0]) == 10 and len(v.analogy("w0", "w1", "w2")) == 10
    with pytest.raises(UsageError, match="-k must be at least 1"):
        v.analogy("w0", "w1", "w2", k=0)
    for bad in (np.zeros(16, np.float32), np.zeros((29, 16), np.float32)):
        with pytest.raises(ValueError, match="does not match 30 words"):
            Vectors.from_arrays(v.words, bad)
    for restrict in (-1, 2.5):
        with pytest.raises(UsageError, match="--restrict must be >= 0"):
            v.analogy("w0", "w1", "w2", restrict=restrict)
    with pytest.raises(UsageError, match="query vector has 3 values, the model has 16"):
        v.most_similar(np.zeros(3, np.float32))
    twice = Vectors.from_arrays(["x", "a", "b", "a"], np.eye(4, dtype=np.float32))
    with pytest.raises(InputError, match=r"^<vectors>: corrupt model: the word 'a' is in the vocabulary twice"):
        twice.index
    nan = Vectors.from_arrays(["a", "b"], np.array([[1, 0], [np.nan, 0]], np.float32))
    with pytest.raises(InputError, match=r"^<vectors>: non-finite value \(NaN or inf\) in the vector of 'b'"):
        nan["b"]


def test_load_limit_on_native(tmp_path):
    v = _model(n=50)
    v.save(tmp_path / "m.ekv")
    assert load(tmp_path / "m.ekv", limit=7).words == v.words[:7]
    assert len(load(tmp_path / "m.ekv")) == 50


def test_load_a_fasttext_bin(shared_data):
    ft = shared_data / "fasttext" / "toy-model.bin"
    m = load(ft)
    assert isinstance(m, Vectors) and len(m) > 0 and repr(m).endswith(f"fastText {ft}>")
