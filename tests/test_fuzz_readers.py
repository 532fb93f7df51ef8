"""Every reader, fed a few hundred mutations of a small valid file, either loads it (finite
vectors; an in-vocabulary and an out-of-vocabulary lookup and a top-k search work) or raises
``InputError``: no other exception, no silent garbage.

Mutations: byte flips, truncation, inserted junk, header numbers set to 0 / -1 / 2^31 / 2^63,
and (for embedkit's own files, whose header is JSON) dtype, shape, offset and meta lies.
Hypothesis runs derandomized, so CI sees the same files every run. ``FUZZ_COUNTS`` records how
each file ended (the README's "Errors and interrupts" figures come from it).
"""
from __future__ import annotations

import collections
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from embedkit.errors import InputError
from embedkit.store import _PREFIX, read_store, write_store
from embedkit.vectors.model import UnknownWordError, load

EXAMPLES = 250
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
NUMBERS = [0, -1, 1 << 31, 1 << 63, (1 << 31) - 1, 1]
JUNK = [b" ", b"\n", b"\x00", b"\xff\xfe", b"nan", b"1e999", b"-", b"\r\n", b"\x97", b"{", b"]"]
FUZZ_COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
WORDS = ["the", "cat", "sat", "dog", "café", "日本"]


# ---- mutations ---------------------------------------------------------------------------------

def _put(data: bytes, pos: int, value: int, width: int) -> bytes:
    raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return data[:pos] + raw + data[pos + width:]


