"""`--bpe-bag all`: a word's subwords are every BPE token it contains, with boundary markers."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from embedkit.bpe.files import settings_for
from embedkit.bpe.model import BPETokenizer
from embedkit.bpe.pretokenize import byte_alphabet, to_symbols, unicode_to_bytes
from embedkit.cli import main
from embedkit.wordvec.bpe_bag import BagIndex
from embedkit.wordvec.bpe_subwords import BpeBag, BpePieces

LINES = ["the cat sat on the mat", "the cats ate the dog food", "cats and dogs eat food"] * 40
CHARS = "abcé中😀"


def byte_tokenizer(extra: list[str], merges=()) -> BPETokenizer:
    toks = byte_alphabet() + extra
    ids = {t: i for i, t in enumerate(toks)}
    return BPETokenizer(toks, [(ids[a], ids[b]) for a, b in merges], settings_for(True))


def word_tokenizer(extra: list[str]) -> BPETokenizer:
    return BPETokenizer(["<unk>", "<unk></w>"] + extra, [], settings_for(False))


def reference_bag(tok: BPETokenizer, word: str, lo: int, hi: int) -> list[int]:
    """Brute force: every substring of the word as the tokenizer sees it, looked up in a set of
    token strings; a substring running to the word's end also as its suffix n-gram."""
    V = tok.vocab_size
    ids = {tok.id_to_token(i): i for i in range(V)}
    if tok.byte_level:  # length: the UTF-8 characters a piece starts
        text, suffix, end_row = to_symbols(b" " + word.encode()), "", V
        size = lambda s: sum((b & 0xC0) != 0x80 for b in map(unicode_to_bytes().__getitem__, s))
    else:
        text, suffix, end_row = word, "</w>", 0
        size = len
    ok = lambda n: n >= lo and (hi == 0 or n <= hi)
    out = []
    for i in range(len(text)):
        for j in range(i + 1, len(text) + 1):
            s = text[i:j]
            if s in ids and ok(size(s)):
                out.append(ids[s])
        s = text[i:] + suffix
        if s in ids and ok(size(text[i:]) + 1):
            out.append(end_row + ids[s])
    return out


def random_word(rng, n) -> str:
    return "".join(rng.choice(CHARS) for _ in range(n))


@pytest.mark.parametrize("byte_level", [True, False])
@pytest.mark.parametrize("lo,hi", [(1, 0), (2, 0), (2, 3)])
def test_kernel_and_python_match_brute_force(byte_level, lo, hi):
    rng = random.Random(7 + lo + hi + byte_level)
    if byte_level:  # random byte strings too: tokens may be partial UTF-8 characters
        pieces = {to_symbols((" " if rng.random() < 0.3 else "").encode()
                             + random_word(rng, rng.randint(1, 3)).encode()[:rng.randint(1, 6)])
                  for _ in range(300)}
        tok = byte_tokenizer(sorted(pieces - set(byte_alphabet())))
    else:
        pieces = {random_word(rng, rng.randint(1, 3)) + ("</w>" if rng.random() < 0.4 else "")
                  for _ in range(300)}
        tok = word_tokenizer(sorted(pieces))
    own = 3 if lo == 1 else 1  # copies of the word's own row ahead of its n-grams
    index = BagIndex(tok, lo, hi, own=own)
    words = [random_word(rng, rng.randint(1, 8)) for _ in range(300)] + ["a", "中😀"]
    ptr, ids, _ = index.table(words, 1000)
    for w, word in enumerate(words):
        want = reference_bag(tok, word, lo, hi)
        assert ids[ptr[w]:ptr[w] + own].tolist() == [w] * own
        assert (ids[ptr[w] + own:ptr[w + 1]] - 1000).tolist() == want, word
        assert index.rows(word).tolist() == want, word
    assert sum(ptr[1:] - ptr[:-1] > own) > 100  # the vocabularies really match inside the words


