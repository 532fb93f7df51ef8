"""The compiled cl100k / o200k scanners (``bpe.scanner_tiktoken``) count exactly the words the
``regex`` path counts (line by line, line ending included): on edge cases, random text, dev.txt,
files with invalid UTF-8, Dask shards, and the merges ``bpe learn`` writes."""
from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedkit.bpe import count as count_mod
from embedkit.bpe.count import count
from embedkit.bpe.pretokenize import CL100K_PATTERN, GPT2_BLOCK_PATTERN, O200K_PATTERN, \
    resolve_pattern, split_words
from embedkit.bpe.scanner_tiktoken import Cl100kCounter, O200kCounter

SCANNERS = [pytest.param(Cl100kCounter, CL100K_PATTERN, id="cl100k"),
            pytest.param(O200kCounter, O200K_PATTERN, id="o200k")]


def regex_counts(text: str, pattern: str) -> Counter:
    """What ``count._count`` does with a pattern: each line on its own, its "\\n" included."""
    lines = text.split("\n")
    lines = [t + "\n" for t in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return Counter(itertools.chain.from_iterable(split_words(t, pattern) for t in lines))


def scanned(counter_class, *texts) -> Counter:
    wc = counter_class()
    for text in texts:
        wc.add(text)
    return wc.counter()


def unscanned(pattern: str) -> str:
    """The same regex spelled differently: ``count`` then takes the ``regex`` path."""
    return f"(?:{pattern})"


CONTRACTIONS = [q + "".join(c) for q in ("'", "’")
                for w in ("s", "t", "m", "d", "ll", "ve", "re", "r", "l", "v", "x")
                for c in itertools.product(*[(x, x.upper()) for x in w])]
EDGE_CASES = [
    "", "\n", "\n\n\n", "a", "a\n", "a\nb", " ", "  ", "   \n", "a   \n", "a   ", "a \t \n",
    *(f"x{c}y {c}\n{c}" for c in CONTRACTIONS),
    "it's IT'S It'S we'LL you'Ve they'RE I'D i'M don'T", "'S", "'s'S's", "''s", "'", "'\n",
    "ſ 'ſ 'ſt x'ſ", "\u212a 'k '\u212a", "'ﬅ", "İ'S", "a'll'", "'\u0301s", "'ll\r\n",
    *("9" * n for n in range(1, 8)), *(" " + "4" * n + "x" for n in range(1, 8)),
    "\u0663\u0664\u0665\u0666 ١٢٣٤٥ ²³ ½⅓", "1,234,567.89", "a1b22c333d4444",
    "line\r\n", "\r\n", "a\r\nb\r\n", "\r", "a\rb", "a \r b", " \r", "\r ", "\r\r\n", "a\r\r\rb",
    "a \n", "a  \n", "a\t\n", "a \t\u00a0\n", "x  \r\n", "x \r  \n  ",
    "hi!\n", "hi!!\r\n", "hi! \n", "a.\r\r\nb", " ...\n", "?\r", "x/\n", "a!/\r/\nb", "!\r/x",
    "//\r\n//", " /x", "a / b", "-\n-", " .\r .",
    "\ttab", "\t\ta", "a\t\tb", "\u00a0x", "\u00a0\u00a0x", "a\u2003\u2003b", "\u3000日本",
    "\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029 x", "a\u2028b", "\x85\n",
    "e\u0301 \u0301 \u0301\u0301a a\u0301b \u0903x X\u0301 !\u0301 ?\u0301Ab", "\u0301", " \u0301",
    "ǅungla ǅ ʰa Aʰ aʰ ʰ HELLO Hello hELLO helloWorld HTTPServer éA ÉÀa ß SS",
    "日本語の文 中文 한국어 ﷺ ٱلْعَرَبِيَّة हिन्दी", "🙂🙂 🙂x x🙂 🎉\n",
    "trailing spaces   ", "trailing spaces   \n", "spaces before newline  \n\nnext",
    "\n\n  \n\t\n", "no final newline", "a\u2028\n\u2029",
]


@pytest.mark.parametrize("counter_class,pattern", SCANNERS)
def test_edge_cases_equal_regex(counter_class, pattern):
    for text in EDGE_CASES:
        assert scanned(counter_class, text) == regex_counts(text, pattern), repr(text)
    whole = "\n".join(EDGE_CASES)
    assert scanned(counter_class, whole) == regex_counts(whole, pattern)


def test_the_patterns_differ_on_the_edge_cases():
    """So that equality with the wrong pattern's regex would fail: the cases tell them apart."""
    whole = "\n".join(EDGE_CASES)
    cl, o2, g2 = (regex_counts(whole, p)
                  for p in (CL100K_PATTERN, O200K_PATTERN, GPT2_BLOCK_PATTERN))
    assert cl != o2 and cl != g2 and o2 != g2
    assert regex_counts("ſ'ſ", CL100K_PATTERN) == {"ſ": 1, "'ſ": 1}  # case-insensitive ’ſ
    assert regex_counts("12345678", CL100K_PATTERN) == {"123": 1, "456": 1, "78": 1}


ALPHABET = [" ", " ", "  ", "\n", "\r", "\r\n", "\t", "\u00a0", "\u3000", "\x85", "\u2028", "\x0b",
            "a", "b", "Z", "HTTP", "é", "e\u0301", "\u0301", "\u0903", "ǅ", "ʰ", "日本", "ß",
            "1", "22", "4444", "\u0663", "²", ".", "!", "?", "/", "-", "🙂", "'", "’",
            "'s", "'S", "'ll", "'LL", "'lL", "'ve", "'RE", "'d", "'M", "'T", "ſ", "\u212a",
            "\udc80", "\udcff", "\ud800"]
MIXED = st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join)


