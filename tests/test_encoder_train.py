"""Encoder pretraining: objectives, optimizer, the trainer's summary, checkpoints, --resume and
the bad inputs of `embedkit encoder train`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.encoder import checkpoint, trainer
from embedkit.encoder.objectives import clm_batch, mlm_batch
from embedkit.encoder.optim import AdamW, lr_at
from embedkit.errors import TrainingError
from embedkit.store import read_store
from cli_run import run

SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .",
             "my friend walked along the river bank .", "the teacher put money in the bank .",
             "a child slept under the old tree .", "the bird flew over a house ."]
SMALL = dict(dim=16, heads=2, ffn=32, layers=1, max_len=16, batch_size=4, warmup=2)


def corpus_lines(n=120):
    return [SENTENCES[i % 6] for i in range(n)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    tok = BPETokenizer.train([str(corpus)], 300)
    tok.save(d / "tok")
    return d, corpus, tok


def test_mlm_batch_masks_80_10_10_and_never_specials():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, (200, 100))
    ids[:, 0] = 50  # a special id: never chosen
    is_regular = np.ones(53, bool)
    is_regular[50:] = False
    keep = np.ones(ids.shape, bool)
    keep[:, -10:] = False
    inputs, rows, targets = mlm_batch(ids, keep, rng, 52, is_regular)
    flat_in, flat_ids = inputs.reshape(-1), ids.reshape(-1)
    assert np.array_equal(targets, flat_ids[rows])
    eligible = keep.sum() - 200
    assert abs(rows.size / eligible - 0.15) < 0.01
    assert keep.reshape(-1)[rows].all() and (flat_ids[rows] != 50).all()
    masked = (flat_in[rows] == 52).mean()
    same = (flat_in[rows] == flat_ids[rows]).mean()
    assert abs(masked - 0.8) < 0.02
    assert abs(same - (0.1 + 0.1 / 50)) < 0.02  # kept, or replaced by itself by chance
    untouched = np.ones(flat_in.size, bool)
    untouched[rows] = False
    assert np.array_equal(flat_in[untouched], flat_ids[untouched])
    assert (flat_in[rows][flat_in[rows] != 52] < 50).all()


def test_clm_batch_predicts_next_real_piece():
    windows = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    keep = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    inputs, rows, targets = clm_batch(windows, keep)
    assert inputs.tolist() == [[1, 2, 3], [5, 6, 7]]
    assert rows.tolist() == [0, 1, 2, 3] and targets.tolist() == [2, 3, 4, 6]


def test_lr_schedule():
    assert [lr_at(s, 1.0, 4, 12) for s in (1, 2, 4, 5, 8, 12, 13)] == \
        [0.25, 0.5, 1.0, 1.0, 0.625, 0.125, 0.0]
    assert lr_at(1, 0.1, 0, 1) == 0.1


def test_adamw_matches_formula_with_clipping_and_decay():
    p = {"w": np.array([[1.0, -2.0]], np.float32), "b": np.array([0.5], np.float32)}
    opt = AdamW(p, lr=0.1, warmup=0, total=10, weight_decay=0.1, clip=1.0)
    g = {"w": np.array([[3.0, 4.0]], np.float32), "b": np.array([0.0], np.float32)}
    norm, lr = opt.step(p, g)
    assert norm == pytest.approx(5.0) and lr == pytest.approx(0.1)
    gc = np.array([0.6, 0.8])  # clipped to norm 1
    m, v = 0.1 * gc, 0.001 * gc ** 2
    upd = (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8) + 0.1 * np.array([1.0, -2.0])
    np.testing.assert_allclose(p["w"][0], np.array([1.0, -2.0]) - 0.1 * upd, rtol=1e-6)
    assert p["b"][0] == pytest.approx(0.5)  # zero gradient, no decay on vectors


def entropy_of_training_lines(tok, lines):
    counts = {}
    for i, line in enumerate(lines):
        if i % 20 != 19:
            for t in tok.encode(line):
                counts[t] = counts.get(t, 0) + 1
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values())


def test_train_cli_json_summary_and_learning(setup, capsys, tmp_path):
    d, corpus, tok = setup
    code, out, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e",
                          "--steps", 150, "--dim", 32, "--heads", 2, "--ffn", 64, "--layers", 1,
                          "--max-len", 16, "--batch-size", 32, "--lr", 1e-2, "--warmup", 10,
                          "--threads", 1, "--json", "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) == {"steps", "tokens_per_s", "heldout_loss", "unigram_entropy"}
    assert summary["steps"] == 150 and summary["tokens_per_s"] > 0
    assert summary["unigram_entropy"] == pytest.approx(entropy_of_training_lines(tok, corpus_lines()),
                                                       rel=1e-12)
    # six sentences over and over: context predicts blanks far better than piece frequencies
    assert summary["heldout_loss"] < summary["unigram_entropy"] - 0.5
    meta, arrays = read_store(tmp_path / "e" / checkpoint.FILE)
    assert meta["train"]["step"] == 150 and meta["config"]["dim"] == 32
    assert not [p for p in (tmp_path / "e").iterdir() if p.name != checkpoint.FILE]


def test_resume_is_bit_exact(setup, tmp_path):
    _, corpus, tok = setup
    opts = dict(SMALL, steps=6, threads=1, checkpoint_every=2, quiet=True)
    trainer.train([str(corpus)], tok, tmp_path / "full", **opts)

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train([str(corpus)], tok, tmp_path / "cut", callback=stop, **opts)
    assert read_store(tmp_path / "cut" / checkpoint.FILE)[0]["train"]["step"] == 2
    trainer.train([str(corpus)], tok, tmp_path / "cut", resume=True, **opts)
    _, a = read_store(tmp_path / "full" / checkpoint.FILE)
    _, b = read_store(tmp_path / "cut" / checkpoint.FILE)
    assert set(a) == set(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_nan_loss_stops_and_keeps_last_good_checkpoint(setup, tmp_path, monkeypatch):
    _, corpus, tok = setup
    real = trainer.loss_and_grads
    calls = []

    def poisoned(*args, **kw):
        calls.append(1)
        loss, g = real(*args, **kw)
        return (math.nan if len(calls) == 5 else loss), g

    monkeypatch.setattr(trainer, "loss_and_grads", poisoned)
    with pytest.raises(TrainingError, match="step 5: the loss is nan.*step 4"):
        trainer.train([str(corpus)], tok, tmp_path / "e", **dict(SMALL, steps=8, checkpoint_every=2))
    meta, _, _ = checkpoint.load(tmp_path / "e")
    assert meta["train"]["step"] == 4


@pytest.mark.parametrize("args,message", [
    (["--heads", 3, "--dim", 16], "--heads 3 does not divide --dim 16"),
    (["--steps", 0], "--steps must be at least 1"),
    (["--steps", 2, "--epochs", 1], "not both"),
    (["--batch-size", 0], "--batch-size must be at least 1"),
    (["--epochs", 0], "--epochs must be > 0"),
    (["--threads", 0], "'--threads': 0 is not in the range 1<=x<=1024"),
    (["--max-len", 0], "--max-len must be at least 1"),
])
def test_bad_options(setup, capsys, tmp_path, args, message):
    d, corpus, _ = setup
    code, _, err = run(["encoder", "train", corpus, "-t", d / "tok", "-o", tmp_path / "e", *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_bad_corpora_and_tokdir(setup, capsys, tmp_path):
    d, _, _ = setup
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"abc\n\x00\x01\n")
    cases = [([tmp_path / "missing.txt", "-t", d / "tok"], "no such file"),
             ([empty, "-t", d / "tok"], "empty corpus"),
             ([binary, "-t", d / "tok"], "bin.txt:2: NUL byte"),
             ([tmp_path, "-t", d / "tok"], "is a folder"),
             ([empty, "-t", tmp_path / "nothing"], "nothing: no such tokenizer folder or file")]
    for args, message in cases:
        code, out, err = run(["encoder", "train", *args, "-o", tmp_path / "e", "-q"], capsys)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
        assert not (tmp_path / "e").exists(), f"a failed run left ENCDIR behind: {args}"


def test_resume_refuses_other_config_and_other_tokdir(setup, capsys, tmp_path):
    d, corpus, _ = setup
    base = ["encoder", "train", corpus, "-o", tmp_path / "e", "--dim", 16, "--heads", 2, "--ffn", 32,
            "--layers", 1, "--max-len", 16, "--batch-size", 4, "-q"]
    code, _, err = run(base + ["-t", d / "tok", "--steps", 2], capsys)
    assert code == 0, err
    code, _, err = run(base + ["-t", d / "tok", "--steps", 4, "--resume", "--layers", 2], capsys)
    assert code == 2 and "trained with --layers 1, not 2" in err
    other = BPETokenizer.train([str(corpus)], 280)
    other.save(tmp_path / "tok2")
    code, _, err = run(base + ["-t", tmp_path / "tok2", "--steps", 4, "--resume"], capsys)
    assert code == 2 and "TOKDIR does not match" in err
    code, _, err = run(["encoder", "train", corpus, "-o", tmp_path / "new", "-t", d / "tok",
                        "--resume", "-q"], capsys)
    assert code == 2 and "no such folder" in err


def test_init_embeddings_copies_matching_pieces(setup, tmp_path):
    _, _, tok = setup
    from embedkit.encoder.network import init_params
    from embedkit.encoder.vocab import PieceVocab

    vocab = PieceVocab(tok)
    (piece,) = tok.tokens(" the")
    cat = tok.token_to_id(piece)
    vec = tmp_path / "v.vec"
    vec.write_text(f"2 4\n{piece} 1 2 3 4\nzzz 0 0 0 1\n", encoding="utf-8")
    cfg = dict(vocab=vocab.size, dim=4, heads=2, layers=1, ffn=8, max_len=8,
               positions="sinusoidal", objective="mlm")
    params = init_params(cfg, np.random.default_rng(0))
    before = params["wte"].copy()
    assert trainer.init_embeddings(params, vocab, vec, quiet=True) == 1
    np.testing.assert_allclose(params["wte"][cat], np.array([1, 2, 3, 4]) / math.sqrt(30), rtol=1e-6)
    changed = np.flatnonzero((params["wte"] != before).any(axis=1))
    assert changed.tolist() == [cat]
    params["wte"] = np.zeros((vocab.size, 5), np.float32)
    with pytest.raises(Exception, match="dimension 4"):
        trainer.init_embeddings(params, vocab, vec, quiet=True)


def test_epochs_set_the_number_of_steps(setup, tmp_path):
    _, corpus, tok = setup
    s = trainer.train([str(corpus)], tok, tmp_path / "e", **dict(SMALL, epochs=2.0))
    # 2 passes over the training pieces in windows of batch_size * max_len pieces
    assert s["steps"] == math.ceil(2.0 * s["train_pieces"] / (4 * 16))
    ids = [t for i, line in enumerate(corpus_lines()) if i % 20 != 19 for t in tok.encode(line) + [0]]
    assert s["train_pieces"] == len(ids)  # every training line's pieces and its [SEP]
