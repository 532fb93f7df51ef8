"""Every reader, fed a few hundred mutations of a small valid file, either loads it (finite
vectors; an in-vocabulary and an out-of-vocabulary lookup and a top-k search work) or raises
``InputError``: no other exception, no silent garbage.

Mutations: byte flips, truncation, inserted junk, header numbers set to 0 / -1 / 2^31 / 2^63,
and (for embedkit's own files, whose header is JSON) dtype, shape, offset and meta lies.
Hypothesis runs derandomized, so CI sees the same files every run. ``FUZZ_COUNTS`` records how
each file ended (the README's "Errors and interrupts" figures come from it).
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, strategies as st

from embedkit.store import write_store
from fuzzing import (EXAMPLES, FUZZ, FUZZ_COUNTS, JUNK, LIES, NUMBERS, WORDS, _json_header, _outcome,
                     _put, _slack, _use_vectors, _with_header, byte_mutation, store_mutation,
                     text_mutation)

def _vectors(n=len(WORDS), d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


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

def test_every_reader_was_fuzzed_and_never_crashed():
    """Runs last in this module: the tally the README reports (run the module to see it)."""
    if "classifier" not in FUZZ_COUNTS or "native .ekv" not in FUZZ_COUNTS:
        pytest.skip("run both fuzz modules (test_fuzz_files, test_fuzz_readers) for the tally")
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
