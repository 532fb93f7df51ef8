"""The contrastive objective: pair sampling, InfoNCE, the float64 finite-difference check of the
whole model + pooling + projection + loss, the trainer (learning, --resume, NaN, figures) and
the bad inputs of `embedkit encoder train --objective contrastive`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.encoder import checkpoint, contrastive as C, network as N, trainer
from embedkit.encoder.data import Streams
from embedkit.encoder.model import Encoder
from embedkit.encoder.pairs import PairSource, pad_pairs
from embedkit.errors import TrainingError
from embedkit.store import read_store
from cli_run import run

from test_encoder_layers import assert_close, numgrad

ANIMALS = ["cat", "dog", "bird", "horse", "fish", "mouse", "goat", "sheep"]
PLACES = ["river", "park", "house", "garden", "field", "road", "hill", "lake"]
SMALL = dict(dim=16, heads=2, ffn=32, layers=1, max_len=16, batch_size=8, warmup=2,
             objective="contrastive")


def corpus_lines(n=400, seed=0):
    """Line 2k names an animal and a place, line 2k+1 names them again the other way round: a
    line's successor is predictable from it (and not from the line before it)."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n // 2):
        a, p = ANIMALS[rng.integers(8)], PLACES[rng.integers(8)]
        lines += [f"the {a} went to the {p} .", f"at the {p} , a {a} slept ."]
    return lines


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cpc")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    tok = BPETokenizer.train([str(corpus)], 300)
    tok.save(d / "tok")
    return d, corpus, tok


# ---- pairs ----------------------------------------------------------------------------------

SEP = 100_000


def toy_streams(n_lines=45, empty=()):
    """Corpus line c holds the pieces [c, c, ...] (c % 4 + 1 of them; none if c in ``empty``);
    every 20th line goes to the held-out stream, as data.encode_corpus does."""
    train, held = [], []
    for c in range(n_lines):
        line = [] if c in empty else [c] * (c % 4 + 1)
        (held if c % 20 == 19 else train).extend(line + [SEP])
    return Streams(np.array(train, np.int32), np.array(held, np.int32), np.zeros(100, np.int64),
                   n_lines)


def test_adjacent_lines_never_span_a_held_out_line(tmp_path):
    src = PairSource(toy_streams(empty=(5,)), SEP, "adjacent-lines", 3, tmp_path)
    firsts = set()
    for x, y in src.sample(np.random.default_rng(0), 2000):
        a, b = int(x[0]), int(y[0])
        assert b == a + 1, (a, b)          # corpus neighbours, never across line 19 or 39
        assert len(x) == min(a % 4 + 1, 3) and len(y) == min(b % 4 + 1, 3)
        firsts.add(a)
    # every pair of corpus neighbours that are both training lines and non-empty
    expected = {c for c in range(44) if c % 20 not in (18, 19) and 5 not in (c, c + 1)}
    assert firsts == expected
    held = src.heldout_pairs()
    assert sorted((x.tolist(), y.tolist()) for x, y in held) == [([18, 18, 18], [19, 19, 19]),
                                                               ([38, 38, 38], [39, 39, 39])]


def test_heldout_pairs_are_spread_and_shuffled_with_a_fixed_seed(tmp_path):
    src = PairSource(toy_streams(n_lines=400), SEP, "adjacent-lines", 3, tmp_path)
    held = [int(y[0]) for _, y in src.heldout_pairs()]
    assert sorted(held) == list(range(19, 400, 20))     # every held-out line, with its x
    assert held != sorted(held)                          # groups mix the whole corpus
    assert held == [int(y[0]) for _, y in src.heldout_pairs()]
    assert sorted(int(y[0]) for _, y in src.heldout_pairs(limit=3)) == [19, 199, 399]


def test_adjacent_windows_are_the_two_sides_of_a_cut(tmp_path):
    train = np.array(list(range(10)) + [SEP] + [50] + [SEP] + [60, 61] + [SEP], np.int32)
    streams = Streams(train, np.zeros(0, np.int32), np.zeros(100, np.int64), 3)
    src = PairSource(streams, SEP, "adjacent-windows", 4, tmp_path)
    assert len(src) == 2                   # the one-piece line cannot be cut
    seen = set()
    for x, y in src.sample(np.random.default_rng(1), 500):
        x, y = x.tolist(), y.tolist()
        if x[0] >= 60:
            assert (x, y) == ([60], [61])
            continue
        cut = y[0]
        assert x == list(range(max(0, cut - 4), cut)) and y == list(range(cut, min(10, cut + 4)))
        seen.add(cut)
    assert seen == set(range(1, 10))
    assert src.heldout_pairs() == []