def test_byte_level_bag_prefix_and_suffix_are_distinct():
    merges = [("Ġ", "c"), ("Ġc", "a"), ("Ġca", "t"), ("c", "a"), ("ca", "t"), ("a", "t"), ("t", "s")]
    tok = byte_tokenizer(["Ġc", "Ġca", "Ġcat", "ca", "cat", "at", "ts"], merges)
    scheme = BpeBag(tok)
    V = tok.vocab_size
    name = lambda r: tok.id_to_token(r) if r < V else tok.id_to_token(r - V) + "⟩"
    assert scheme.size == 2 * V
    assert [name(r) for r in scheme.rows("cat")] == \
        ["Ġc", "Ġca", "Ġcat", "Ġcat⟩", "ca", "cat", "cat⟩", "at", "at⟩", "t⟩"]
    assert [name(r) for r in scheme.rows("cats")] == \
        ["Ġc", "Ġca", "Ġcat", "ca", "cat", "at", "ts", "ts⟩", "s⟩"]
    assert [name(r) for r in scheme.rows("scat")] == ["ca", "cat", "cat⟩", "at", "at⟩", "t⟩"]
    assert [name(r) for r in BpeBag(tok, 3, 3).rows("cat")] == ["Ġca", "cat", "at⟩"]
    assert [name(r) for r in BpeBag(tok, 1, 1).rows("ca")] == ["Ġ", "c", "a"]


def test_word_mode_bag_uses_end_of_word_marker():
    tok = word_tokenizer(list("ings") + ["g</w>", "s</w>", "in", "ing", "ng</w>", "ing</w>"])
    name = lambda rows: [tok.id_to_token(r) for r in rows]
    scheme = BpeBag(tok)
    assert scheme.size == tok.vocab_size
    assert name(scheme.rows("sing")) == ["in", "ing", "ing</w>", "ng</w>", "g</w>"]
    assert name(scheme.rows("sings")) == ["in", "ing", "s</w>"]
    assert name(scheme.rows("<unk>")) == []  # <unk> is never an n-gram


def test_scheme_round_trips_and_old_models_are_segmentations():
    from embedkit.subwords import scheme_from_meta

    tok = byte_tokenizer(["Ġc", "Ġca"], [("Ġ", "c"), ("Ġc", "a")])
    again = scheme_from_meta(BpeBag(tok, 1, 4).to_meta())
    assert isinstance(again, BpeBag) and (again.index.min_len, again.index.max_len) == (1, 4)
    assert again.rows("cab").tolist() == BpeBag(tok, 1, 4).rows("cab").tolist()
    old = BpePieces(tok).to_meta()
    del old["bag"]
    assert isinstance(scheme_from_meta(old), BpePieces)


@pytest.fixture(scope="module")
def tokdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bag") / "tok"
    BPETokenizer.train(LINES, 300).save(d)
    return d


def run(args) -> int:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def train_cli(tmp_path, tokdir, name, *extra):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(LINES) + "\n")
    assert run(["train", str(corpus), "-o", str(tmp_path / name), "--subwords", "bpe", "--tokenizer",
          str(tokdir), "--min-count", "1", "--dim", "8", "--epochs", "2", "--threads", "1",
          "--seed", "3", "--quiet", *extra]) == 0


