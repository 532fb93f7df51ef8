"""Readers and writers: round trips, parity with gensim and fastText, and every bad input named."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from embedkit.errors import InputError
from embedkit.vectors.formats import word2vec_bin, word2vec_text
from embedkit.vectors.formats.detect import detect
from embedkit.vectors.model import load

WORDS = ["the", "of", "héllo", "日本", "a\tb", "x"]


def _vecs(n=len(WORDS), d=4, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, d)) * 0.3).astype(np.float32)


def test_vec_round_trip_is_exact(tmp_path, parser):
    v = _vecs()
    word2vec_text.write(tmp_path / "a.vec", WORDS, v)
    text = (tmp_path / "a.vec").read_text("utf-8")
    assert text.splitlines()[0] == "6 4"
    assert not any(line.endswith(" ") for line in text.splitlines())
    words, got = word2vec_text.read(tmp_path / "a.vec")
    assert words == WORDS
    assert np.array_equal(got, v)


def test_vec_variants_trailing_space_crlf_bom_no_header(tmp_path, parser):
    body = "the 0.5 -1 \r\nof 1e-3 2.25 \r\n"
    for name, text in (("h", "2 2\r\n" + body), ("bom", "\ufeff2 2\n" + body), ("nohead", body)):
        (tmp_path / name).write_bytes(text.encode("utf-8"))
        words, v = word2vec_text.read(tmp_path / name)
        assert words == ["the", "of"]
        assert v.tolist() == [[0.5, -1.0], [float(np.float32(1e-3)), 2.25]]


def test_w2v_bin_round_trip_and_both_writer_styles(tmp_path):
    v = _vecs()
    words = [w for w in WORDS if "\t" not in w]
    v = v[:len(words)]
    word2vec_bin.write(tmp_path / "a.bin", words, v)
    w2, got = word2vec_bin.read(tmp_path / "a.bin")
    assert w2 == words and np.array_equal(got, v)
    # gensim style: no newline after each vector
    raw = b"%d 4\n" % len(words) + b"".join(w.encode() + b" " + r.tobytes() for w, r in zip(words, v))
    (tmp_path / "g.bin").write_bytes(raw)
    assert detect(tmp_path / "g.bin") == "w2v-bin"
    w3, got3 = word2vec_bin.read(tmp_path / "g.bin")
    assert w3 == words and np.array_equal(got3, v)


def test_gensim_reads_ours_and_we_read_gensims(tmp_path):
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    v = _vecs(5, 7)
    words = ["the", "of", "héllo", "日本", "x"]
    word2vec_text.write(tmp_path / "e.vec", words, v)
    word2vec_bin.write(tmp_path / "e.bin", words, v)
    for name, binary in (("e.vec", False), ("e.bin", True)):
        kv = KeyedVectors.load_word2vec_format(tmp_path / name, binary=binary)
        assert kv.index_to_key == words and np.array_equal(kv.vectors, v)
    kv = KeyedVectors(7)
    kv.add_vectors(words, v)
    kv.save_word2vec_format(str(tmp_path / "g.vec"))
    kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
    kv.save_word2vec_format(str(tmp_path / "n.txt"), write_header=False)
    for name in ("g.vec", "g.bin", "n.txt"):
        got = load(tmp_path / name)
        assert got.words == words and np.array_equal(np.asarray(got.vectors), v)


def test_detect_by_content_not_extension(tmp_path):
    v = _vecs(3, 4)
    word2vec_bin.write(tmp_path / "x.vec", ["a", "b", "c"], v)
    word2vec_text.write(tmp_path / "x.bin", ["a", "b", "c"], v)
    load(tmp_path / "x.vec").save(tmp_path / "x.txt", format="native")
    assert detect(tmp_path / "x.vec") == "w2v-bin"
    assert detect(tmp_path / "x.bin") == "vec"
    assert detect(tmp_path / "x.txt") == "native"
    assert np.array_equal(np.asarray(load(tmp_path / "x.txt").vectors), v)


BAD_TEXT = [
    ("3 2\na 1 2\nb 3 4\n", "truncated: the header says 3 vectors but the file has 2", 1),
    ("1 2\na 1 2\nb 3 4\n", "the header says 1 vectors but the file has 2", 1),
    ("2 3\na 1 2\nb 3 4\n", "expected 3 values after the word, found 2", 2),
    ("2 2\na 1 2\nb 3 x\n", "not a number: 'x'", 3),
    ("2 2\na 1 2\nb nan 4\n", "non-finite value (NaN or inf) in the vector of 'b'", 3),
    ("2 2\na 1 2\na 3 4\n", "duplicate word 'a' (first seen at line 2)", 3),
    ("0 300\n", "empty model", 1),
    ("a 1 2\nb 1\n", "expected 2 values after the word, found 1", 2),
    ("2 2\na 1 2\n\nb 3 4\n", "the header says 2 vectors but the file has 3", 1),
    ("2 2\n\xff 1 2\nb 3 4\n", None, None),
    ("2 2\n", "truncated: the header says 2 vectors but the file has 0", 1),
    ("2 2", "truncated: the header says 2 vectors but the file has 0", 1),
    ("2 99999999\na 1\nb 2\n", "implausible dimension 99999999", 1),
    ("2 2\na 1 2\nb 3 4 5\n", "expected 2 values after the word, found 3", 3),
    ("2 2\na 1 2\nb 3e 4\n", "not a number: '3e'", 3),
]


def test_parsers_agree_exactly_with_strtod(tmp_path, parser):
    rng = np.random.default_rng(5)
    vals = (rng.standard_normal(3000) * np.repeat([0.3, 1e-8, 1e8], 1000)).astype(np.float32)
    formats = ["%.9g", "%.6f", "%r", "%.17g", "%.3e", "%g", "%.5g", "%+.2f"]
    toks = [formats[i % len(formats)] % x for i, x in enumerate(vals.tolist())]
    toks[:8] = ["0", "-0", "1.", ".5", "+3", "1E5", "123456789012345678901234", "1e-50"]
    rows = [toks[i:i + 6] for i in range(0, len(toks), 6)]
    text = "".join(f"w{i}\t {' '.join(r)} \r\n" for i, r in enumerate(rows))
    (tmp_path / "v.vec").write_text(f"{len(rows)} 6\n" + text)
    words, got = word2vec_text.read(tmp_path / "v.vec")
    assert words == [f"w{i}\t" for i in range(len(rows))]
    want = np.array([[np.float32(float(t)) for t in r] for r in rows])
    assert np.array_equal(got, want)
    assert np.signbit(got[0, 1])


@pytest.fixture(params=["fromstring", "numba"])
def parser(request, monkeypatch):
    """Run a test with the small-file parser and again with the Numba parser of big files."""
    if request.param == "numba":
        monkeypatch.setattr(word2vec_text, "_KERNEL_MIN_BYTES", 0)
    return request.param


@pytest.mark.parametrize("text,problem,line", BAD_TEXT)
def test_bad_text_files_give_one_line_errors(tmp_path, text, problem, line, parser):
    p = tmp_path / "bad.vec"
    p.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    with pytest.raises(InputError) as e:
        load(p, unicode_errors="strict", strict=True)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(p))
    if problem is None:
        assert "not valid UTF-8" in msg and e.value.line == 2
    else:
        assert problem in msg and e.value.line == line


def test_bad_files_of_any_kind(tmp_path):
    cases = {
        "empty": b"",
        "blank": b"\n\n",
        "foreign": bytes(range(256)) * 4,
        "gz": gzip.compress(b"2 2\na 1 2\nb 3 4\n"),
        "bigendian": struct.pack(">2i", 793712314, 12) + b"\0" * 200,
        "truncbin": b"2 4\na " + np.ones(4, "<f4").tobytes() + b"b " + b"\0" * 5,
        "liedim": b"2 3\na " + np.ones(4, "<f4").tobytes() + b"\nb " + np.ones(4, "<f4").tobytes(),
        "swapped": b"1 4\na " + np.full(4, 0.1, ">f4").tobytes() + b"\n",
    }
    expect = {"empty": "empty model", "blank": "empty model", "foreign": "unrecognised vector file",
              "gz": "gzip-compressed", "bigendian": "big-endian fastText",
              "truncbin": "truncated", "liedim": "header", "swapped": "byte-swapped"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as e:
            load(tmp_path / name)
        assert expect[name] in str(e.value), (name, str(e.value))
    with pytest.raises(InputError, match="is a folder"):
        load(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.vec")


def test_writers_refuse_words_with_spaces(tmp_path):
    from embedkit.errors import UsageError

    with pytest.raises(UsageError, match="whitespace"):
        word2vec_text.write(tmp_path / "a.vec", ["a b"], np.zeros((1, 2)))
    assert not (tmp_path / "a.vec").exists()


def test_writer_uses_shortest_round_trip_decimals(tmp_path):
    rng = np.random.default_rng(9)
    v = np.concatenate([rng.standard_normal(3000) * 0.3, rng.standard_normal(600) * 1e-6,
                        rng.standard_normal(600) * 1e6]).astype(np.float32)
    v[:8] = [0, 1, -2.5, 0.1, 1e-5, 123456792, 3.4028235e38, 1e-45]
    m = v.reshape(-1, 6)
    word2vec_text.write(tmp_path / "s.vec", [f"w{i}" for i in range(len(m))], m)
    lines = (tmp_path / "s.vec").read_text().splitlines()
    assert lines[1] == "w0 0 1 -2.5 0.1 1e-05 123456790"
    toks = " ".join(line.split(" ", 1)[1] for line in lines[1:]).split()
    assert np.array_equal(np.array([np.float32(float(t)) for t in toks]), v)
    # same digits as numpy's shortest repr (Dragon4) wherever the exponent is ordinary
    normal = (np.abs(v) > 1e-20) & (np.abs(v) < 1e20)
    assert all(float(t) == float(str(x)) for t, x, ok in zip(toks, v, normal) if ok)