@st.composite
def byte_mutation(draw, data: bytes, slots: list[tuple[int, int]] = ()) -> bytes:
    """One of: flip bytes, truncate, insert junk, overwrite a binary integer field."""
    kinds = ["flip", "truncate", "insert"] + (["number"] * 2 if slots else [])
    kind = draw(st.sampled_from(kinds))
    n = len(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
        return data
    if kind == "truncate":
        return data[:draw(st.integers(0, n - 1))]
    if kind == "insert":
        i = draw(st.integers(0, n))
        return data[:i] + draw(st.sampled_from(JUNK)) * draw(st.integers(1, 3)) + data[i:]
    pos, width = draw(st.sampled_from(list(slots)))
    return _put(data, pos, draw(st.sampled_from(NUMBERS)), width)


@st.composite
def text_mutation(draw, data: bytes) -> bytes:
    """A text vector file with a lying ``N D`` header, or a byte-level mutation."""
    if draw(st.booleans()):
        return draw(byte_mutation(data))
    head, _, body = data.partition(b"\n")
    n, d = head.split()
    n = draw(st.sampled_from([n] + [str(x).encode() for x in NUMBERS]))
    d = draw(st.sampled_from([d] + [str(x).encode() for x in NUMBERS]))
    return n + b" " + d + b"\n" + body


def _json_header(data: bytes) -> tuple[dict, int]:
    head_len = _PREFIX.unpack_from(data)[3]
    return json.loads(data[_PREFIX.size:_PREFIX.size + head_len]), head_len


def _with_header(data: bytes, header: dict) -> bytes:
    """``data`` with its JSON header replaced, in place: the seeds carry a ``pad`` string in
    their meta, dropped here, so the mutated header always fits the old one's room."""
    _, head_len = _json_header(data)
    meta = header.get("meta")
    if isinstance(meta, dict):
        meta.pop("pad", None)
        for value in meta.values():
            if isinstance(value, dict):
                value.pop("pad", None)
    text = json.dumps(header).encode()
    assert len(text) <= head_len, "seed header has too little slack"
    return data[:_PREFIX.size] + text.ljust(head_len) + data[_PREFIX.size + head_len:]


LIES = [0, -1, 1 << 31, 1 << 63, 1.5, "3", None, [], {}, True]


@st.composite
def store_mutation(draw, data: bytes) -> bytes:
    """A native store with one header field lying (dtype, shape, offset, meta), or bytes mutated."""
    if draw(st.integers(0, 2)) == 0:
        return draw(byte_mutation(data, [(12, 4), (16, 8)]))
    header, _ = _json_header(data)
    target = draw(st.sampled_from(["array", "array", "meta", "meta", "top"]))
    if target == "array":
        name = draw(st.sampled_from(sorted(header["arrays"])))
        spec = header["arrays"][name]
        field = draw(st.sampled_from(["dtype", "shape", "offset"]))
        if field == "dtype":
            spec["dtype"] = draw(st.sampled_from(["<i4", "<f8", "<i8", ">f4", "|u1", "<f2", "x", 4]))
        elif field == "shape":
            shape = spec["shape"]
            spec["shape"] = draw(st.sampled_from(
                [shape[::-1], [shape[0] * 2] + shape[1:], shape[:1], shape + [1], [-1] + shape[1:],
                 [1 << 63] + shape[1:], [0] + shape[1:], [shape[0] - 1] + shape[1:], "x",
                 [1.5] + shape[1:]]))
        else:
            others = [s["offset"] for s in header["arrays"].values()]
            spec["offset"] = draw(st.sampled_from(
                NUMBERS + others + [spec["offset"] + 1, spec["offset"] - 64, 1.5, "8"]))
    elif target == "meta":
        meta = header["meta"]
        key = draw(st.sampled_from(sorted(meta) + ["subwords.minn", "subwords.maxn",
                                                   "subwords.buckets", "subwords.kind"]))
        value = draw(st.sampled_from(LIES + ["bpe", "none", "char"]))
        if key.startswith("subwords.") and isinstance(meta.get("subwords"), dict):
            meta["subwords"][key.split(".")[1]] = value
        elif key == "words" and draw(st.booleans()):
            words = meta["words"]
            meta["words"] = draw(st.sampled_from([words[:-1], words + ["x"], words[:1] * len(words),
                                                  words[:-1] + [3]]))
        else:
            meta[key] = value
    else:
        header[draw(st.sampled_from(["meta", "arrays", "kind"]))] = draw(st.sampled_from(LIES))
    return _with_header(data, header)


# ---- what a load must give -------------------------------------------------------------------

def _outcome(reader: str, path, open_and_use) -> None:
    """Run ``open_and_use``; record ``ok`` or ``error``; anything else fails the test."""
    try:
        open_and_use(path)
    except InputError as e:
        assert "\n" not in str(e), str(e)
        FUZZ_COUNTS[reader]["clean error"] += 1
        return
    except BaseException:
        FUZZ_COUNTS[reader]["other"] += 1
        raise
    FUZZ_COUNTS[reader]["loaded"] += 1


def _use_vectors(path) -> None:
    vecs = load(path)
    assert len(vecs) > 0
    word = vecs.words[0]
    v = vecs[word]
    assert v.shape == (vecs.dim,) and np.isfinite(v).all()
    try:
        oov = vecs["zzqx-not-a-word"]
        assert oov.shape == (vecs.dim,) and np.isfinite(oov).all()
    except UnknownWordError:
        pass
    found = vecs.most_similar(word, k=3)
    assert len(found) <= 3 and all(np.isfinite(s) for _, s in found)


# ---- seeds -------------------------------------------------------------------------------------

def _vectors(n=len(WORDS), d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _slack(n: int = 3000) -> dict:
    return {"pad": " " * n}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    from embedkit.subwords import CharNgrams
    from embedkit.vectors.formats import word2vec_bin, word2vec_text
    from embedkit.vectors.formats.native import save_native

    d = tmp_path_factory.mktemp("seeds")
    v = _vectors()
    word2vec_text.write(d / "s.vec", WORDS, v)
    word2vec_bin.write(d / "s.bin", WORDS, v)
    save_native(d / "s.ekv", WORDS, v, counts=np.arange(len(WORDS), 0, -1),
                subwords=CharNgrams(2, 3, 16).to_meta(), subword_rows=_vectors(16, 4, 1),
                input=v, output=v, settings=_slack())
    return d


def test_native_vectors_mutations(seeds, tmp_path_factory):
    data = (seeds / "s.ekv").read_bytes()
    where = tmp_path_factory.mktemp("ekv") / "m.ekv"

    @FUZZ
    @given(store_mutation(data))
    def run(mutant):
        where.write_bytes(mutant)
        _outcome("native .ekv", where, _use_vectors)

    run()
    assert FUZZ_COUNTS["native .ekv"]["other"] == 0


def test_word2vec_text_mutations(seeds, tmp_path_factory):
    data = (seeds / "s.vec").read_bytes()
    where = tmp_path_factory.mktemp("vec") / "m.vec"

    @FUZZ
    @given(text_mutation(data))
    def run(mutant):
        where.write_bytes(mutant)
        _outcome("word2vec text", where, _use_vectors)

    run()


def test_word2vec_binary_mutations(seeds, tmp_path_factory):
    data = (seeds / "s.bin").read_bytes()
    where = tmp_path_factory.mktemp("w2v") / "m.bin"

    @FUZZ
    @given(text_mutation(data))
    def run(mutant):
        where.write_bytes(mutant)
        _outcome("word2vec binary", where, _use_vectors)

    run()


@pytest.fixture(scope="module")
def fasttext_seed(tmp_path_factory):
    fasttext = pytest.importorskip("fasttext", reason="fasttext-wheel (test extra) not installed")
    d = tmp_path_factory.mktemp("ft")
    rng = np.random.default_rng(0)
    (d / "c.txt").write_text("\n".join(" ".join(rng.choice(WORDS, 8)) for _ in range(40)) + "\n",
                             encoding="utf-8")
    model = fasttext.train_unsupervised(str(d / "c.txt"), dim=3, epoch=1, minCount=1, bucket=20,
                                        minn=2, maxn=3, thread=1, verbose=0)
    model.save_model(str(d / "m.bin"))
    return (d / "m.bin").read_bytes()


def _fasttext_slots(data: bytes) -> list[tuple[int, int]]:
    """Integer fields of a v12 fastText file: magic, version, args, dictionary header, and the
    two matrix shapes (found by value)."""
    slots = [(0, 4), (4, 4)] + [(8 + 4 * i, 4) for i in range(12)]
    slots += [(64, 4), (68, 4), (72, 4), (76, 8), (84, 8)]
    nwords = struct.unpack_from("<i", data, 68)[0]
    dim, bucket = struct.unpack_from("<i", data, 8)[0], struct.unpack_from("<i", data, 40)[0]
    for rows in (nwords + bucket, nwords):
        at = data.find(struct.pack("<qq", rows, dim), 92)
        if at > 0:
            slots += [(at - 1, 1), (at, 8), (at + 8, 8)]
    return slots


def test_fasttext_bin_mutations(fasttext_seed, tmp_path_factory):
    slots = _fasttext_slots(fasttext_seed)
    assert len(slots) == 25  # both matrix headers found: the mutations reach them
    where = tmp_path_factory.mktemp("ftm") / "m.bin"

    @FUZZ
    @given(byte_mutation(fasttext_seed, slots))
    def run(mutant):
        where.write_bytes(mutant)
        _outcome("fastText .bin", where, _use_vectors)

    run()


@pytest.fixture(scope="module")
def tokdir(tmp_path_factory):
    """A GPT-2 style byte-level TOKDIR written by hand (256 byte symbols + 4 merges)."""
    from embedkit import BPETokenizer
    from embedkit.bpe.files import settings_for
    from embedkit.bpe.pretokenize import byte_alphabet

    d = tmp_path_factory.mktemp("tok") / "t"
    d.mkdir()
    tokens = byte_alphabet() + ["th", "the", "Ġc", "Ġca"]
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)},
                                             ensure_ascii=False), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\nt h\nth e\nĠ c\nĠc a\n", encoding="utf-8")
    (d / "embedkit.json").write_text(json.dumps(settings_for(True)), encoding="utf-8")
    tok = BPETokenizer.load(d)
    assert tok.encode("the cat")[:2] == [257, 259]
    return d, tok