def test_pad_pairs_puts_xs_then_ys():
    a = np.array
    ids, keep = pad_pairs([(a([1, 2]), a([3])), (a([4]), a([5, 6, 7]))], 0)
    assert ids.tolist() == [[1, 2, 0], [4, 0, 0], [3, 0, 0], [5, 6, 7]]
    assert keep.sum(axis=1).tolist() == [2, 1, 1, 3]


# ---- the loss and its gradients -------------------------------------------------------------

def test_infonce_value_gradient_and_top1(rng=np.random.default_rng(2)):
    s = rng.standard_normal((5, 5))
    loss, ds, top1 = C.infonce(s.copy())
    ref = np.mean([-s[i, i] + math.log(np.exp(s[i]).sum()) for i in range(5)])
    assert loss == pytest.approx(ref, rel=1e-12)
    assert top1 == np.mean(np.argmax(s, axis=1) == np.arange(5))
    assert_close(ds, numgrad(lambda: C.infonce(s)[0], s))
    same = np.zeros((4, 4))                 # a critic that tells nothing apart: L = ln N
    assert C.infonce(same)[0] == pytest.approx(math.log(4), abs=1e-15)


def model_cfg(pool, score, projection, positions, temperature=0.7):
    return dict(vocab=11, dim=8, heads=2, layers=2, ffn=12, max_len=6, positions=positions,
                objective="contrastive", pool=pool, score=score, projection=projection,
                temperature=temperature, pair="adjacent-lines", negatives="in-batch",
                contrastive_weight=1.0)


@pytest.mark.parametrize("pool,score,projection,positions", [
    ("mean", "dot", 0, "sinusoidal"), ("first", "cosine", 6, "learned"),
    ("mean", "cosine", 5, "learned"), ("first", "dot", 0, "sinusoidal")])
def test_whole_model_and_infonce_match_finite_differences(pool, score, projection, positions):
    rng = np.random.default_rng(3)
    cfg = model_cfg(pool, score, projection, positions)
    params = N.init_params(cfg, rng, np.float64)
    for name in params:  # off the init values (zero biases, unit gains) so all paths count
        params[name] += rng.standard_normal(params[name].shape) * 0.1
    ids = rng.integers(0, 11, (6, 5))       # 3 pairs, padded
    keep = np.ones((6, 5), bool)
    keep[0, 3:] = False
    keep[4, 2:] = False
    f = lambda: C.loss_and_grads(params, cfg, ids, keep, grads=False)[0]
    loss, grads, _ = C.loss_and_grads(params, cfg, ids, keep)
    assert loss == pytest.approx(f(), rel=1e-12)
    assert set(grads) == set(params) and ("proj_w" in params) == bool(projection)
    for name in sorted(params):
        if name == "out_b":   # the tied output layer is not part of this loss
            assert not grads[name].any()
            continue
        assert_close(grads[name], numgrad(f, params[name]))


def test_padding_does_not_change_the_loss():
    rng = np.random.default_rng(4)
    cfg = model_cfg("mean", "dot", 0, "sinusoidal")
    params = N.init_params(cfg, rng, np.float64)
    ids = rng.integers(0, 11, (4, 3))
    keep = np.ones((4, 3), bool)
    wide = np.concatenate([ids, rng.integers(0, 11, (4, 2))], axis=1)
    wkeep = np.concatenate([keep, np.zeros((4, 2), bool)], axis=1)
    a = C.loss_and_grads(params, cfg, ids, keep, grads=False)[0]
    b = C.loss_and_grads(params, cfg, wide, wkeep, grads=False)[0]
    assert a == pytest.approx(b, rel=1e-12)


def test_length_buckets_and_threads_match_one_padded_batch(monkeypatch):
    """Sequences run in length buckets (each padded to its own longest), buckets in chunks on
    threads: the loss and gradients equal one batch padded to the longest, up to rounding."""
    from embedkit.encoder import threads

    rng = np.random.default_rng(5)
    cfg = model_cfg("mean", "cosine", 4, "learned")
    params = N.init_params(cfg, rng, np.float64)
    ids = rng.integers(0, 11, (8, 5))
    keep = np.arange(5)[None, :] < np.array([5, 1, 3, 2, 4, 1, 5, 2])[:, None]
    results = {}
    for group, k in ((8, 1), (3, 1), (3, 2), (1, 3)):
        monkeypatch.setattr(threads, "workers", lambda k=k: k)
        monkeypatch.setattr(C, "GROUP", group)
        results[group, k] = C.loss_and_grads(params, cfg, ids, keep)
    monkeypatch.setattr(C, "GROUP", 3)   # by length, stable: 1 1 2 | 2 3 4 | 5 5
    assert [b.tolist() for b in C.buckets(keep)] == [[1, 5, 3], [7, 2, 4], [0, 6]]
    l1, g1, t1 = results[8, 1]
    for key, (loss, g, top1) in results.items():
        assert loss == pytest.approx(l1, rel=1e-12) and top1 == t1, key
        assert set(g) == set(g1)
        for name in g1:
            np.testing.assert_allclose(g[name], g1[name], rtol=1e-10, atol=1e-12, err_msg=str(key))
    f = lambda: C.loss_and_grads(params, cfg, ids, keep, grads=False)[0]
    _, grads, _ = C.loss_and_grads(params, cfg, ids, keep)
    for name in ("wte", "wpe", "l0.qkv_w", "proj_w"):   # finite differences across buckets too
        assert_close(grads[name], numgrad(f, params[name]))


