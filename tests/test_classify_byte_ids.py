"""``classify predict``'s bytes -> ids path (``classify.byte_ids``): the same tokens as the string
path (``split_words``, label words dropped, ``</s>`` per model), the same scores from every model
that takes it, the same CLI output, and the same errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from embedkit import Classifier
from embedkit.classify.byte_ids import ByteVocab
from embedkit.classify.data import split_words
from embedkit.classify.kernels import word_hashes
from embedkit.classify.tables import EOS, encoded
from cli_run import one_error, run

WORDS = ["a", "b", "ab", "cat", EOS, "é", "日本", "a\xa0b", "a\x1cb", "x\udcffy", "__label__x"]
INDEX = {w: 10 + 3 * i for i, w in enumerate(WORDS)}  # ids need not be 0..V-1
UNKNOWN = 1000
PIECES = [b"a", b"b", b"ab", b"cat", b"dog", b"\xc3\xa9", b"\xe6\x97\xa5\xe6\x9c\xac", b" ", b"  ",
          b"\t", b"\x0b", b"\x0c", b"\r", b"\r\n", b"\n", b"\xc2\xa0", b"\x1c", b"\xe3\x80\x80",
          b"</s>", b"<s>", b"__label__x", b"__label__", b"#y", b"\xff", b"\x80", b"x\xffy",
          b"\x00", b"\x01"]  # NUL (refused by the CLI) separates words in fastText, \x01 does not


def fnv(word: str) -> int:
    return int(word_hashes(*encoded([word]))[0])


def reference(data: bytes, eos: str, prefixes: list[str]) -> list[list[tuple]]:
    """What the string path makes of ``data``: per line, ("k", id) or ("u", hash) per token."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines[-1] == "":
        lines.pop()
    out = []
    for line in lines:
        words = [w for w in split_words(line) if not any(w.startswith(p) for p in prefixes)]
        if eos == "fasttext" and EOS in words:
            words = words[:words.index(EOS)]
        if eos != "none":
            words.append(EOS)
        out.append([("k", INDEX[w]) if w in INDEX else ("u", fnv(w)) for w in words])
    return out


def scanned(vocab: ByteVocab, data: bytes, prefix: str, size: int) -> list[list[tuple]]:
    arr = np.frombuffer(data, np.uint8)
    out, start = [], 0
    while start < len(arr):
        start, ptr, ids, unk = vocab.scan(arr, start, size, prefix)
        assert ptr[0] == 0 and len(ptr) - 1 <= size and ptr[-1] == len(ids)
        assert np.count_nonzero(ids >= UNKNOWN) == len(unk)  # one hash per unknown token
        for i in range(len(ptr) - 1):
            out.append([("k", int(t)) if t < UNKNOWN else ("u", int(unk[t - UNKNOWN]))
                        for t in ids[ptr[i]:ptr[i + 1]]])
    return out