def test_oov_vector_after_save_and_load_is_the_bag_mean(tokdir, tmp_path, capsys):
    import embedkit

    train_cli(tmp_path, tokdir, "m", "--bpe-bag", "all")
    capsys.readouterr()
    v = embedkit.load(tmp_path / "m.ekv")
    assert isinstance(v.scheme, BpeBag) and v.settings["bpe_bag"] == "all"
    fresh = BpeBag.load(tokdir)
    kept = v.scheme.index.kept  # training kept only the token rows some vocabulary word uses
    assert v.subword_rows.shape[0] == len(kept) == v.scheme.size < fresh.size
    ptr, ids, _ = fresh.table(v.words, len(v.words))
    assert kept.tolist() == sorted({r - len(v.words) for r in ids[ids >= len(v.words)].tolist()})
    # In-vocabulary words: the .vec holds the mean of the word's own row and its bag.
    for w in ("cat", "cats", "food"):
        i = v.index[w]
        assert kept[v.scheme.rows(w)].tolist() == fresh.rows(w).tolist()
        rows = np.vstack([v.input[[i] * fresh.index.own], v.subword_rows[v.scheme.rows(w)]])
        np.testing.assert_allclose(v.vectors[i], rows.mean(0), rtol=1e-6, atol=1e-7)
    ptr, ids, _ = v.scheme.table(["dogcatq"], 0)
    assert fresh.index.own == v.scheme.index.own > 1 and ids[:fresh.index.own].tolist() == [0] * fresh.index.own
    bag = ids[fresh.index.own:].astype(np.int64)
    full = fresh.rows("dogcatq")  # its tokens that no vocabulary word contains have no row
    assert kept[bag].tolist() == [r for r in full.tolist() if r in set(kept.tolist())]
    assert "dogcatq" not in v and 4 < len(bag) < len(full)  # "q" ends no vocabulary word
    want = np.asarray(v.subword_rows[bag]).sum(axis=0, dtype=np.float32) * np.float32(1 / len(bag))
    assert np.array_equal(v["dogcatq"], want)
    assert run(["vectors", str(tmp_path / "m.ekv"), "dogcatq", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["vector"]
    assert np.array_equal(np.array(got, np.float32), want)


def test_threads_1_seed_is_reproducible_and_default_is_segmentation(tokdir, tmp_path):
    train_cli(tmp_path, tokdir, "a", "--bpe-bag", "all")
    train_cli(tmp_path, tokdir, "b", "--bpe-bag", "all")
    for ext in (".vec", ".ekv"):
        assert (tmp_path / ("a" + ext)).read_bytes() == (tmp_path / ("b" + ext)).read_bytes()
    train_cli(tmp_path, tokdir, "s")
    assert (tmp_path / "a.vec").read_bytes() != (tmp_path / "s.vec").read_bytes()
    import embedkit

    assert isinstance(embedkit.load(tmp_path / "a.ekv").scheme, BpeBag)
    assert isinstance(embedkit.load(tmp_path / "s.ekv").scheme, BpePieces)


@pytest.mark.parametrize("args,message", [
    (["--bpe-bag", "all"], "--bpe-bag is only used with --subwords bpe"),
    (["--bpe-bag", "weighted"], "--bpe-bag is only used with --subwords bpe"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "weighted", "--bpe-min-len", "4",
      "--bpe-max-len", "3"], "--bpe-max-len 3 is below --bpe-min-len 4"),
    (["--subwords", "bpe", "--tokenizer", "SPM", "--bpe-bag", "weighted"],
     "token '▁' is not made of GPT-2 byte symbols"),
    (["--subwords", "char", "--bpe-min-len", "3"], "--bpe-min-len is only used with --subwords bpe"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "all", "--bpe-min-len", "4",
      "--bpe-max-len", "3"], "--bpe-max-len 3 is below --bpe-min-len 4"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "all", "--bpe-min-len", "0"],
     "--bpe-min-len must be"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-min-len", "3"], "only used with --bpe-bag all"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "segmentation", "--bpe-max-len", "3"],
     "only used with --bpe-bag all"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "some"], "'some' is not one of"),
    (["--subwords", "bpe", "--tokenizer", "TOK", "--bpe-bag", "all", "--bpe-min-len", "999"],
     "the bags would be empty"),
    (["--subwords", "bpe", "--tokenizer", "SPM", "--bpe-bag", "all"],
     "token '▁' is not made of GPT-2 byte symbols"),
])
def test_bad_input_is_one_line_exit_2(tokdir, tmp_path, capsys, args, message):
    spm = tmp_path / "spm"  # a sentencepiece-style vocabulary: not byte-level BPE
    spm.mkdir()
    (spm / "vocab.json").write_text(json.dumps({"▁": 0, "t": 1, "h": 2, "e": 3, "▁the": 4}))
    (spm / "merges.txt").write_text("#version: 0.2\n")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat\n")
    args = [{"TOK": str(tokdir), "SPM": str(spm)}.get(a, a) for a in args]
    code = run(["train", str(corpus), "-o", str(tmp_path / "m"), "--min-count", "1", "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("m*"))


@pytest.mark.parametrize("rows, what", [
    ("reversed", "'rows' is not an increasing list of token rows"),
    ("too_big", "'rows' is not an increasing list of token rows"),
    ("one_less", "pieces but 'subword_rows' has"),
])
def test_lying_kept_rows_in_the_model_are_refused(tokdir, tmp_path, capsys, rows, what):
    from embedkit.store import read_store, write_store

    train_cli(tmp_path, tokdir, "m", "--bpe-bag", "all")
    meta, arrays = read_store(tmp_path / "m.ekv", mmap=False)
    kept = meta["subwords"]["rows"]
    meta["subwords"]["rows"] = {"reversed": kept[::-1], "too_big": kept[:-1] + [10**6],
                                "one_less": kept[:-1]}[rows]
    write_store(tmp_path / "bad.ekv", "vectors", meta, arrays)
    capsys.readouterr()
    assert run(["vectors", str(tmp_path / "bad.ekv"), "cat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"embedkit: error: {tmp_path / 'bad.ekv'}: corrupt native model: ")
    assert what in err and err.count("\n") == 1


def test_weigh_follows_the_rule_for_word_mode_tokens():
    """log(e + df)^-alpha scaled to mean 1 over the bag entries; word-final tokens fixed."""
    from math import e, log

    from embedkit.wordvec.bpe_bag import WEIGHT_ALPHA, WEIGHT_END

    tok = word_tokenizer(["c", "a", "t", "at", "ca", "at</w>", "t</w>", "cat</w>"])
    index = BagIndex(tok, 1, 0, own=1)
    ptr, ids, _ = index.table(["cat", "at", "a"], 3)
    entries = ids[ids >= 3] - 3
    index.weigh(entries)
    row = {tok.id_to_token(r): r for r in range(tok.vocab_size)}
    df = {r: entries.tolist().count(r) for r in set(entries.tolist())}
    assert df == {row["c"]: 1, row["a"]: 3, row["t"]: 2, row["at"]: 2, row["ca"]: 1,
                  row["at</w>"]: 2, row["t</w>"]: 2, row["cat</w>"]: 1}
    raw = {r: log(e + n) ** -WEIGHT_ALPHA for r, n in df.items()}
    mean = sum(raw[r] for r in entries.tolist()) / len(entries)
    for t, r in row.items():
        if r in df:
            want = WEIGHT_END if t.endswith("</w>") else raw[r] / mean
            assert index.weights[r] == pytest.approx(want, rel=1e-6), t


@pytest.mark.parametrize("hi", [0, 3])
def test_table_tells_which_words_are_tokens(hi):
    """Word mode: ``cat`` is the token ``cat</w>`` (4 long with its marker: out of a bag bounded
    to 3), ``a`` the unmarked token ``a``; ``ta`` and ``tac`` are no tokens."""
    tok = word_tokenizer(["c", "a", "t", "at", "ca", "at</w>", "t</w>", "cat</w>"])
    index = BagIndex(tok, 1, hi, own=1)
    *_, whole = index.table(["cat", "at", "a", "ta", "tac", "Cat"], 6)
    assert whole.dtype == bool
    assert whole.tolist() == [hi == 0, True, True, False, False, False]
    byte = BagIndex(byte_tokenizer(["Ġc", "Ġca", "Ġcat", "at"], []), 2, 0, own=1)
    assert byte.table(["cat", "ca", "at", "cats"], 4)[2].tolist() == [True, True, False, False]


def test_weighted_bag_trains_saves_and_gives_oov_vectors(tokdir, tmp_path, capsys):
    from collections import Counter
    from math import e, log

    import embedkit
    from embedkit.wordvec.bpe_bag import BYTE_EOW, OWN_UNTOKENED, WEIGHT_ALPHA, WEIGHT_END

    # every word of LINES is a token of ``tokdir``: up to 4 characters, only the short ones are
    bound = ("--bpe-max-len", "4")
    train_cli(tmp_path, tokdir, "w", "--bpe-bag", "weighted", *bound)
    train_cli(tmp_path, tokdir, "w2", "--bpe-bag", "weighted", *bound)
    train_cli(tmp_path, tokdir, "a", "--bpe-bag", "all", *bound)
    for ext in (".vec", ".ekv"):
        assert (tmp_path / ("w" + ext)).read_bytes() == (tmp_path / ("w2" + ext)).read_bytes()
    assert (tmp_path / "w.vec").read_bytes() != (tmp_path / "a.vec").read_bytes()
    capsys.readouterr()
    v = embedkit.load(tmp_path / "w.ekv")
    s = v.scheme
    assert v.settings["bpe_bag"] == s.bag == "weighted" and s.index.own == 1
    # The stored weights are the rule's, over the training vocabulary's bags.
    entries = [r for w in v.words for r in s.rows(w).tolist()]
    df = Counter(entries)
    assert sorted(df) == list(range(s.size))  # training kept only the rows some bag uses
    raw = {r: log(e + n) ** -WEIGHT_ALPHA for r, n in df.items()}
    mean = sum(raw[r] for r in entries) / len(entries)
    ends = {r for q, r in zip(s.index.seqs, s.index.token_rows) if q[-1] == BYTE_EOW}
    want = [WEIGHT_END if r in ends else raw[r] / mean for r in range(s.size)]
    np.testing.assert_allclose(s.index.weights, want, rtol=1e-6)
    assert 0 < len(ends) < s.size
    # In-vocabulary words: the weighted mean of the own row and the bag; the own row weighs 1
    # when the word after a space is a token of the tokenizer within the bound, else OWN_UNTOKENED.
    tokens = {s.tokenizer.id_to_token(i) for i in range(s.tokenizer.vocab_size)}
    own = {w: 1.0 if to_symbols(b" " + w.encode()) in tokens and len(w) < 4 else OWN_UNTOKENED
           for w in v.words}
    assert 1.0 in own.values() and OWN_UNTOKENED in own.values()
    for w in v.words:
        i, rows = v.index[w], s.rows(w)
        block = np.vstack([v.input[[i]], v.subword_rows[rows]])
        wt = np.concatenate([[own[w]], s.index.weights[rows]])
        np.testing.assert_allclose(v.vectors[i], np.average(block, axis=0, weights=wt),
                                   rtol=1e-5, atol=1e-6, err_msg=w)
    # Unseen words: the weighted mean of their rows, the same from the CLI.
    rows = s.rows("dogcatq")
    block = np.asarray(v.subword_rows[rows])
    oov = v["dogcatq"]
    np.testing.assert_allclose(oov, np.average(block, axis=0, weights=s.index.weights[rows]),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(oov, block.mean(0), rtol=1e-2)
    assert run(["vectors", str(tmp_path / "w.ekv"), "dogcatq", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["vector"]
    assert np.array_equal(np.array(got, np.float32), oov)


@pytest.mark.parametrize("lie", ["one_less", "negative", "missing"])
def test_lying_weights_in_the_model_are_refused(tokdir, tmp_path, capsys, lie):
    from embedkit.store import read_store, write_store

    train_cli(tmp_path, tokdir, "m", "--bpe-bag", "weighted")
    meta, arrays = read_store(tmp_path / "m.ekv", mmap=False)
    w = meta["subwords"]["weights"]
    if lie == "missing":
        del meta["subwords"]["weights"]
    else:
        meta["subwords"]["weights"] = w[:-1] if lie == "one_less" else [-1.0] + w[1:]
    write_store(tmp_path / "bad.ekv", "vectors", meta, arrays)
    capsys.readouterr()
    assert run(["vectors", str(tmp_path / "bad.ekv"), "cat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"embedkit: error: {tmp_path / 'bad.ekv'}: corrupt native model: ")
    assert "'weights' must be" in err and err.count("\n") == 1