@pytest.mark.parametrize("counter_class,pattern", SCANNERS)
@settings(max_examples=400, deadline=None)
@given(text=MIXED)
def test_random_mixed_text_equals_regex(counter_class, pattern, text):
    assert scanned(counter_class, text) == regex_counts(text, pattern)


@pytest.mark.parametrize("counter_class,pattern", SCANNERS)
@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_equals_regex(counter_class, pattern, text):
    assert scanned(counter_class, text) == regex_counts(text, pattern)


@pytest.mark.parametrize("counter_class,pattern", SCANNERS)
def test_dev_corpus_equals_regex(counter_class, pattern, shared_data):
    path = shared_data / "corpus" / "dev.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open(path, "rb") as f:
        data = f.read(3 << 20)
    text = data[:data.rfind(b"\n") + 1].decode("utf-8", "surrogateescape")
    got = scanned(counter_class, text)
    assert got == regex_counts(text, pattern) and len(got) > 10_000


def test_counts_accumulate_and_the_table_grows():
    words = [f" w{i}x'S\r\n" for i in range(60_000)]  # past the first 32k words / 256k code points
    text = "".join(words)
    assert scanned(Cl100kCounter, text, text[:900]) == \
        regex_counts(text, CL100K_PATTERN) + regex_counts(text[:900], CL100K_PATTERN)


FILE_BYTES = ("\n".join(EDGE_CASES).encode("utf-8", "surrogatepass")
              + b"\nbad \xff\xfe bytes\xc3 \xed\xa0\x80 x\xe2\x82\r\n\xef\xbb\xbfbom 'S\r\nend  ")


@pytest.mark.parametrize("pattern", [CL100K_PATTERN, O200K_PATTERN], ids=["cl100k", "o200k"])
@pytest.mark.parametrize("lowercase", [False, True])
def test_file_counts_equal_the_regex_path(tmp_path, monkeypatch, pattern, lowercase):
    """Invalid UTF-8 (surrogateescape), a BOM, CRLF, no final newline, small blocks, 2 threads."""
    path = tmp_path / "c.txt"
    path.write_bytes(b"\xef\xbb\xbf" + FILE_BYTES * 3)
    ref = count([path], pattern=unscanned(pattern), lowercase=lowercase, threads=1)
    assert isinstance(ref, Counter) and sum(ref.values()) > 1000
    monkeypatch.setattr(count_mod, "COMPILED_JOB_BYTES", 700)
    got = count([path], pattern=pattern, lowercase=lowercase, threads=2)
    assert isinstance(got, (Cl100kCounter if pattern == CL100K_PATTERN else O200kCounter))
    assert got.counter() == ref


