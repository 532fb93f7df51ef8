"""Files from the wild: words that are not UTF-8, duplicate words, words with spaces (GloVe
840B), headers that lie about the size, and the real files gensim ships as test data."""
from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from embedkit.errors import InputError, UsageError
from embedkit.vectors.formats import word2vec_text
from embedkit.vectors.model import load


def _gensim_data() -> Path:
    gensim = pytest.importorskip("gensim", reason="gensim (test extra) not installed")
    d = Path(gensim.__file__).parent / "test" / "test_data"
    if not d.is_dir():
        pytest.skip("gensim's test data is not installed")
    return d


@pytest.fixture(params=["fromstring", "numba"])
def parser(request, monkeypatch):
    """Each text test with the small-file parser and again with the Numba one of big files."""
    if request.param == "numba":
        monkeypatch.setattr(word2vec_text, "_KERNEL_MIN_BYTES", 0)
    return request.param


def _word_column(data: bytes) -> list[bytes]:
    return [line.split(b" ", 1)[0] for line in data.split(b"\n")[1:] if line]


# ---- invalid UTF-8 ------------------------------------------------------------------------------

BAD = b"2 2\ncaf\xe9 1 2\nok 3 4\n"


def test_invalid_utf8_words_are_kept_byte_exact_by_default(tmp_path, parser):
    (tmp_path / "a.vec").write_bytes(BAD)
    v = load(tmp_path / "a.vec")
    assert v.words == ["caf\udce9", "ok"] and v.load_counts["bad_utf8"] == 1
    assert v.load_warning == f"{tmp_path / 'a.vec'}: 1 word not valid UTF-8 (kept byte-exact, " \
                             f"shown with U+FFFD)"
    assert np.array_equal(v["caf\udce9"], [1, 2])
    for fmt, name in (("vec", "b.vec"), ("w2v-bin", "b.bin"), ("native", "b.ekv")):
        v.save(tmp_path / name, format=fmt)
        again = load(tmp_path / name)
        assert again.words == v.words and np.array_equal(again.vectors, v.vectors)
    assert _word_column((tmp_path / "b.vec").read_bytes()) == [b"caf\xe9", b"ok"]
    assert (tmp_path / "b.bin").read_bytes().split(b"\n")[1].startswith(b"caf\xe9 ")


def test_replace_and_strict(tmp_path, parser):
    (tmp_path / "a.vec").write_bytes(BAD)
    assert load(tmp_path / "a.vec", unicode_errors="replace").words == ["caf\ufffd", "ok"]
    with pytest.raises(InputError, match=r"a.vec:2: word is not valid UTF-8 \(byte 4"):
        load(tmp_path / "a.vec", unicode_errors="strict")
    with pytest.raises(UsageError, match="unicode_errors must be one of"):
        load(tmp_path / "a.vec", unicode_errors="ignore")


def test_binary_reader_keeps_invalid_words(tmp_path):
    data = b"2 2\n" + b"\xff\xfe " + np.array([1, 2], "<f4").tobytes() + b"\nb " + \
        np.array([3, 4], "<f4").tobytes() + b"\n"
    (tmp_path / "a.bin").write_bytes(data)
    v = load(tmp_path / "a.bin")
    assert v.words == ["\udcff\udcfe", "b"] and v.load_counts["bad_utf8"] == 1
    v.save(tmp_path / "b.bin", format="w2v-bin")
    assert (tmp_path / "b.bin").read_bytes() == data
    with pytest.raises(InputError, match="entry 1"):
        load(tmp_path / "a.bin", unicode_errors="strict")


# ---- duplicates and words with spaces --------------------------------------------------------------

def test_duplicate_words_keep_the_first(tmp_path, parser):
    (tmp_path / "d.vec").write_bytes(b"4 2\na 1 2\nb 3 4\na 5 6\nb 7 8\n")
    v = load(tmp_path / "d.vec")
    assert v.words == ["a", "b"] and v.vectors.tolist() == [[1, 2], [3, 4]]
    assert v.load_counts == {"bad_utf8": 0, "duplicates": 2, "joined": 0}
    assert "2 duplicate words (the first of each kept)" in v.load_warning
    with pytest.raises(InputError, match=r"d.vec:4: duplicate word 'a' .*first seen at line 2"):
        load(tmp_path / "d.vec", strict=True)


