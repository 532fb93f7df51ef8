"""Fuzzing of the tokenizer files, word counts, classifier models (fastText-style, ``--model nb``,
fine-tuned encoders and their checkpoints), BPE-bag vectors and ``--out-dir`` manifests: each
mutated file loads and works, or is one ``InputError`` (see tests/fuzzing.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from embedkit.store import read_store, store_kind, write_store
from fuzzing import (FUZZ, _json_header, _outcome, _slack, _use_vectors, _with_header,
                     byte_mutation, store_mutation)


TOKENIZER_TEXT = ["the cat sat on the mat", "the dog sat café 日本", "a cat and a dog"] * 20


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    """A learned byte-level vocabulary as tokenizer.json and .tiktoken, a sentencepiece BPE
    .model (when the package is there), a counts file and a classifier model."""
    from embedkit import BPETokenizer, Classifier
    from embedkit.bpe.formats import wordcounts

    d = tmp_path_factory.mktemp("tokfiles")
    tok = BPETokenizer.train(TOKENIZER_TEXT, 290)
    tok.export(d / "t.json", "tokenizer.json")
    tok.export(d / "t.tiktoken", "tiktoken")
    out = {"tokenizer.json": d / "t.json", "tiktoken": d / "t.tiktoken"}
    try:
        import sentencepiece as spm

        (d / "sp.txt").write_text("\n".join(TOKENIZER_TEXT * 5) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(d / "sp.txt"), model_prefix=str(d / "sp"),
                                       model_type="bpe", vocab_size=300, byte_fallback=True,
                                       minloglevel=2)
        out["sentencepiece"] = d / "sp.model"
    except ImportError:
        pass
    with open(d / "counts.tsv", "w", encoding="utf-8", newline="") as f:
        wordcounts.dump(f, {"the": 5, " cat": 3, "a\tb": 1, "\udcff": 1},
                        wordcounts.settings(True, False, None))
    out["counts"] = d / "counts.tsv"
    (d / "train.txt").write_text("__label__a the cat sat\n__label__b a dog ran\n" * 20)
    Classifier.train([str(d / "train.txt")], epochs=2, dim=4, word_ngrams=2, buckets=1000,
                     quiet=True).save(d / "m0.ekc")
    meta, arrays = read_store(d / "m0.ekc", mmap=False)  # room in the header for the lies
    write_store(d / "m.ekc", "classifier", dict(meta, **_slack()), arrays)
    out["classifier"] = d / "m.ekc"
    Classifier.train([str(d / "train.txt")], model="nb", word_ngrams=2, buckets=1000,
                     quiet=True).save(d / "nb0.ekc")
    out["nb classifier"] = _with_slack(d / "nb0.ekc", d / "nb.ekc")
    out.update(_finetuned(d, tok))
    return out


def _with_slack(src, dst):
    """The same store rewritten with room in its header for the lies ``store_mutation`` tells."""
    meta, arrays = read_store(src, mmap=False)
    write_store(dst, store_kind(src), dict(meta, **_slack()), arrays)
    return dst


def _finetuned(d, tok) -> dict:
    """A fine-tuned encoder MODEL and its MODEL.ckpt, from a tiny random encoder."""
    from embedkit.classify import finetune as F
    from embedkit.encoder import checkpoint
    from embedkit.encoder.network import init_params
    from embedkit.encoder.vocab import PieceVocab

    vocab = PieceVocab(tok)
    cfg = {"vocab": vocab.size, "dim": 4, "heads": 2, "layers": 1, "ffn": 8, "max_len": 8,
           "positions": "learned", "objective": "mlm"}
    (d / "enc").mkdir()
    checkpoint.save(d / "enc", cfg, init_params(cfg, np.random.default_rng(0)), tok.to_files(),
                    vocab.special)
    (d / "ft.tsv").write_text("a\tthe cat sat\nb\ta dog ran\n" * 8)
    F.finetune(d / "enc", d / "ft.tsv", d / "ft0.ekc", epochs=1, batch_size=4, threads=1)
    return {"finetuned": _with_slack(d / "ft0.ekc", d / "ft.ekc"),
            "finetune checkpoint": _with_slack(F.checkpoint_path(d / "ft0.ekc"), d / "ft.ckpt")}


def _use_tokenizer_file(kind):
    def use(path):
        from embedkit import BPETokenizer

        tok = BPETokenizer.load(path, pattern="gpt2" if kind == "tiktoken" else None)
        ids = tok.encode("the cat café zzqx")
        assert all(0 <= i < tok.vocab_size for i in ids)
        tok.decode(ids)
    return use


def _use_checkpoint(path):
    from embedkit.classify.finetune_files import load_checkpoint

    meta, arrays = load_checkpoint(path)
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")


def _use_counts(path):
    from embedkit.bpe.formats import wordcounts

    counts, _ = wordcounts.load(path)
    assert all(isinstance(c, int) and c > 0 for c in counts.values())


def _use_classifier(path):
    from embedkit.classify.model import load_model

    m = load_model(path)
    p = m.predict_proba([["the", "cat"], ["unseen"]])
    assert p.shape == (2, len(m.labels)) and np.isfinite(p).all()


STORES = ("classifier", "nb classifier", "finetuned", "finetune checkpoint")


@pytest.mark.parametrize("kind", ["tokenizer.json", "tiktoken", "sentencepiece", "counts", *STORES])
def test_tokenizer_counts_and_classifier_mutations(kind, tokenizer_files, tmp_path_factory):
    if kind not in tokenizer_files:
        pytest.skip("sentencepiece is not installed (test extra)")
    seed = tokenizer_files[kind].read_bytes()
    use = {"counts": _use_counts, "classifier": _use_classifier, "nb classifier": _use_classifier,
           "finetuned": _use_classifier, "finetune checkpoint": _use_checkpoint}.get(kind) \
        or _use_tokenizer_file(kind)
    where = tmp_path_factory.mktemp("m") / tokenizer_files[kind].name
    mutate = store_mutation if kind in STORES else byte_mutation
    use(tokenizer_files[kind])  # the seed itself loads

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        where.write_bytes(data.draw(mutate(seed)))
        _outcome(kind, where, use)

    run()


@pytest.fixture(scope="module", params=["all", "weighted"])
def bag_seed(tmp_path_factory, request):
    """A vectors model with ``--bpe-bag all`` or ``weighted`` subwords: its meta holds the kept
    n-gram rows (and, weighted, one weight per row)."""
    import embedkit
    from embedkit import BPETokenizer

    d = tmp_path_factory.mktemp("bag")
    lines = TOKENIZER_TEXT * 20
    BPETokenizer.train(lines, 290).save(d / "tok")
    v = embedkit.train(lines, dim=4, epochs=1, min_count=1, subwords="bpe", tokenizer=d / "tok",
                       bpe_bag=request.param, threads=1)
    v.save_native(d / "m0.ekv")
    meta, arrays = read_store(d / "m0.ekv", mmap=False)
    write_store(d / "m.ekv", "vectors", dict(meta, **_slack()), arrays)
    return d / "m.ekv"


@st.composite
def bag_mutation(draw, data: bytes) -> bytes:
    """``store_mutation``, or the kept-rows list lying (reordered, cut, out of range, junk), or
    a weighted bag's weights lying (cut, one more, zero, negative, infinite, junk)."""
    if draw(st.booleans()):
        return draw(store_mutation(data))
    header, _ = _json_header(data)
    sub = header["meta"]["subwords"]
    if "weights" in sub and draw(st.booleans()):
        w = sub["weights"]
        sub["weights"] = draw(st.sampled_from(
            [w[:-1], w + [1.0], [0.0] + w[1:], [-1.0] + w[1:], [1e309] + w[1:], ["x"] + w[1:],
             [[1.0]] * len(w), {}, None, 3, []]))
        return _with_header(data, header)
    rows = sub["rows"]
    sub["rows"] = draw(st.sampled_from(
        [rows[::-1], rows[:-1], rows + [rows[-1] + 1], rows[:1] * len(rows), [-1] + rows[1:],
         rows[:-1] + [1 << 40], [1.5] + rows[1:], ["x"], {}, None, 3, []]))
    return _with_header(data, header)