def _use_tokdir(path) -> None:
    from embedkit import BPETokenizer

    tok = BPETokenizer.load(path)
    ids = tok.encode("the cat café zzqx")
    assert all(0 <= i < tok.vocab_size for i in ids)
    tok.decode(ids)


@st.composite
def settings_lie(draw, text: str) -> str:
    s = json.loads(text)
    s[draw(st.sampled_from(sorted(s) + ["extra"]))] = draw(st.sampled_from(
        LIES + ["(", "word", "byte-level", "[a-", ["x"], [""]]))
    return json.dumps(s)


def test_tokdir_mutations(tokdir, tmp_path_factory):
    src, _ = tokdir
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    assert set(files) >= {"vocab.json", "merges.txt", "embedkit.json"}
    where = tmp_path_factory.mktemp("tokm")

    @FUZZ
    @given(st.sampled_from(sorted(files)), st.data())
    def run(name, data):
        if name == "embedkit.json" and data.draw(st.booleans()):
            mutant = data.draw(settings_lie(files[name].decode())).encode()
        else:
            mutant = data.draw(byte_mutation(files[name]))
        for n, b in files.items():
            (where / n).write_bytes(mutant if n == name else b)
        _outcome("TOKDIR", where, _use_tokdir)

    run()


@pytest.fixture(scope="module")
def encoder_seed(tokdir, tmp_path_factory):
    from embedkit.encoder import checkpoint
    from embedkit.encoder.network import init_params
    from embedkit.encoder.vocab import PieceVocab

    _, tok = tokdir
    vocab = PieceVocab(tok)
    cfg = {"vocab": vocab.size, "dim": 4, "heads": 2, "layers": 1, "ffn": 8, "max_len": 8,
           "positions": "learned", "objective": "mlm"}
    d = tmp_path_factory.mktemp("enc")
    params = init_params(cfg, np.random.default_rng(0))
    meta = {"config": cfg, "special": vocab.special, "tokenizer": dict(tok.to_files()),
            "train": {}, "pad": " " * 3000}  # checkpoint.save's layout, with slack
    write_store(d / checkpoint.FILE, checkpoint.KIND, meta, {"p." + k: v for k, v in params.items()})
    return (d / checkpoint.FILE).read_bytes()