def test_words_with_spaces_take_the_leading_fields(tmp_path, parser):
    (tmp_path / "g.vec").write_bytes(b"3 3\n. . . 1 2 3\nat name@domain.com 4 5 6\nx 7 8 9\n")
    v = load(tmp_path / "g.vec")
    assert v.words == [". . .", "at name@domain.com", "x"]
    assert v.vectors.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert v.load_counts["joined"] == 2 and "2 lines with more than D+1 fields" in v.load_warning
    with pytest.raises(InputError, match="g.vec:2: expected 3 values after the word, found 5"):
        load(tmp_path / "g.vec", strict=True)
    (tmp_path / "n.vec").write_bytes(b"x 1 2\na b 3 4\n")  # no header: D from the first line
    assert load(tmp_path / "n.vec").words == ["x", "a b"]
    (tmp_path / "h.vec").write_bytes(b"2 2\na 1 2\nb 3\n")
    with pytest.raises(InputError, match="h.vec:3: expected 2 values after the word, found 1"):
        load(tmp_path / "h.vec")


# ---- streaming and lying headers ------------------------------------------------------------------

def test_blocks_give_the_same_vectors_as_one_read(tmp_path, parser, monkeypatch):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(200)]
    vec = rng.standard_normal((200, 7)).astype(np.float32)
    word2vec_text.write(tmp_path / "s.vec", words, vec)
    text = (tmp_path / "s.vec").read_bytes().replace(b"\n", b" \r\n")  # word2vec.c + CRLF
    (tmp_path / "s.vec").write_bytes(b"\xef\xbb\xbf" + text + b"\n\n  \n")
    whole = word2vec_text.read(tmp_path / "s.vec")
    monkeypatch.setattr(word2vec_text, "_BLOCK", 97)  # many blocks, lines cut across reads
    blocks = word2vec_text.read(tmp_path / "s.vec")
    assert blocks[0] == whole[0] == words and np.array_equal(blocks[1], vec)
    assert np.array_equal(whole[1], vec)
    w, v = word2vec_text.read(tmp_path / "s.vec", limit=33)
    assert w == words[:33] and np.array_equal(v, vec[:33])


def test_a_header_claiming_a_billion_rows_is_refused_before_allocating(tmp_path, monkeypatch):
    (tmp_path / "big.vec").write_bytes(b"1000000000 300\n" + b"a " + b"0 " * 299 + b"1\n")
    tracemalloc.start()
    with pytest.raises(InputError, match="truncated: the header says 1000000000 vectors but the "
                                         "file has 1"):
        load(tmp_path / "big.vec")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # the matrix is sized by the lines counted, never by the header
    monkeypatch.setattr(word2vec_text, "_BLOCK", 16)  # a "big" file: refused before counting
    monkeypatch.setattr(word2vec_text, "_count_lines", None)
    with pytest.raises(InputError, match="big.vec:1: the header says 1000000000 vectors of "
                                         "dimension 300, more than the file's 617 bytes can hold"):
        load(tmp_path / "big.vec")


# ---- the command line -----------------------------------------------------------------------------

def _embedkit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedkit", *args], capture_output=True,
                          timeout=120, env=dict(os.environ, PYTHONIOENCODING="utf-8"))


def test_cli_warns_once_and_prints_undecodable_words_as_replacement_chars(tmp_path):
    (tmp_path / "a.vec").write_bytes(b"3 2\ncaf\xe9 1 2\nok 3 4\nok 1 1\n")
    run = _embedkit("vectors", str(tmp_path / "a.vec"), "ok")
    assert run.returncode == 0 and run.stdout == b"ok 3 4\n"
    assert run.stderr.decode().splitlines() == [
        f"embedkit: warning: {tmp_path / 'a.vec'}: 1 word not valid UTF-8 (kept byte-exact, "
        f"shown with U+FFFD); 1 duplicate word (the first of each kept)"]
    run = _embedkit("nn", str(tmp_path / "a.vec"), "ok", "-k", "1", "-q")
    assert run.returncode == 0 and run.stderr == b""
    assert run.stdout == "caf\ufffd\t0.983870\n".encode()
    run = _embedkit("vectors", "--unicode-errors", "strict", str(tmp_path / "a.vec"), "ok")
    assert run.returncode == 2 and run.stderr.count(b"\n") == 1 and b"a.vec:2:" in run.stderr
    run = _embedkit("nn", "--strict", str(tmp_path / "a.vec"), "ok")
    assert run.returncode == 2 and b"a.vec:4: duplicate word 'ok'" in run.stderr
    run = _embedkit("convert", str(tmp_path / "a.vec"), str(tmp_path / "b.vec"), "-q")
    assert run.returncode == 0
    assert _word_column((tmp_path / "b.vec").read_bytes()) == [b"caf\xe9", b"ok"]


# ---- real files -----------------------------------------------------------------------------------

