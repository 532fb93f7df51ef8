"""fastText .bin: vectors equal to what fastText itself returns, old format equal to gensim's."""
from __future__ import annotations

import numpy as np
import pytest

from embedkit.errors import InputError
from embedkit.vectors.model import load

OOV = ["zzqx", "héllo", "naïveté", "日本語", "Ünïcödé", "a", "xylophonist", "🙂ok"]


def _corpus(path, n_lines=300, seed=0):
    rng = np.random.default_rng(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "dog", "café", "über", "straße", "日本", "naïve",
             "running", "runner", "runs", "jumped", "jumping", "москва", "ελληνικά"]
    probs = np.linspace(2, 1, len(vocab))
    probs /= probs.sum()
    lines = [" ".join(rng.choice(vocab, size=12, p=probs)) for _ in range(n_lines)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab


@pytest.fixture(scope="module")
def ft_model(tmp_path_factory):
    fasttext = pytest.importorskip("fasttext", reason="fasttext-wheel (test extra) not installed")
    d = tmp_path_factory.mktemp("ft")
    _corpus(d / "corpus.txt")
    model = fasttext.train_unsupervised(str(d / "corpus.txt"), model="skipgram", dim=10, epoch=1,
                                        minCount=1, bucket=997, minn=2, maxn=4, thread=1,
                                        verbose=0)
    model.save_model(str(d / "m.bin"))
    return model, d / "m.bin"


def _max_diff(ft, vecs, words):
    return max(float(np.abs(ft.get_word_vector(w) - vecs[w]).max()) for w in words)


def test_vectors_equal_fasttext_for_known_and_unknown_words(ft_model):
    ft, path = ft_model
    vecs = load(path)
    assert vecs.words == ft.get_words()
    assert _max_diff(ft, vecs, vecs.words) < 1e-5
    assert _max_diff(ft, vecs, OOV) < 1e-5
    assert vecs.settings["version"] == 12 and vecs.scheme.buckets == 997


def test_shared_v11_model_equals_fasttext(shared_data):
    fasttext = pytest.importorskip("fasttext")
    path = shared_data / "fasttext" / "lee_fasttext_new.bin"
    ft = fasttext.load_model(str(path))
    vecs = load(path)
    assert len(vecs) == 1763 and vecs.dim == 10
    assert _max_diff(ft, vecs, vecs.words) < 1e-5
    assert _max_diff(ft, vecs, OOV) < 1e-5
    got = [w for w, _ in vecs.most_similar("the", 5)]
    assert got == [w for _, w in ft.get_nearest_neighbors("the", 5)]


def test_shared_toy_model_matches_its_vec(shared_data):
    vecs = load(shared_data / "fasttext" / "toy-model.bin")
    text = load(shared_data / "fasttext" / "toy-model.vec")
    assert vecs.words == text.words
    assert np.abs(np.asarray(vecs.vectors) - np.asarray(text.vectors)).max() < 1e-4  # .vec has 5 digits


def test_old_format_equals_gensim(shared_data):
    gensim_ft = pytest.importorskip("gensim.models.fasttext")
    path = shared_data / "fasttext" / "lee_fasttext.bin"
    kv = gensim_ft.load_facebook_model(str(path)).wv
    vecs = load(path)
    assert vecs.settings["version"] is None
    assert vecs.words == kv.index_to_key
    # gensim also adds n-grams of "</s>"; fastText (and embedkit) do not: compare the others.
    keep = np.array([w != "</s>" for w in vecs.words])
    assert np.abs(np.asarray(vecs.vectors)[keep] - kv.vectors[keep]).max() < 1e-5
    for w in OOV:
        assert np.abs(vecs[w] - kv[w]).max() < 1e-5, w


def test_truncated_models_are_refused(tmp_path, ft_model):
    # (supervised and quantized models are read: tests/test_fasttext_supervised.py)
    data = ft_model[1].read_bytes()
    for cut in (100, len(data) // 2, len(data) - 3):
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        with pytest.raises(InputError, match="truncated"):
            load(tmp_path / "cut.bin")
    (tmp_path / "long.bin").write_bytes(data + b"\0\0")
    with pytest.raises(InputError, match="unexpected bytes"):
        load(tmp_path / "long.bin")


def test_fasttext_to_native_keeps_oov_vectors(tmp_path, ft_model):
    ft, path = ft_model
    load(path).save(tmp_path / "m.ekv")
    native = load(tmp_path / "m.ekv")
    assert _max_diff(ft, native, native.words + OOV) < 1e-5