def test_evaluate_groups_of_n_and_the_bound():
    rng = np.random.default_rng(6)
    cfg = model_cfg("mean", "dot", 0, "sinusoidal", temperature=1.0)
    params = N.init_params(cfg, rng)
    pairs = [(rng.integers(0, 8, rng.integers(1, 6)), rng.integers(0, 8, rng.integers(1, 6)))
             for _ in range(10)]
    assert C.evaluate(params, cfg, pairs, 16, pad=10) is None   # fewer pairs than candidates
    r = C.evaluate(params, cfg, pairs, 4, pad=10)
    assert r["pairs"] == 8 and r["n"] == 4
    v = C.embed_pairs(params, cfg, pairs[:8], pad=10)
    ref = [C.infonce(v[0][k:k + 4] @ v[1][k:k + 4].T)[0] for k in (0, 4)]
    assert r["loss"] == pytest.approx(np.mean(ref), rel=1e-5)
    assert r["mi_bound"] == pytest.approx(math.log(4) - r["loss"], rel=1e-12)


# ---- training -------------------------------------------------------------------------------

def test_cli_learns_neighbours_and_reports_the_bound(setup, capsys, tmp_path):
    d, corpus, _ = setup
    code, out, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                          "--objective", "contrastive", "--steps", 120, "--dim", 32, "--heads", 2,
                          "--ffn", 64, "--layers", 1, "--max-len", 16, "--batch-size", 8,
                          "--lr", 3e-3, "--warmup", 10, "--projection", 16, "--threads", 1,
                          "--json", "-q"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert set(s) == {"steps", "tokens_per_s", "heldout_loss", "unigram_entropy", "n", "mi_bound",
                      "heldout_top1", "train_cpc", "train_mi_bound"}
    assert s["n"] == 8
    assert s["mi_bound"] == pytest.approx(math.log(8) - s["heldout_loss"], rel=1e-9)
    # half of the pairs are predictable (animal and place named again): the bound is well above 0
    assert s["mi_bound"] > 0.5 and s["heldout_top1"] > 0.4
    assert s["mi_bound"] < math.log(8)
    meta, arrays = read_store(tmp_path / "e" / checkpoint.FILE)
    assert meta["config"]["projection"] == 16 and arrays["p.proj_w"].shape == (32, 16)
    enc = Encoder.load(tmp_path / "e")          # embed uses the encoder, not the head
    assert enc.embed("the cat went to the river .", pool="mean").shape == (32,)
    code, out, _ = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                        "--steps", 130, "--resume", "-q"], capsys)
    assert code == 0 and "ln N - L_CPC" in out and "top-1" in out


def test_mlm_plus_contrastive_reports_both(setup, tmp_path):
    _, corpus, tok = setup
    s = trainer.train([str(corpus)], tok, tmp_path / "e",
                      **dict(SMALL, objective="mlm+contrastive", steps=4, contrastive_weight=0.5))
    assert s["heldout_mlm_loss"] > 0 and s["heldout_loss"] > 0 and s["n"] == 8


def test_resume_is_bit_exact(setup, tmp_path):
    _, corpus, tok = setup
    opts = dict(SMALL, steps=6, threads=1, checkpoint_every=2, quiet=True, projection=8,
                pair="adjacent-windows", pool="first", score="cosine", temperature=0.5)
    trainer.train([str(corpus)], tok, tmp_path / "full", **opts)

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises: the step-2 checkpoint stays complete

    with pytest.raises(KeyboardInterrupt):
        trainer.train([str(corpus)], tok, tmp_path / "cut", callback=stop, **opts)
    assert read_store(tmp_path / "cut" / checkpoint.FILE)[0]["train"]["step"] == 2
    trainer.train([str(corpus)], tok, tmp_path / "cut", resume=True,
                  **dict(opts, objective=None, projection=None, pool=None))
    _, a = read_store(tmp_path / "full" / checkpoint.FILE)
    _, b = read_store(tmp_path / "cut" / checkpoint.FILE)
    assert set(a) == set(b) and "p.proj_w" in a
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_nan_loss_stops_and_keeps_last_good_checkpoint(setup, tmp_path, monkeypatch):
    _, corpus, tok = setup
    real = C.loss_and_grads
    calls = []

    def poisoned(*args, **kw):
        calls.append(1)
        loss, g, top1 = real(*args, **kw)
        return (math.nan if len(calls) == 5 else loss), g, top1

    monkeypatch.setattr(C, "loss_and_grads", poisoned)
    with pytest.raises(TrainingError, match="step 5: the loss is nan.*step 4"):
        trainer.train([str(corpus)], tok, tmp_path / "e",
                      **dict(SMALL, steps=8, checkpoint_every=2))
    meta, _, _ = checkpoint.load(tmp_path / "e")
    assert meta["train"]["step"] == 4