@pytest.mark.parametrize("eos", ["none", "append", "fasttext"])
@pytest.mark.parametrize("size", [1, 2, 1024])
def test_hand_written_lines(eos, size):
    data = (b"a b\tab\x0bcat\x0cdog\r\n"       # every fastText separator, CRLF
            b"\n   \n"                          # empty and blank lines
            b"a\xc2\xa0b a\x1cb \xe3\x80\x80\n"  # NBSP, \x1c and U+3000 stay inside words
            b"x\xffy \xff \x80\n"               # invalid UTF-8, kept byte for byte
            b"a </s> b\n"                       # fastText ends a line's words at </s>
            b"__label__x a __label__ #y b\n"    # label words dropped wherever they stand
            b"\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac last")  # no final newline
    vocab = ByteVocab(INDEX, UNKNOWN, eos)
    got = scanned(vocab, data, "__label__", size)
    assert got == reference(data, eos, ["__label__"])
    assert len(got) == 8
    assert got[3] == [("k", INDEX["a\xa0b"]), ("k", INDEX["a\x1cb"]),
                      ("u", fnv("\u3000"))] + ([("k", INDEX[EOS])] if eos != "none" else [])
    a, e, b = ("k", INDEX["a"]), ("k", INDEX[EOS]), ("k", INDEX["b"])
    assert got[5] == {"none": [a, e, b], "append": [a, e, b, e], "fasttext": [a, e]}[eos]
    # a second prefix (fastText's own label prefix under --label-prefix '#')
    two = ByteVocab(INDEX, UNKNOWN, eos, drop=("__label__",))
    assert scanned(two, data, "#", size) == reference(data, eos, ["#", "__label__"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.sampled_from(["none", "append", "fasttext"]),
       st.integers(1, 5))
def test_any_bytes_give_the_string_paths_tokens(pieces, eos, size):
    data = b"".join(pieces)
    vocab = ByteVocab(INDEX, UNKNOWN, eos)
    assert scanned(vocab, data, "__label__", size) == reference(data, eos, ["__label__"])


def test_a_large_vocabulary_finds_every_word():
    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abcdéz"), rng.integers(1, 9))) for _ in range(6000)})
    index = {w: i for i, w in enumerate(words)}
    vocab = ByteVocab(index, len(words), "none")
    data = (" ".join(words) + "\nnot-a-word\n").encode()
    end, ptr, ids, unk = vocab.scan(np.frombuffer(data, np.uint8), 0, 10, "__label__")
    assert end == len(data) and list(ptr) == [0, len(words), len(words) + 1]
    assert ids[:len(words)].tolist() == list(range(len(words)))
    assert ids[-1] == len(words) and unk.tolist() == [fnv("not-a-word")]


def test_a_slice_of_a_longer_buffer_ends_at_its_end():
    buf = np.frombuffer(b"cat dogma", np.uint8)
    end, ptr, ids, unk = ByteVocab(INDEX, UNKNOWN, "none").scan(buf[:6], 0, 5, "__label__")
    assert end == 6 and ptr.tolist() == [0, 2]
    assert ids.tolist() == [INDEX["cat"], UNKNOWN] and unk.tolist() == [fnv("do")]


def test_a_word_shorter_than_the_prefix_is_never_dropped():
    """Even when the bytes after it would complete the prefix (a prefix with a space in it)."""
    vocab = ByteVocab(INDEX, UNKNOWN, "none")
    data = b"b a bc ab\n"
    assert scanned(vocab, data, "a b", 1) == reference(data, "none", ["a b"])
    assert scanned(vocab, data, "a b", 1)[0][1] == ("k", INDEX["a"])


def test_an_end_of_line_the_vocabulary_lacks_is_an_unknown_word():
    vocab = ByteVocab({"a": 0}, 5, "append")
    end, ptr, ids, unk = vocab.scan(np.frombuffer(b"a b\n\na\n", np.uint8), 0, 9, "__label__")
    assert end == 7 and ptr.tolist() == [0, 3, 4, 6]
    assert ids.tolist() == [0, 5, 6, 7, 0, 8]
    assert unk.tolist() == [fnv("b"), fnv(EOS), fnv(EOS), fnv(EOS)]


def test_words_with_the_same_hash_are_told_apart():
    """``cavgsozq`` and ``snorqtud`` share their fastText (FNV-1a 32) hash: only bytes decide."""
    assert fnv("cavgsozq") == fnv("snorqtud")
    vocab = ByteVocab({"cavgsozq": 0, "b": 1}, 2, "none")
    data = np.frombuffer(b"snorqtud cavgsozq b\n", np.uint8)
    _, _, ids, unk = vocab.scan(data, 0, 5, "__label__")
    assert ids.tolist() == [2, 0, 1] and unk.tolist() == [fnv("snorqtud")]
    both = ByteVocab({"cavgsozq": 0, "snorqtud": 1}, 2, "none")
    assert both.scan(data, 0, 5, "__label__")[2].tolist() == [1, 0, 2]


def labelled(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        lab = rng.choice(["p", "q", "r"])
        words = [f"{lab}{rng.integers(6)}" for _ in range(rng.integers(1, 6))] + ["the", "é"]
        lines.append(f"__label__{lab} " + " ".join(words))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PREDICT = (b"\xef\xbb\xbfp1 p2 the\r\nq3\tq4 unseen\n\nr1 </s> p1 p2\n__label__q r2 r3 x\xffy\n"
           b"p1\xc2\xa0p2 q1 q1 q1\np5 q5 r5 \xe3\x80\x80 last")


@pytest.mark.parametrize("kind", ["fasttext", "nb", "fasttext-ova", "nb-ova"])
def test_models_score_ids_as_they_score_strings(kind, tmp_path):
    train = labelled(tmp_path / "t.txt")
    opts = dict(epochs=3, dim=8, lr=0.5, word_ngrams=2, buckets=5000) if kind.startswith("fasttext") \
        else dict(model="nb", buckets=5000)
    if kind.endswith("ova"):
        opts["loss"] = "ova"
    m = Classifier.train(train, **opts)
    vocab = m.byte_vocab()
    f = tmp_path / "in.txt"
    f.write_bytes(PREDICT)
    got = np.concatenate([m.predict_ids(*b) for b in vocab.batches([str(f)], "__label__", size=3)])
    text = PREDICT[3:].decode("utf-8", "surrogateescape").split("\n")
    want = m.predict_proba([[w for w in split_words(t) if not w.startswith("__label__")]
                            for t in text])
    assert got.shape == (7, 3) and np.array_equal(got, want)


def test_models_that_need_strings_have_no_byte_path(tmp_path):
    train = labelled(tmp_path / "t.txt")
    assert Classifier.train(train, epochs=1, dim=4, lowercase=True).byte_vocab() is None
    assert Classifier.train(train, epochs=1, dim=4, subwords="char").byte_vocab() is None
    assert Classifier.train(train, model="nb", lowercase=True).byte_vocab() is None


@pytest.mark.parametrize("kind", ["fasttext", "nb", "char"])
def test_cli_prints_the_same_with_and_without_the_byte_path(kind, tmp_path, capsys, monkeypatch):
    train = labelled(tmp_path / "t.txt")
    model = tmp_path / "m.ekc"
    extra = {"fasttext": ["--word-ngrams", "2"], "nb": ["--model", "nb"],
             "char": ["--subwords", "char"]}[kind]
    code, _, err = run(["classify", "train", train, "-o", model, "-q", *extra], capsys)
    assert code == 0, err
    f = tmp_path / "in.txt"
    f.write_bytes(PREDICT)
    outs = []
    for byte_path in (True, False):
        if not byte_path:
            from embedkit.classify.model import Classifier as C
            from embedkit.classify.nb import NBClassifier

            monkeypatch.setattr(C, "byte_vocab", lambda self: None)
            monkeypatch.setattr(NBClassifier, "byte_vocab", lambda self: None)
        code, out, err = run(["classify", "predict", model, f, "-k", "2", "--prob"], capsys)
        assert code == 0, err
        outs.append(out)
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 7


def test_cli_errors_through_the_byte_path(tmp_path, capsys):
    train = labelled(tmp_path / "t.txt")
    model = tmp_path / "m.ekn"
    assert run(["classify", "train", train, "-o", model, "--model", "nb", "-q"], capsys)[0] == 0
    bad = tmp_path / "nul.txt"
    bad.write_bytes(b"p1 p2\nq1\0q2\n")
    code, out, err = run(["classify", "predict", model, bad], capsys)
    assert f"{bad}:2: NUL byte" in one_error(code, err) and out == ""
    long = tmp_path / "long.txt"
    long.write_bytes(b"p1\n" + b"q1 " * (2 << 20))
    code, _, err = run(["classify", "predict", model, long], capsys)
    assert f"{long}:2: line longer than 1 MiB" in one_error(code, err)