def test_gensims_pang_lee_vec_loads_and_matches_gensim():
    from gensim.models import KeyedVectors

    path = _gensim_data() / "pang_lee_polarity_fasttext.vec"
    v = load(path)
    assert len(v) == 1694 and v.dim == 100 and v.load_counts["bad_utf8"] == 5
    kv = KeyedVectors.load_word2vec_format(str(path), unicode_errors="replace")
    replaced = load(path, unicode_errors="replace")
    assert replaced.words == list(kv.index_to_key)
    assert np.array_equal(replaced.vectors, kv.vectors)
    bad = [w for w in v.words if w != w.encode("utf-8", "surrogateescape").decode("utf-8", "replace")]
    assert len(bad) == 5 and "\udc97" in bad


def test_pang_lee_words_survive_conversion_byte_for_byte(tmp_path):
    path = _gensim_data() / "pang_lee_polarity_fasttext.vec"
    original = _word_column(path.read_bytes())
    load(path).save(tmp_path / "p.ekv")
    load(tmp_path / "p.ekv").save(tmp_path / "p.vec", format="vec")
    assert _word_column((tmp_path / "p.vec").read_bytes()) == original
    assert np.array_equal(load(tmp_path / "p.vec").vectors, load(path).vectors)


REAL = [  # (file, words, dim, words that are not UTF-8)
    ("lee_fasttext.vec", 1762, 10, 0), ("lee_fasttext.bin", 1762, 10, 0),
    ("lee_fasttext_new.bin", 1763, 10, 0), ("non_ascii_fasttext.bin", 171, 2, 0),
    ("cp852_fasttext.bin", 171, 2, 69), ("crime-and-punishment.bin", 291, 5, 0),
    ("crime-and-punishment.vec", 291, 5, 0), ("toy-model.bin", 22, 5, 0),
    ("toy-model.vec", 22, 5, 0), ("euclidean_vectors.bin", 2747, 10, 0),
    ("poincare_vectors.bin", 1182, 10, 0), ("high_precision.kv.txt", 2, 2, 0),
    ("test_glove.txt", 76, 50, 0), ("EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt", 20, 300, 0),
]


@pytest.mark.parametrize("name,n,dim,bad", REAL)
def test_gensims_test_files_open(name, n, dim, bad):
    path = _gensim_data() / name
    if not path.exists():
        pytest.skip(f"{name} not in this gensim's test data")
    v = load(path)
    assert (len(v), v.dim, v.load_counts["bad_utf8"]) == (n, dim, bad)
    assert np.isfinite(v[v.words[-1]]).all() and v.most_similar(v.words[0], k=1)


# ---- embedkit's own files, lying ------------------------------------------------------------------

def _lying_ekv(tmp_path, lie) -> Path:
    """A valid .ekv (char subwords, counts, input/output rows) whose JSON header ``lie`` edits."""
    import json

    from embedkit.store import _PREFIX
    from embedkit.subwords import CharNgrams
    from embedkit.vectors.formats.native import save_native

    v = np.eye(3, 4, dtype=np.float32)
    path = tmp_path / "m.ekv"
    save_native(path, ["a", "b", "c"], v, counts=np.array([3, 2, 1]), input=v, output=v,
                subwords=CharNgrams(2, 3, 8).to_meta(), subword_rows=np.ones((8, 4), np.float32),
                settings={"pad": " " * 500})
    data = path.read_bytes()
    head_len = _PREFIX.unpack_from(data)[3]
    header = json.loads(data[_PREFIX.size:_PREFIX.size + head_len])
    del header["meta"]["settings"]["pad"]
    lie(header)
    text = json.dumps(header).encode().ljust(head_len)
    path.write_bytes(data[:_PREFIX.size] + text + data[_PREFIX.size + head_len:])
    return path


def _set(*keys_value):
    *keys, value = keys_value

    def lie(header):
        d = header
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value
    return lie


LIES = [  # the hand-made lies of issue 13, each once
    (_set("arrays", "vectors", "offset", -64), "array 'vectors': offset -64 is not a position"),
    (_set("arrays", "subword_rows", "shape", [4, 4]),
     "meta 'subwords' buckets=8 but 'subword_rows' has 4 rows"),
    (_set("arrays", "subword_rows", "shape", [4, 8]), "array 'subword_rows' is float32 [4, 8], "
                                                      "expected float32 [N, 4]"),
    (_set("meta", []), "field 'meta' is not an object"),
    (_set("arrays", "vectors", "dtype", "<i4"), "array 'vectors' is int32 [3, 4], expected float32"),
    (_set("arrays", "vectors", "dtype", "<f8"), "arrays 'vectors' and 'counts' overlap"),
    (_set("meta", "dim", 5), "meta 'dim' 5 disagrees with the vectors' 4 columns"),
    (_set("arrays", "counts", "dtype", "<f8"), "array 'counts' must be 3 integers, is float64 [3]"),
    (_set("arrays", "output", "offset", lambda o: o - 32), "arrays 'input' and 'output' overlap"),
    (_set("arrays", "vectors", "shape", [1 << 63, 4]), "array 'vectors' runs past the end"),
    (_set("meta", "subwords", "maxn", 1 << 31), "n-gram lengths minn=2 maxn=2147483648"),
    (_set("meta", "subwords", "kind", "wordpiece"), "meta 'subwords' has unknown kind"),
    (_set("meta", "words", ["a", "b", 3]), "meta 'words' is not a list of strings"),
    (_set("meta", "words", ["a", "b"]), "array 'vectors' is float32 [3, 4], expected float32 [2, D]"),
    (_set("arrays", "vectors", "dtype", ">f4"), "dtype '>f4' is not one of"),
]