@pytest.mark.parametrize("args,message", [
    (["--batch-size", 1], "--batch-size must be at least 2 for a contrastive objective"),
    (["--temperature", 0], "--temperature must be a number > 0"),
    (["--temperature", -1], "--temperature must be a number > 0"),
    (["--temperature", "nan"], "--temperature must be a number > 0"),
    (["--projection", 17], "--projection must be between 1 and --dim 16"),
    (["--projection", -1], "--projection must be between 1 and --dim 16"),
    (["--contrastive-weight", 2], "--contrastive-weight needs --objective mlm+contrastive"),
])
def test_bad_options(setup, capsys, tmp_path, args, message):
    d, corpus, _ = setup
    code, _, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                        "--objective", "contrastive", "--dim", 16, "--heads", 2, *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "e").exists()


def test_contrastive_options_need_a_contrastive_objective(setup, capsys, tmp_path):
    d, corpus, _ = setup
    code, _, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                        "--temperature", 0.5], capsys)
    assert code == 2 and "--temperature needs --objective contrastive" in err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("text,pair,message", [
    ("only one line\n", "adjacent-lines", "at least two lines"),
    ("a\n\nb\n", "adjacent-lines", "at least two lines"),     # no two neighbouring non-empty lines
    ("a\nb\n", "adjacent-windows", "no line of 2 or more pieces"),
])
def test_corpora_without_pairs(setup, capsys, tmp_path, text, pair, message):
    d, _, _ = setup
    corpus = tmp_path / "c.txt"
    corpus.write_text(text)
    code, _, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                        "--objective", "contrastive", "--pair", pair, "-q"], capsys)
    assert code == 2 and message in err and "c.txt" in err and "Traceback" not in err, err
    assert not (tmp_path / "e").exists()


def test_resume_refuses_another_objective_or_setting(setup, capsys, tmp_path):
    d, corpus, _ = setup
    base = ["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e", "--dim", 16,
            "--heads", 2, "--ffn", 32, "--layers", 1, "--max-len", 16, "--batch-size", 4, "-q"]
    code, _, err = run(base + ["--steps", 2, "--objective", "contrastive"], capsys)
    assert code == 0, err
    before = (tmp_path / "e" / checkpoint.FILE).read_bytes()
    for extra, message in ((["--objective", "mlm"],
                            "trained with --objective contrastive, not mlm"),
                           (["--temperature", 2], "trained with --temperature 1.0, not 2.0"),
                           (["--pool", "first"], "trained with --pool mean, not first")):
        code, _, err = run(base + ["--steps", 4, "--resume", *extra], capsys)
        assert code == 2 and message in err, err
    assert (tmp_path / "e" / checkpoint.FILE).read_bytes() == before


def test_epochs_count_passes_over_the_training_pairs(setup, tmp_path):
    _, corpus, tok = setup
    s = trainer.train([str(corpus)], tok, tmp_path / "e", **dict(SMALL, epochs=0.25))
    pairs = sum(1 for c in range(len(corpus_lines()) - 1) if c % 20 not in (18, 19))
    assert s["steps"] == math.ceil(0.25 * pairs / 8)


def test_too_few_heldout_pairs_give_null_figures(setup, capsys, tmp_path):
    d, _, _ = setup
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(corpus_lines(60)) + "\n")     # 3 held-out pairs, N = 8
    args = ["encoder", "train", corpus, "-t", d / "tok", "--objective", "contrastive",
            "--steps", 2, "--dim", 16, "--heads", 2, "--ffn", 32, "--layers", 1,
            "--batch-size", 8, "-q"]
    code, out, err = run(args + ["-o", tmp_path / "a", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["heldout_loss"] is None and s["mi_bound"] is None and s["heldout_top1"] is None
    assert s["train_cpc"] > 0
    code, out, err = run(args + ["-o", tmp_path / "b"], capsys)
    assert code == 0 and "held-out L_CPC     n/a (fewer than N = 8 held-out pairs" in out, out