def _use_encoder(encdir) -> None:
    from embedkit.encoder.model import Encoder

    enc = Encoder.load(encdir)
    out = enc.embed(["the cat zzqx"], pool="mean")
    assert np.isfinite(np.asarray(out)).all()


@st.composite
def encoder_mutation(draw, data: bytes) -> bytes:
    if draw(st.integers(0, 2)) == 0:
        return draw(byte_mutation(data, [(12, 4), (16, 8)]))
    header, _ = _json_header(data)
    meta = header["meta"]
    where = draw(st.sampled_from(["config", "config", "arrays", "special", "train", "tokenizer"]))
    if where == "config":
        meta["config"][draw(st.sampled_from(sorted(meta["config"]) + ["projection"]))] = \
            draw(st.sampled_from(LIES + [3, 7, "clm", "learned"]))
    elif where == "arrays":
        spec = header["arrays"][draw(st.sampled_from(sorted(header["arrays"])))]
        spec[draw(st.sampled_from(["dtype", "shape", "offset"]))] = draw(st.sampled_from(
            LIES + ["<f8", "<i4", [4], spec["shape"][::-1], [1 << 40, 4]]))
    elif where == "special":
        meta["special"] = draw(st.sampled_from([{"[PAD]": -1}, {"[PAD]": 1 << 40}, [], None,
                                                {k: 1.5 for k in meta["special"]}]))
    elif where == "train":
        meta["train"] = draw(st.sampled_from(LIES + [{"step": -1, "total_steps": 3},
                                                     {"step": 2, "total_steps": 1, "rng": {}}]))
    else:
        name = draw(st.sampled_from(sorted(meta["tokenizer"])))
        meta["tokenizer"][name] = draw(st.sampled_from(LIES + ["", "{}", meta["tokenizer"][name][:50]]))
    return _with_header(data, header)