@pytest.mark.parametrize("lie,problem", LIES)
def test_native_header_lies_are_one_line_errors_naming_the_field(tmp_path, lie, problem):
    path = _lying_ekv(tmp_path, lambda h: None)
    assert load(path).words == ["a", "b", "c"]  # the untouched file loads
    path = _lying_ekv(tmp_path, lie)
    with pytest.raises(InputError) as e:
        load(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert problem in str(e.value)


def test_a_repeated_word_in_a_native_file_is_refused_at_first_lookup(tmp_path):
    path = _lying_ekv(tmp_path, _set("meta", "words", ["a", "b", "a"]))
    v = load(path)
    with pytest.raises(InputError, match="the word 'a' is in the vocabulary twice"):
        v["b"]


@pytest.fixture
def encdir(tmp_path):
    """A tiny encoder checkpoint with a hand-written byte-level tokenizer (256 symbols)."""
    import json

    from embedkit import BPETokenizer
    from embedkit.bpe.files import settings_for
    from embedkit.bpe.pretokenize import byte_alphabet
    from embedkit.encoder.network import init_params
    from embedkit.encoder.vocab import PieceVocab

    files = {"vocab.json": json.dumps({t: i for i, t in enumerate(byte_alphabet())}),
             "merges.txt": "#version: 0.2\n", "embedkit.json": json.dumps(settings_for(True))}
    vocab = PieceVocab(BPETokenizer.from_files(files))
    cfg = {"vocab": vocab.size, "dim": 4, "heads": 2, "layers": 1, "ffn": 8, "max_len": 8,
           "positions": "learned", "objective": "mlm"}
    params = init_params(cfg, np.random.default_rng(0))
    return tmp_path, cfg, params, files, vocab.special


CHECKPOINT_LIES = [
    (lambda cfg, p, sp: cfg.update(heads=3), "meta 'config': --heads 3 does not divide --dim 4"),
    (lambda cfg, p, sp: cfg.update(layers=1 << 31), "config 'layers' is 2147483648, not an integer"),
    (lambda cfg, p, sp: cfg.update(dim="4"), "config 'dim' is '4', not an integer"),
    (lambda cfg, p, sp: p.update(wte=p["wte"].astype(np.float64)), "parameter 'wte' missing or of "
                                                                   "the wrong shape"),
    (lambda cfg, p, sp: sp.update({"[MASK]": 10 ** 6}), "meta 'special' is not an object of piece ids"),
]


@pytest.mark.parametrize("lie,problem", CHECKPOINT_LIES)
def test_encoder_checkpoint_lies_are_one_line_errors(encdir, lie, problem):
    from embedkit.encoder import checkpoint
    from embedkit.encoder.model import Encoder

    d, cfg, params, files, special = encdir
    checkpoint.save(d, cfg, params, files, special)
    assert Encoder.load(d).dim == 4
    cfg, params, special = dict(cfg), dict(params), dict(special)
    lie(cfg, params, special)
    checkpoint.save(d, cfg, params, files, special)
    with pytest.raises(InputError) as e:
        Encoder.load(d)
    assert str(e.value).startswith(str(d / checkpoint.FILE)) and problem in str(e.value)


@pytest.mark.parametrize("field,value,problem", [
    ("lowercase", "yes", "field 'lowercase' must be true or false"),
    ("pattern", "(unclosed", "field 'pattern' is not a valid regular expression"),
    ("version", 1.5, "field 'version' must be an integer"),
    ("special_tokens", "x", "special_tokens must be a list"),
])
def test_tokdir_settings_lies_name_the_field(tmp_path, field, value, problem):
    import json

    from embedkit import BPETokenizer
    from embedkit.bpe.files import settings_for
    from embedkit.bpe.pretokenize import byte_alphabet

    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(byte_alphabet())}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    settings = dict(settings_for(True), **{field: value})
    (tmp_path / "embedkit.json").write_text(json.dumps(settings))
    with pytest.raises(InputError, match="embedkit.json: " + problem.replace("(", r"\(")):
        BPETokenizer.load(tmp_path)
