"""Encoder fine-tuning: finite-difference gradients of pooling + head + softmax through the whole
encoder, padding that changes nothing, `embedkit encoder finetune` end to end, the MODEL file
and its predictor, reproducibility, and the bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.classify import finetune as F
from embedkit.encoder import network as N
from embedkit.encoder.model import Encoder
from embedkit.store import read_store
from cli_run import run

ANIMALS = ["the cat sat on the mat .", "a dog ran to the park .", "the bird flew over a house ."]
PLACES = ["my friend walked along the river bank .", "the teacher put money in the bank .",
          "a child slept under the old tree ."]


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


def tiny_params(rng, positions="sinusoidal", k=3):
    cfg = dict(vocab=11, dim=8, heads=2, layers=2, ffn=12, max_len=6, positions=positions,
               objective="mlm")
    params = N.init_params(cfg, rng, np.float64)
    for name in params:  # off the init values (zero biases, unit gains) so every path counts
        params[name] += rng.standard_normal(params[name].shape) * 0.1
    params["head.w"] = rng.standard_normal((8, k))
    params["head.b"] = rng.standard_normal(k)
    return cfg, params


@pytest.mark.parametrize("pool,positions", [("mean", "sinusoidal"), ("first", "learned")])
def test_gradients_match_finite_differences(pool, positions):
    rng = np.random.default_rng(11)
    cfg, params = tiny_params(rng, positions)
    ids = rng.integers(0, 11, (3, 5))
    keep = np.ones((3, 5), bool)
    keep[0, 3:] = False
    keep[2, 1:] = False
    y = np.array([0, 2, 1])
    f = lambda: F.loss_and_grads(params, cfg, ids, keep, y, pool, grads=False)[0]
    _, grads, _ = F.loss_and_grads(params, cfg, ids, keep, y, pool)
    assert set(grads) == set(params) - {"out_b"}
    for name in sorted(grads):
        assert rel_err(grads[name], numgrad(f, params[name])) < 1e-6, name


def test_loss_is_the_mean_cross_entropy_of_the_pooled_head():
    rng = np.random.default_rng(12)
    cfg, params = tiny_params(rng)
    ids = rng.integers(0, 11, (2, 4))
    keep = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    y = np.array([1, 0])
    h, _ = N.forward(params, cfg, ids, keep)
    pooled = np.stack([h[0, :3].mean(0), h[1].mean(0)])
    z = pooled @ params["head.w"] + params["head.b"]
    want = np.mean(np.log(np.exp(z).sum(1)) - z[[0, 1], y])
    assert F.loss_and_grads(params, cfg, ids, keep, y, grads=False)[0] == pytest.approx(want, rel=1e-12)


def test_padding_changes_no_pooled_vector():
    rng = np.random.default_rng(13)
    cfg, params = tiny_params(rng)
    seq = [3, 5, 7]
    for pool in ("mean", "first"):
        short = N.forward(params, cfg, np.array([seq]), np.ones((1, 3), bool))[0]
        ids, keep = F.pad_sequences([seq, [1, 2, 3, 4, 5]], pad=10)
        long = N.forward(params, cfg, ids, keep)[0]
        assert np.allclose(F.pool_forward(short, np.ones((1, 3), bool), pool)[0],
                           F.pool_forward(long, keep, pool)[0], atol=1e-12)


def test_epoch_batches_cover_every_line_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 1000)
    batches = F.epoch_batches(lengths, 8, np.random.default_rng(4), span=10)
    again = F.epoch_batches(lengths, 8, np.random.default_rng(4), span=10)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert len(batches) == 125 and sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.mean([np.ptp(lengths[rng.permutation(1000)[:8]]) for _ in range(50)]) / 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join((ANIMALS + PLACES) * 20) + "\n")
    tok = BPETokenizer.train([str(corpus)], 300)
    Encoder.train(str(corpus), tok, d / "enc", steps=20, dim=16, heads=2, ffn=32, layers=1,
                  max_len=12, batch_size=8, warmup=2, lr=1e-2, threads=1)
    train = d / "train.tsv"
    train.write_text("".join(f"animal\t{s}\n" for s in ANIMALS) +
                     "".join(f"place\t{s}\n" for s in PLACES))
    return d


FT = ["--epochs", 12, "--lr", 1e-2, "--batch-size", 2, "--threads", 1, "-q"]


def test_finetune_cli_learns_writes_model_and_reports_epochs(setup, capsys, tmp_path):
    d = setup
    model = tmp_path / "m.ekc"
    code, out, err = run(["encoder", "finetune", d / "enc", d / "train.tsv", "-o", model,
                          "--valid", d / "train.tsv"] + FT, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines[:12]] == [["epoch", str(i), "valid"]
                                                         for i in range(1, 13)]
    assert "valid accuracy 1.0000" in lines and "train accuracy 1.0000" in lines
    meta, arrays = read_store(model, F.KIND)
    assert meta["labels"] == ["animal", "place"] and meta["label_style"] == "tsv"
    assert arrays["head.w"].shape == (16, 2) and "p.wte" in arrays
    assert len(meta["finetune"]["history"]) == 12
    m = F.load(model)
    assert (m.labels, m.label_style, m.multilabel, m.lowercase) == (["animal", "place"], "tsv",
                                                                    False, False)
    p = m.predict_proba([s.split() for s in ANIMALS + PLACES] + [[]])
    assert p.dtype == np.float32 and p.shape == (7, 2)
    assert np.allclose(p.sum(axis=1), 1, atol=1e-6)
    assert p[:6].argmax(axis=1).tolist() == [0, 0, 0, 1, 1, 1]


def test_same_seed_one_thread_gives_identical_model_files(setup, capsys, tmp_path):
    d = setup
    blobs = []
    for name in ("a.ekc", "b.ekc"):
        code, _, err = run(["encoder", "finetune", d / "enc", d / "train.tsv", "-o",
                            tmp_path / name, "--epochs", 2, "--seed", 5, "--threads", 1, "-q"],
                           capsys)
        assert code == 0, err
        blobs.append((tmp_path / name).read_bytes())
    assert blobs[0] == blobs[1]


def test_long_lines_are_cut_to_max_len(setup, capsys, tmp_path):
    d = setup
    train = tmp_path / "long.tsv"
    long_line = " ".join(ANIMALS * 5)
    train.write_text(f"animal\t{long_line}\nplace\tthe bank .\n")
    code, out, err = run(["encoder", "finetune", d / "enc", train, "-o", tmp_path / "m.ekc",
                          "--epochs", 1, "--json", "--threads", 1, "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["lines_truncated"] == 1 and summary["max_len"] == 12
    m = F.load(tmp_path / "m.ekc")
    seqs, cut = m.piece_ids([long_line.split(), ["the", "bank", "."]])
    assert cut == 1 and len(seqs[0]) == 12
    # what lies past max_len cannot change the prediction
    other = (long_line + " " + " ".join(PLACES)).split()
    assert np.array_equal(m.predict_proba([long_line.split()]), m.predict_proba([other]))
    assert not np.array_equal(m.predict_proba([ANIMALS[0].split()]),
                              m.predict_proba([PLACES[0].split()]))


def test_classify_loads_the_model(setup, capsys, tmp_path):
    from embedkit.classify.model import load_model

    d = setup
    code, _, err = run(["encoder", "finetune", d / "enc", d / "train.tsv", "-o",
                        tmp_path / "m.ekc", "--epochs", 1, "--threads", 1, "-q"], capsys)
    assert code == 0, err
    m = load_model(tmp_path / "m.ekc")
    assert isinstance(m, F.FinetunedClassifier) and m.labels == ["animal", "place"]


def test_nan_loss_stops_with_a_hint_and_writes_no_model(setup, capsys, tmp_path, monkeypatch):
    d = setup
    real = F.loss_and_grads

    def poisoned(*args, **kw):
        loss, g, c = real(*args, **kw)
        return float("nan"), g, c

    monkeypatch.setattr(F, "loss_and_grads", poisoned)
    code, out, err = run(["encoder", "finetune", d / "enc", d / "train.tsv", "-o",
                          tmp_path / "m.ekc", "--epochs", 1, "--threads", 1, "-q"], capsys)
    assert code == 2 and out == ""
    assert "the loss is nan" in err and "Try a lower --lr" in err and err.count("\n") == 1
    assert not (tmp_path / "m.ekc").exists() and not list(tmp_path.iterdir())


def test_loading_something_else_is_refused(setup, tmp_path):
    from embedkit.errors import InputError
    from embedkit.store import write_store

    write_store(tmp_path / "v.ekv", "vectors", {}, {})
    with pytest.raises(InputError, match="expected a 'encoder-classifier'"):
        F.load(tmp_path / "v.ekv")
    write_store(tmp_path / "bad.ekc", F.KIND, {"config": {}, "labels": ["a"]}, {})
    with pytest.raises(InputError, match="corrupt fine-tuned model"):
        F.load(tmp_path / "bad.ekc")


@pytest.mark.parametrize("case,message", [
    ("one", "one label 'animal': a classifier needs at least two classes"),
    ("empty", "empty file: no labelled lines"),
    ("notenc", "not an encoder folder"),
    ("outdir", "is a directory"),
    ("lr", "--lr must be > 0"),
    ("pool", "invalid value for '--pool'"),
    ("valid", "missing.tsv: no such file"),
])
def test_bad_input_is_one_line_exit_2_and_no_model(setup, capsys, tmp_path, case, message):
    d = setup
    one = tmp_path / "one.tsv"
    one.write_text(f"animal\t{ANIMALS[0]}\nanimal\t{ANIMALS[1]}\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    (tmp_path / "notenc").mkdir()
    (tmp_path / "outdir").mkdir()
    enc, train, out, extra = d / "enc", d / "train.tsv", tmp_path / "m.ekc", []
    if case == "one":
        train = one
    elif case == "empty":
        train = empty
    elif case == "notenc":
        enc = tmp_path / "notenc"
    elif case == "outdir":
        out = tmp_path / "outdir"
    elif case == "lr":
        extra = ["--lr", 0]
    elif case == "pool":
        extra = ["--pool", "max"]
    elif case == "valid":
        extra = ["--valid", tmp_path / "missing.tsv"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = run(["encoder", "finetune", enc, train, "-o", out, "--threads", 1, "-q"]
                            + extra, capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("embedkit: error: ") and err.count("\n") == 1, err
    assert message.lower() in err.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