def test_bpe_bag_vectors_mutations(bag_seed, tmp_path_factory):
    data = bag_seed.read_bytes()
    bag = _json_header(data)[0]["meta"]["subwords"]["bag"]
    where = tmp_path_factory.mktemp("bagm") / "m.ekv"
    _use_vectors(bag_seed)

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data_):
        where.write_bytes(data_.draw(bag_mutation(data)))
        _outcome(f"native .ekv with --bpe-bag {bag}", where, _use_vectors)

    run()


def _use_manifest(path):
    from embedkit.cli import shards

    done = shards._done(path, {"format": "embedkit-encoded-shards", "version": 1})
    assert all(isinstance(k, str) and isinstance(e, dict) for k, e in done.items())


def test_out_dir_manifest_mutations(tmp_path):
    """``--out-dir``'s manifest.json, as a re-run reads it: entries or one clean error."""
    seed = json.dumps({"format": "embedkit-encoded-shards", "version": 1, "shards": [
        {"shard": "a.txt", "output": "a.txt.ids", "lines": 2, "tokens": 5, "sha256": "00" * 32,
         "size": 10, "mtime_ns": 1}]}, indent=1).encode()
    where = tmp_path / "manifest.json"

    @FUZZ
    @given(st.one_of(byte_mutation(seed), st.sampled_from([
        b'{"shards": [{"shard": ["a"]}]}', b'{"shards": [{"shard": {}}, 3, null]}', b"[]",
        b'{"shards": {}}', b'{"format": "embedkit-encoded-shards", "version": 1}'])))
    def run(data):
        where.write_bytes(data)
        _outcome("out-dir manifest.json", where, _use_manifest)

    run()
