"""The Encoder API and `embedkit encoder embed / fill / generate`: contextual vectors, padding
invariance, windows for long lines, output formats, and the bad inputs."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from embedkit import Encoder
from embedkit.bpe.model import BPETokenizer
from embedkit.encoder import checkpoint
from embedkit.encoder import layers as L
from embedkit.encoder import network as N
from embedkit.errors import UsageError
from cli_run import run

SENTENCES = ["the cat sat on the mat .", "a dog ran to the park .",
             "my friend walked along the river bank .", "the teacher put money in the bank .",
             "a child slept under the old tree .", "the bird flew over a house ."]
ARCH = dict(dim=32, heads=2, ffn=64, layers=1, max_len=16, batch_size=32, warmup=10, lr=1e-2,
            threads=1, quiet=True)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    d = tmp_path_factory.mktemp("encm")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES[i % 6] for i in range(120)) + "\n", encoding="utf-8")
    tok = BPETokenizer.train([str(corpus)], 300)
    mlm = Encoder.train(corpus, tok, d / "mlm", steps=150, **ARCH)
    clm = Encoder.train(corpus, tok, d / "clm", steps=100, objective="clm", **ARCH)
    return d, tok, mlm, clm


def find(seq, sub):
    return max(i for i in range(len(seq) - len(sub) + 1) if seq[i:i + len(sub)] == sub)


def test_same_word_in_two_sentences_gets_different_vectors(encoders):
    _, tok, mlm, _ = encoders
    a, b = "along the river bank .", "money in the bank ."
    bank = tok.tokens(" bank")
    va, vb = mlm.embed([a, b])
    ia, ib = find(mlm.pieces(a), bank), find(mlm.pieces(b), bank)
    x, y = va[ia:ia + len(bank)], vb[ib:ib + len(bank)]
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert (cos < 0.99).all(), cos
    # the input embeddings of the same pieces differ only by their position codes
    e = mlm.embed([a, b], layer=0)
    pe = N.positions(mlm.params, mlm.config, 16)
    np.testing.assert_allclose(e[0][ia:ia + len(bank)] - pe[ia:ia + len(bank)],
                               e[1][ib:ib + len(bank)] - pe[ib:ib + len(bank)], atol=1e-5)
    # layers count from the end too: -2 is the embeddings (0) and -1 the last layer (1)
    assert all(np.array_equal(x, y) for x, y in zip(mlm.embed([a, b], layer=-2), e))
    assert all(np.array_equal(x, y) for x, y in zip(mlm.embed([a, b], layer=1), [va, vb]))


@pytest.mark.parametrize("which", ["mlm", "clm"])
def test_padding_never_changes_real_vectors(encoders, which):
    _, _, mlm, clm = encoders
    enc = mlm if which == "mlm" else clm
    ids = np.array([enc.vocab.encode_batch([SENTENCES[0]])[0]])
    t = ids.shape[1]
    alone, _ = N.forward(enc.params, enc.config, ids, np.ones(ids.shape, bool))
    rng = np.random.default_rng(0)
    padded = np.concatenate([ids, rng.integers(0, enc.vocab.size, (1, 16 - t))], axis=1)
    keep = np.arange(16)[None] < t
    with_pad, _ = N.forward(enc.params, enc.config, padded, keep)
    np.testing.assert_allclose(with_pad[0, :t], alone[0], atol=1e-5)
    # and in a batch beside a longer line, through the public API
    short, = enc.embed([SENTENCES[0]])
    both = enc.embed([SENTENCES[0], SENTENCES[2] + " " + SENTENCES[3]])
    np.testing.assert_allclose(both[0], short, atol=1e-5)


def test_long_lines_are_encoded_in_windows(encoders):
    _, _, mlm, _ = encoders
    text = " ".join(SENTENCES)
    ids = mlm.vocab.encode_batch([text])[0]
    assert len(ids) > 32
    v = mlm.embed(text)
    assert v.shape == (len(ids), 32)
    first, _ = N.forward(mlm.params, mlm.config, np.array([ids[:16]]), np.ones((1, 16), bool))
    np.testing.assert_allclose(v[:16], first[0], atol=1e-5)
    second, _ = N.forward(mlm.params, mlm.config, np.array([ids[16:32]]), np.ones((1, 16), bool))
    np.testing.assert_allclose(v[16:32], second[0], atol=1e-5)


def test_embed_cli_jsonl_npy_and_pool(encoders, capsys, tmp_path):
    d, tok, mlm, _ = encoders
    lines = ["the cat sat on the mat .", "", "money in the bank"]
    f = tmp_path / "in.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(["encoder", "embed", d / "mlm", f], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert len(rows) == 3
    for line, row in zip(lines, rows):
        assert row["pieces"] == tok.tokens(line)
        np.testing.assert_allclose(np.array(row["vectors"]).reshape(-1, 32),
                                   mlm.embed(line).reshape(-1, 32), atol=1e-6)
    code, _, err = run(["encoder", "embed", d / "mlm", f, "--format", "npy", "-o", tmp_path / "v.npy"],
                       capsys)
    assert code == 0, err
    arr = np.load(tmp_path / "v.npy")
    assert arr.shape == (sum(len(tok.encode(x)) for x in lines), 32)
    code, out, _ = run(["encoder", "embed", d / "mlm", f, "--pool", "mean"], capsys)
    means = [json.loads(x)["vector"] for x in out.splitlines()]
    np.testing.assert_allclose(means[0], arr[:len(tok.encode(lines[0]))].mean(0), atol=2e-6)
    assert means[1] == [0.0] * 32
    code, _, err = run(["encoder", "embed", d / "mlm", f, "--layer", 2], capsys)
    assert code == 2 and "--layer must be in -2..1" in err
    code, out, _ = run(["encoder", "embed", d / "mlm", f, "--layer", 0, "--format", "npy",
                        "-o", tmp_path / "e.npy"], capsys)
    e0 = np.load(tmp_path / "e.npy")
    ids = tok.encode(lines[0])
    np.testing.assert_allclose(e0[:len(ids)], L.embed_forward(np.array([ids]), mlm.params["wte"],
                                                              N.positions(mlm.params, mlm.config, 16))[0],
                               atol=1e-6)


def test_fill_and_generate(encoders, capsys):
    d, tok, mlm, clm = encoders
    cands = mlm.fill("the teacher put money in the [MASK] .", k=4)
    assert len(cands) == 1 and len(cands[0]) == 4
    probs = [p for _, p in cands[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    # the k most likely: a softmax of the model's own logits, sorted descending
    def blank(after):
        ids = tok.encode("the teacher put money in the") + [mlm.vocab.mask] + tok.encode(after)
        h, _ = N.forward(mlm.params, mlm.config, np.array([ids]), np.ones((1, len(ids)), bool))
        row = ids.index(mlm.vocab.mask)
        logits = (h[0, row] @ mlm.params["wte"].T + mlm.params["out_b"]).astype(np.float64)
        logits[~mlm.vocab.is_regular] = -np.inf
        p = np.exp(logits - logits.max())
        return p / p.sum()

    p = blank(" .")
    top = np.argsort(-p)[:4]
    assert [c for c, _ in cands[0]] == [tok.decode([int(i)]) for i in top]
    np.testing.assert_allclose(probs, p[top], rtol=1e-5)
    # only a space just before a [MASK] belongs to the blank: the text's trailing space is a piece
    p = blank(" . ")
    top = np.argsort(-p)[:4]
    np.testing.assert_allclose([q for _, q in mlm.fill("the teacher put money in the [MASK] . ", k=4)[0]],
                               p[top], rtol=1e-5)
    with pytest.raises(UsageError, match=r"this is a clm encoder: fill needs one trained with mlm "
                                         r"\(use generate\)$"):
        clm.fill("the [MASK] .")
    with pytest.raises(UsageError, match=r"this is a mlm encoder: generate needs a clm encoder "
                                         r"\(use fill\)$"):
        mlm.generate("the")
    code, out, _ = run(["encoder", "fill", d / "mlm", "the [MASK] sat on the [MASK] .", "--json"], capsys)
    assert code == 0 and len(json.loads(out)["masks"]) == 2
    # a clm encoder that has learnt six sentences completes one of them
    assert clm.generate("the teacher put money in", tokens=10, temperature=0) == \
        "the teacher put money in the bank ."
    a = clm.generate("a dog", tokens=8, temperature=1.0, seed=3)
    assert a == clm.generate("a dog", tokens=8, temperature=1.0, seed=3) and a.startswith("a dog")
    code, out, _ = run(["encoder", "generate", d / "clm", "the cat", "--temperature", 0], capsys)
    assert code == 0 and out == "the cat sat on the mat .\n"


def test_save_load_round_trip(encoders, tmp_path):
    _, _, mlm, _ = encoders
    mlm.save(tmp_path / "copy")
    again = Encoder.load(tmp_path / "copy")
    assert again.config == mlm.config
    np.testing.assert_array_equal(again.embed(SENTENCES[1]), mlm.embed(SENTENCES[1]))


def test_query_bad_inputs(encoders, capsys, tmp_path):
    d, _, _, _ = encoders
    bad = tmp_path / "bad"
    bad.mkdir()
    (tmp_path / "corrupt").mkdir()
    raw = (d / "mlm" / checkpoint.FILE).read_bytes()
    (tmp_path / "corrupt" / checkpoint.FILE).write_bytes(raw[: len(raw) // 2])
    cases = [(["fill", d / "mlm", "no blank here"], "no [MASK] in the text"),
             (["fill", d / "clm", "the [MASK] sat"], "clm encoder: fill needs one trained with mlm"),
             (["generate", d / "mlm", "the cat"], "mlm encoder: generate needs a clm encoder"),
             (["fill", d / "mlm", "[MASK] " * 20], "more than the encoder's max length 16"),
             (["embed", bad, "-"], "not an encoder folder"),
             (["embed", tmp_path / "nope"], "no such folder"),
             (["embed", tmp_path / "corrupt"], "truncated"),
             (["fill", d / "mlm", "the [MASK]", "-k", 0], "-k must be at least 1")]
    for args, message in cases:
        code, _, err = run(["encoder", *args], capsys)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)


def test_checkpoint_with_nan_or_wrong_shapes_is_refused(encoders, capsys, tmp_path):
    from embedkit.store import read_store, write_store

    d, _, _, _ = encoders
    meta, arrays = read_store(d / "mlm" / checkpoint.FILE, mmap=False)
    for name, change, message in [("nan", lambda a: a.__setitem__((0, 0), np.nan), "NaN or inf"),
                                  ("shape", None, "wrong shape")]:
        bad = dict(arrays)
        if change is None:
            bad["p.l0.o_w"] = np.zeros((3, 3), np.float32)
        else:
            bad["p.wte"] = bad["p.wte"].copy()
            change(bad["p.wte"])
        (tmp_path / name).mkdir()
        write_store(tmp_path / name / checkpoint.FILE, checkpoint.KIND, meta, bad)
        code, _, err = run(["encoder", "embed", tmp_path / name], capsys)
        assert code == 2 and message in err, err


def test_embed_reads_stdin_and_rejects_bad_utf8(encoders, capsys, monkeypatch, tmp_path):
    d, tok, _, _ = encoders
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"the cat\n")))
    code, out, _ = run(["encoder", "embed", d / "mlm"], capsys)
    assert code == 0 and json.loads(out)["pieces"] == tok.tokens("the cat")
    f = tmp_path / "bad.txt"
    f.write_bytes(b"fine\nbad \xff byte\n")
    code, _, err = run(["encoder", "embed", d / "mlm", f], capsys)
    assert code == 2 and "bad.txt:2: invalid UTF-8" in err


def test_query_defaults_and_limits(encoders, tmp_path):
    """fill gives 5 candidates by default and accepts k=1; generate refuses negative
    temperature or tokens but takes 0 of either; its defaults are 30 tokens, 0.8, seed 0; an
    Encoder made in memory has empty meta; save overwrites its own folder."""
    d, tok, mlm, clm = encoders
    assert len(mlm.fill("the [MASK] sat .")[0]) == 5 and len(mlm.fill("the [MASK] sat .", k=1)[0]) == 1
    for bad in (dict(temperature=-0.1), dict(tokens=-1)):
        with pytest.raises(UsageError, match="must not be negative"):
            clm.generate("the", **bad)
    assert clm.generate("the cat", tokens=0) == "the cat"
    assert clm.generate("a", temperature=0) == clm.generate("a", tokens=30, temperature=0)
    assert clm.generate("a") == clm.generate("a", tokens=30, temperature=0.8, seed=0)
    assert Encoder(clm.params, clm.config, tok).meta == {}
    clm.save(tmp_path / "e")
    clm.save(tmp_path / "e")
    assert Encoder.load(tmp_path / "e").config == clm.config


def test_generate_samples_from_p_to_the_power_one_over_temperature(encoders):
    """One sampled piece, 400 seeds: its frequencies follow p^(1/T) renormalised (T = 0.5
    sharpens the model's own next-piece distribution), not p^T."""
    _, tok, _, clm = encoders
    prompt = "the"
    ids = tok.encode(prompt)
    p = clm._probs(np.array([ids]), np.array([len(ids) - 1]), allow_sep=True)[0]
    sharp = p ** 2 / (p ** 2).sum()
    top = int(np.argmax(p))
    hits = sum(clm.generate(prompt, tokens=1, temperature=0.5, seed=s) == prompt + tok.decode([top])
               for s in range(400))
    assert abs(hits / 400 - sharp[top]) < 0.08, (hits, sharp[top], p[top])


def test_train_takes_a_tokdir_path(encoders, tmp_path):
    d, tok, mlm, _ = encoders
    tok.save(tmp_path / "tok")
    enc = Encoder.train(d / "corpus.txt", tmp_path / "tok", tmp_path / "e", steps=2, **ARCH)
    assert enc.config["vocab"] == mlm.config["vocab"] and enc.tokenizer.to_files() == tok.to_files()


def test_generate_stops_after_30_pieces_by_default(encoders, monkeypatch):
    """A model that never ends the line: the default --tokens is 30 pieces."""
    _, tok, _, clm = encoders
    piece = tok.encode(" cat")[0]

    def always(ids, rows, allow_sep=False):
        p = np.zeros((len(rows), clm.vocab.size))
        p[:, piece] = 1.0
        return p

    monkeypatch.setattr(clm, "_probs", always)
    assert clm.generate("a", temperature=0) == "a" + tok.decode([piece] * 30)