def test_encoder_checkpoint_mutations(encoder_seed, tmp_path_factory):
    from embedkit.encoder import checkpoint

    where = tmp_path_factory.mktemp("encm")
    (where / checkpoint.FILE).write_bytes(encoder_seed)
    _use_encoder(where)  # the seed itself loads

    @FUZZ
    @given(encoder_mutation(encoder_seed))
    def run(mutant):
        (where / checkpoint.FILE).write_bytes(mutant)
        _outcome("encoder checkpoint", where, _use_encoder)

    run()


# ---- the tokenizer files, the counts file and classifier models ---------------------------------

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
    return out


def _use_tokenizer_file(kind):
    def use(path):
        from embedkit import BPETokenizer

        tok = BPETokenizer.load(path, pattern="gpt2" if kind == "tiktoken" else None)
        ids = tok.encode("the cat café zzqx")
        assert all(0 <= i < tok.vocab_size for i in ids)
        tok.decode(ids)
    return use


def _use_counts(path):
    from embedkit.bpe.formats import wordcounts

    counts, _ = wordcounts.load(path)
    assert all(isinstance(c, int) and c > 0 for c in counts.values())


def _use_classifier(path):
    from embedkit.classify.model import load_model

    m = load_model(path)
    p = m.predict_proba([["the", "cat"], ["unseen"]])
    assert p.shape == (2, len(m.labels)) and np.isfinite(p).all()


@pytest.mark.parametrize("kind", ["tokenizer.json", "tiktoken", "sentencepiece", "counts",
                                  "classifier"])
def test_tokenizer_counts_and_classifier_mutations(kind, tokenizer_files, tmp_path_factory):
    if kind not in tokenizer_files:
        pytest.skip("sentencepiece is not installed (test extra)")
    seed = tokenizer_files[kind].read_bytes()
    use = {"counts": _use_counts, "classifier": _use_classifier}.get(kind) \
        or _use_tokenizer_file(kind)
    where = tmp_path_factory.mktemp("m") / tokenizer_files[kind].name
    mutate = store_mutation if kind == "classifier" else byte_mutation
    use(tokenizer_files[kind])  # the seed itself loads

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        where.write_bytes(data.draw(mutate(seed)))
        _outcome(kind, where, use)

    run()


@pytest.fixture(scope="module")
def bag_seed(tmp_path_factory):
    """A vectors model with ``--bpe-bag all`` subwords: its meta holds the kept n-gram rows."""
    import embedkit
    from embedkit import BPETokenizer

    d = tmp_path_factory.mktemp("bag")
    lines = TOKENIZER_TEXT * 20
    BPETokenizer.train(lines, 290).save(d / "tok")
    v = embedkit.train(lines, dim=4, epochs=1, min_count=1, subwords="bpe", tokenizer=d / "tok",
                       bpe_bag="all", threads=1)
    v.save_native(d / "m0.ekv")
    meta, arrays = read_store(d / "m0.ekv", mmap=False)
    write_store(d / "m.ekv", "vectors", dict(meta, **_slack()), arrays)
    return d / "m.ekv"