def test_the_names_dispatch_to_the_scanners(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"Hello world's 12345\n")
    assert type(count(path, pattern=resolve_pattern("cl100k"))) is Cl100kCounter
    assert type(count(path, pattern=resolve_pattern("o200k"))) is O200kCounter
    assert type(count(path, pattern=CL100K_PATTERN, threads=2)) is Cl100kCounter
    assert isinstance(count(path, pattern=resolve_pattern("r50k")), Counter)
    assert isinstance(count(["Hello world's"], pattern=CL100K_PATTERN), Counter)  # lines: regex


LEARN_TEXT = ("It's 12345678 dollars, WE'LL see!\r\nThe year 2024-2025: 3.14159...\n"
              "  indented\tline  \r\nHTTPServer naïve café 東京 🎉 don'T you'RE\n"
              "end of line!!!\n\n/path/to/file //x\n" + "\xa0nbsp\u3000wide ſt\n") * 40


@pytest.mark.parametrize("name,counter_class", [("cl100k", Cl100kCounter), ("o200k", O200kCounter)])
def test_learn_writes_the_same_tokenizer_as_the_regex_path(tmp_path, capsys, monkeypatch, name,
                                                           counter_class):
    from embedkit.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_bytes(LEARN_TEXT.encode() + b"bad \xff byte\n")
    calls = []
    scan = counter_class._scan
    monkeypatch.setattr(counter_class, "_scan",
                        lambda self, cps: calls.append(1) or scan(self, cps))
    out = {}
    for label, pattern in (("scanner", name), ("regex", unscanned(resolve_pattern(name))),
                           ("gpt2", "gpt2")):
        before = len(calls)
        with pytest.raises(SystemExit) as e:
            main(["bpe", "learn", str(corpus), "-o", str(tmp_path / label), "--vocab-size", "400",
                  "--pattern", pattern, "--threads", "1", "-q"])
        assert e.value.code == 0, capsys.readouterr().err
        assert (len(calls) > before) == (label == "scanner")
        out[label] = [(tmp_path / label / f).read_bytes() for f in ("merges.txt", "vocab.json")]
    assert out["scanner"] == out["regex"]
    assert out["scanner"] != out["gpt2"]  # the pattern matters on this corpus


@pytest.mark.parametrize("pattern", [CL100K_PATTERN, O200K_PATTERN], ids=["cl100k", "o200k"])
def test_dask_shards_use_the_scanner_and_equal_single_node(tmp_path, monkeypatch, pattern):
    pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[dask]'")
    from embedkit import cluster

    data = FILE_BYTES * 2
    lines = data.splitlines(keepends=True)
    shards = []
    for i, (a, b) in enumerate([(0, 40), (40, 41), (41, len(lines))]):
        shards.append(tmp_path / f"{i}.txt")
        shards[-1].write_bytes(b"".join(lines[a:b]))
    whole = tmp_path / "whole.txt"
    whole.write_bytes(data)
    warmed = []
    monkeypatch.setattr(cluster, "warm_up", lambda p=None: warmed.append(p))
    with cluster.connect("sync") as runner:
        got = cluster.bpe_counts(runner, [str(s) for s in shards], pattern=pattern)
    assert warmed == [pattern] and not isinstance(got, Counter)
    assert got.counter() == count([whole], pattern=unscanned(pattern))
    monkeypatch.undo()
    cluster.warm_up(pattern)  # loads the scanner's kernels (what each worker runs first)