@st.composite
def bag_mutation(draw, data: bytes) -> bytes:
    """``store_mutation``, or the kept-rows list lying (reordered, cut, out of range, junk)."""
    if draw(st.booleans()):
        return draw(store_mutation(data))
    header, _ = _json_header(data)
    sub = header["meta"]["subwords"]
    rows = sub["rows"]
    sub["rows"] = draw(st.sampled_from(
        [rows[::-1], rows[:-1], rows + [rows[-1] + 1], rows[:1] * len(rows), [-1] + rows[1:],
         rows[:-1] + [1 << 40], [1.5] + rows[1:], ["x"], {}, None, 3, []]))
    return _with_header(data, header)


def test_bpe_bag_vectors_mutations(bag_seed, tmp_path_factory):
    data = bag_seed.read_bytes()
    where = tmp_path_factory.mktemp("bagm") / "m.ekv"
    _use_vectors(bag_seed)

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data_):
        where.write_bytes(data_.draw(bag_mutation(data)))
        _outcome("native .ekv with BPE bags", where, _use_vectors)

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


def test_every_reader_was_fuzzed_and_never_crashed():
    """Runs last in this module: the tally the README reports (run the module to see it)."""
    if len(FUZZ_COUNTS) < 10:
        pytest.skip("run the whole module for the tally")
    for reader, c in sorted(FUZZ_COUNTS.items()):
        print(f"{reader}: {sum(c.values())} mutated files, {c['loaded']} loaded, "
              f"{c['clean error']} clean errors, {c['other']} other")
        assert c["other"] == 0 and sum(c.values()) >= min(EXAMPLES, 120)
        assert c["clean error"] > 0


# ---- kernels under NUMBA_BOUNDSCHECK -------------------------------------------------------------

BOUNDSCHECK_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from embedkit.errors import InputError
    from embedkit.vectors.formats import word2vec_text
    from embedkit.vectors.model import UnknownWordError, load

    word2vec_text._KERNEL_MIN_BYTES = 0   # the Numba line parser on every text file
    ok = err = 0
    for path in sys.argv[1:]:
        try:
            v = load(path)
            v[v.words[0]]
            try:
                v["zzqx-not-a-word"]
            except UnknownWordError:
                pass
            queries = [v.words[i % len(v)] for i in range(300)]  # >= 256: the top-k kernel
            v.most_similar_many(queries, k=3)
            ok += 1
        except InputError:
            err += 1
    print(ok, err)
""")


def test_kernels_stay_in_bounds_on_mutated_files(seeds, fasttext_seed, tmp_path):
    """The Numba kernels that index loaded arrays (text parser, fastText n-gram bags, top-k)
    run with NUMBA_BOUNDSCHECK=1 over mutated files: an out-of-bounds index would raise
    IndexError instead of reading garbage. A private cache keeps these builds out of the
    package's cache."""
    rng = np.random.default_rng(3)
    paths = []
    slots = _fasttext_slots(fasttext_seed)
    for i in range(25):
        data = bytearray(fasttext_seed)
        pos, width = slots[i % len(slots)]
        data = _put(bytes(data), pos, NUMBERS[i % len(NUMBERS)], width)
        if i % 3 == 0:
            j = int(rng.integers(0, len(data)))
            data = data[:j] + bytes([data[j] ^ 0x5A]) + data[j + 1:]
        paths.append(tmp_path / f"f{i}.bin")
        paths[-1].write_bytes(data)
    paths.append(tmp_path / "seed.bin")
    paths[-1].write_bytes(fasttext_seed)
    text = (seeds / "s.vec").read_bytes()
    for i, junk in enumerate(JUNK):
        j = int(rng.integers(0, len(text)))
        paths.append(tmp_path / f"t{i}.vec")
        paths[-1].write_bytes(text[:j] + junk + text[j:])
    paths.append(tmp_path / "seed.vec")
    paths[-1].write_bytes(text)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    run = subprocess.run([sys.executable, "-c", BOUNDSCHECK_SCRIPT, *map(str, paths)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ok, err = map(int, run.stdout.split())
    assert ok + err == len(paths) and ok >= 2  # at least both seeds loaded
