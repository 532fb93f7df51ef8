"""Tokenizer files (``embedkit/bpe/formats``): exact ids against the reference libraries —
tiktoken on .tiktoken / tekken rank files, sentencepiece on BPE .model files trained here, HF
tokenizers on tokenizer.json files it writes and on ones embedkit writes — round trips, the
rank → merges derivation against a slow reference, and every bad input."""
from __future__ import annotations

import base64
import json
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from embedkit import BPETokenizer
from embedkit.bpe.pretokenize import CL100K_PATTERN, GPT2_PATTERN, O200K_PATTERN, R50K_PATTERN
from embedkit.errors import InputError, UsageError

TEXT = ("The quick brown fox jumps over the lazy dog. It's 2024, and the dogs' owners aren't amused!\n"
        "Ünïcödé wörds: naïve café, 東京は大きい都市です。 Emoji 🎉🎉 and tabs\tand  double  spaces.\n"
        "    indented line with trailing spaces   \n"
        "Numbers 123 4567 89, symbols #$%&*() and a run-on-word-with-hyphens. HELLO World's\n"
        "Composed é vs decomposed e\u0301, <|endoftext|> and <sep> in text.\n")
WORDS = TEXT.split(" ")
# Llama-3's Split regex, as its tokenizer.json spells it (HF's Oniguruma dialect).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                  r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def lines(n=300, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 20))).replace("\n", " ")
            for _ in range(n)]


LINES = lines()
TEST_LINES = lines(200, seed=7) + ["", " ", "  leading", "trailing  ", "a\tb", "🎉", "x" * 50]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Parsed-file cache in a temp folder (the CLI subprocesses inherit it); no tiktoken cache."""
    monkeypatch.setenv("EMBEDKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ekcache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken caches files by path, not content


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("formats") / "corpus.txt"
    p.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return p


def run(*args, input=None):
    code = "from embedkit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], input=input,
                          capture_output=True)


def reference_derive(tokens, order):
    """Slow, obvious rank BPE on each token alone (tiktoken's procedure, ranks below its own)."""
    rank = {tokens[i]: r for r, i in enumerate(order)}
    out = []
    for r, i in enumerate(order):
        parts = list(tokens[i])
        while len(parts) > 2:
            cands = [(rank.get(parts[k] + parts[k + 1], r), k) for k in range(len(parts) - 1)]
            best, k = min(cands)
            if best >= r:
                break
            parts[k:k + 2] = [parts[k] + parts[k + 1]]
        if len(parts) == 2 and parts[0] in rank and parts[1] in rank:
            out.append((order[rank[parts[0]]], order[rank[parts[1]]]))
    return out


# ---- tiktoken ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learned(corpus):
    return BPETokenizer.train([corpus], 700, special_tokens=["<|endoftext|>"])


@pytest.fixture(scope="module")
def learned_cl100k(corpus):
    return BPETokenizer.train([corpus], 700, pattern=CL100K_PATTERN)


def tiktoken_encoding(path, pattern, specials):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding("t", pat_str=pattern, mergeable_ranks=load_tiktoken_bpe(str(path)),
                             special_tokens=specials)


def test_derived_merges_match_the_slow_reference(learned):
    from embedkit.bpe.formats.ranks import derive_merges

    tokens = learned._tokens
    order = list(range(1, len(tokens)))  # the special token has no rank
    ref = reference_derive(tokens, order)
    # Base symbols = bytes (tiktoken) or UTF-8 characters (sentencepiece; here 'Ġ' is one).
    assert derive_merges([learned.decode_bytes([i]) for i in order], order, False) == ref
    assert derive_merges([tokens[i].encode() for i in order], order, True) == ref
    # A learned vocabulary's ranks give back exactly its merges.
    assert ref == learned._merges
    shuffled = order[:]
    random.Random(0).shuffle(shuffled)  # any ranks: still the reference procedure
    assert derive_merges([tokens[i].encode() for i in shuffled], shuffled, True) == \
        reference_derive(tokens, shuffled)


@pytest.mark.parametrize("which", ["gpt2", "cl100k"])
def test_tiktoken_export_loads_in_tiktoken_with_the_same_ids(which, learned, learned_cl100k,
                                                             tmp_path):
    tok, pattern = (learned, R50K_PATTERN) if which == "gpt2" else (learned_cl100k, CL100K_PATTERN)
    out = tmp_path / "v.tiktoken"
    tok.export(out, "tiktoken")
    specials = {t: tok.token_to_id(t) for t in tok.special_tokens}
    enc = tiktoken_encoding(out, pattern, specials)
    ours = BPETokenizer.load(out, pattern=which)
    assert ours.vocab_size == tok.vocab_size
    for line in TEST_LINES:
        ref = enc.encode_ordinary(line)
        assert ours.encode(line) == ref, line
        # The merges vocabulary gives tiktoken's ids too (it matches its special tokens).
        assert tok.encode(line) == enc.encode(line, allowed_special="all"), line
        assert ours.decode(ref) == line


def test_tiktoken_needs_a_pattern_unless_known_and_specials_policy(learned, tmp_path, monkeypatch):
    from embedkit.bpe.formats import tiktoken as tk

    out = tmp_path / "v.tiktoken"
    learned.export(out, "tiktoken")
    with pytest.raises(InputError, match="give --pattern"):
        BPETokenizer.load(out)
    sha = __import__("hashlib").sha256(out.read_bytes()).hexdigest()
    monkeypatch.setitem(tk.KNOWN, sha, ("test_base", "r50k", {"<|endoftext|>": 0}))
    tok = BPETokenizer.load(out)
    enc = tiktoken_encoding(out, R50K_PATTERN, {"<|endoftext|>": 0})
    text = "a <|endoftext|> b"
    assert tok.encode(text) == enc.encode_ordinary(text) == enc.encode(text, disallowed_special=())
    assert 0 not in tok.encode(text)
    allowed = BPETokenizer.load(out, allow_special=True)
    assert allowed.encode(text) == enc.encode(text, allowed_special="all")
    assert 0 in allowed.encode(text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_tiktoken_random_unicode(tiktoken_pair, text):
    ours, enc = tiktoken_pair
    assert ours.encode(text) == enc.encode_ordinary(text)
    assert ours.decode(ours.encode(text)) == text


@pytest.fixture(scope="module")
def tiktoken_pair(learned_cl100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("tk") / "v.tiktoken"
    learned_cl100k.export(out, "tiktoken")
    return BPETokenizer.load(out, pattern="cl100k"), tiktoken_encoding(out, CL100K_PATTERN, {})


def test_tekken_json_ids_are_rank_plus_specials(learned_cl100k, tmp_path):
    tok = learned_cl100k
    n_special, size = 5, tok.vocab_size - 40  # cut, as default_vocab_size does
    vocab = [{"rank": i, "token_bytes": base64.b64encode(tok.decode_bytes([i])).decode(),
              "token_str": None} for i in range(tok.vocab_size)]
    path = tmp_path / "tekken.json"
    path.write_text(json.dumps({"config": {"pattern": O200K_PATTERN, "default_vocab_size": size,
                                           "default_num_special_tokens": n_special,
                                           "version": "v3"},
                                "vocab": vocab}), encoding="utf-8")
    ours = BPETokenizer.load(path)
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {base64.b64decode(e["token_bytes"]): e["rank"] for e in vocab
             if e["rank"] < size - n_special}
    enc = tiktoken.Encoding("tekken", pat_str=O200K_PATTERN, mergeable_ranks=ranks,
                            special_tokens={})
    assert ours.vocab_size == size
    for line in TEST_LINES:
        assert ours.encode(line) == [i + n_special for i in enc.encode_ordinary(line)], line
        assert ours.decode(ours.encode(line)) == line


@pytest.mark.parametrize("text, message", [
    ("IQ== 0\nIg== 1\n!!!! 2\n", ":3: not base64"),
    ("IQ== 0\nIg== 0\n", ":2: duplicate rank 0 (also on line 1)"),
    ("IQ== 0\nIQ== 1\n", ":2: duplicate token"),
    ("IQ== 0\nIg==\n", ":2: bad line"),
])
def test_bad_tiktoken_files(tmp_path, text, message):
    p = tmp_path / "bad.tiktoken"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        BPETokenizer.load(p, pattern="gpt2")
    assert str(e.value).startswith(str(p)) and message in str(e.value)


def test_bad_tiktoken_file_from_the_shell(tmp_path):
    p = tmp_path / "bad.tiktoken"
    p.write_text("IQ== 0\nnot-base64! 1\n")
    r = run("bpe", "encode", "-t", p, "--pattern", "gpt2", input=b"hi\n")
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == f"embedkit: error: {p}:2: not base64: 'not-base64!'\n"


# ---- sentencepiece -----------------------------------------------------------------------------


SP_CASES = {"bytes": dict(byte_fallback=True, normalization_rule_name="identity",
                          remove_extra_whitespaces=False),
            "nfkc-user": dict(byte_fallback=False, user_defined_symbols=["<sep>", "ab"]),
            "bytes-user": dict(byte_fallback=True, user_defined_symbols=["<sep>"],
                               normalization_rule_name="nmt_nfkc_cf", split_digits=True)}


@pytest.fixture(scope="module", params=list(SP_CASES))
def sp_model(request, corpus, tmp_path_factory):
    spm = pytest.importorskip("sentencepiece")
    prefix = tmp_path_factory.mktemp("sp") / request.param
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), model_type="bpe",
                                   vocab_size=400, character_coverage=0.98, minloglevel=2,
                                   **SP_CASES[request.param])
    path = f"{prefix}.model"
    return BPETokenizer.load(path), spm.SentencePieceProcessor(model_file=path), request.param


def test_sentencepiece_ids_and_decoding(sp_model):
    ours, sp, case = sp_model
    assert ours.vocab_size == sp.get_piece_size()
    for line in TEST_LINES + ["日本語の文 ⅷ ｆｕｌｌ", "<sep>x<sep> ab", "tab\there  "]:
        ids = sp.encode(line)
        assert ours.encode(line) == ids, (case, line)
        assert ours.decode(ids) == sp.decode(ids), (case, line)
    if case == "bytes":  # identity normalizer, whitespace kept: an exact round trip
        assert all(ours.decode(ours.encode(x)) == x for x in TEST_LINES if not x.startswith(" "))


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_sentencepiece_random_unicode(sp_model, text):
    ours, sp, case = sp_model
    assert ours.encode(text) == sp.encode(text)


def test_sentencepiece_as_llama_style_tokenizer_json(sp_model, tmp_path):
    """convert .model → tokenizer.json (Prepend + Replace, byte fallback): HF gives
    sentencepiece's ids; embedkit reads it back, and reads the Metaspace spelling as HF does."""
    tk = pytest.importorskip("tokenizers")
    ours, sp, case = sp_model
    out = tmp_path / "sp.json"
    if case != "bytes":  # nmt_nfkc removes extra whitespace: tokenizer.json cannot say so
        with pytest.raises(UsageError, match="remove_extra_whitespaces"):
            ours.export(out, "tokenizer.json")
        return
    ours.export(out, "tokenizer.json")
    hf = tk.Tokenizer.from_file(str(out))
    back = BPETokenizer.load(out)
    for line in TEST_LINES + ["  two leading", "日本語 ⅷ 🎉"]:
        assert hf.encode(line, add_special_tokens=False).ids == sp.encode(line), line
        assert back.encode(line) == sp.encode(line), line
    obj = json.loads(out.read_text(encoding="utf-8"))
    obj["normalizer"] = None
    obj["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                            "split": False}
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(obj), encoding="utf-8")
    hf, back = tk.Tokenizer.from_file(str(meta)), BPETokenizer.load(meta)
    for line in TEST_LINES + ["  two leading"]:  # Metaspace adds no ▁ before a leading space
        assert back.encode(line) == hf.encode(line, add_special_tokens=False).ids, line


def test_sentencepiece_refuses_unigram_truncated_and_garbage(corpus, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    prefix = tmp_path / "uni"
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=100,
                                   model_type="unigram", minloglevel=2)
    data = (tmp_path / "uni.model").read_bytes()
    with pytest.raises(InputError, match="Unigram model: only BPE models are supported"):
        BPETokenizer.load(tmp_path / "uni.model")
    (tmp_path / "cut.model").write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt sentencepiece model"):
        BPETokenizer.load(tmp_path / "cut.model")
    (tmp_path / "junk.model").write_bytes(b"\x00\x01\x02binary")
    r = run("bpe", "encode", "-t", tmp_path / "junk.model", input=b"x\n")
    assert r.returncode == 2 and b"not a sentencepiece BPE .model" in r.stderr


# ---- HF tokenizer.json -------------------------------------------------------------------------


def hf_train(kind, corpus, path, nfc=True):
    tk = pytest.importorskip("tokenizers")
    from tokenizers import AddedToken, Regex, models, normalizers, pre_tokenizers, trainers

    t = tk.Tokenizer(models.BPE(ignore_merges=kind == "split"))
    if kind == "bytelevel":
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        if nfc:
            t.normalizer = normalizers.NFC()
        t.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False, special_tokens=["<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train([str(corpus)], trainer)
    t.add_special_tokens([AddedToken("<|endoftext|>", special=True),
                          AddedToken("<sep>", lstrip=True, rstrip=True, special=True)])
    t.save(str(path))
    return t


@pytest.fixture(scope="module", params=["bytelevel", "split"])
def hf_pair(request, corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    hf = hf_train(request.param, corpus, path)
    return BPETokenizer.load(path), hf, path


def test_hf_tokenizer_json_ids(hf_pair):
    ours, hf, _ = hf_pair
    for line in TEST_LINES + ["x <sep> y", "<|endoftext|>tail", "e\u0301 café"]:
        ref = hf.encode(line, add_special_tokens=False).ids
        assert ours.encode(line) == ref, line


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_hf_tokenizer_json_random_unicode(hf_pair, text):
    ours, hf, _ = hf_pair
    assert ours.encode(text) == hf.encode(text, add_special_tokens=False).ids


def test_hf_legacy_string_merges(hf_pair, tmp_path):
    ours, hf, path = hf_pair
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["model"]["merges"] = [" ".join(m) for m in obj["model"]["merges"]]
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps(obj), encoding="utf-8")
    again = BPETokenizer.load(legacy)
    assert all(again.encode(x) == ours.encode(x) for x in TEST_LINES)


@pytest.mark.parametrize("pattern", ["gpt2", "cl100k"])
def test_embedkit_tokenizer_json_loads_in_hf_with_the_same_ids(corpus, tmp_path, pattern):
    tk = pytest.importorskip("tokenizers")
    tok = BPETokenizer.train([corpus], 600, special_tokens=["<|endoftext|>"],
                             pattern=None if pattern == "gpt2" else CL100K_PATTERN)
    out = tmp_path / "tokenizer.json"
    r = run("bpe", "convert", _save(tok, tmp_path), out)
    assert r.returncode == 0, r.stderr
    hf = tk.Tokenizer.from_file(str(out))
    for line in TEST_LINES + ["a<|endoftext|>b"]:
        assert hf.encode(line, add_special_tokens=False).ids == tok.encode(line), line
        assert hf.decode(tok.encode(line), skip_special_tokens=False) == line
    assert BPETokenizer.load(out).encode(TEXT) == tok.encode(TEXT)


def _save(tok, tmp_path):
    d = tmp_path / "tokdir"
    tok.save(d)
    return d


def test_learn_with_cl100k_pattern_matches_hf_trainer(corpus, tmp_path):
    """Same pre-tokenizer, same counts → the same merges as HF's BpeTrainer."""
    hf_train("split", corpus, tmp_path / "hf.json", nfc=False)
    obj = json.loads((tmp_path / "hf.json").read_text(encoding="utf-8"))
    r = run("bpe", "learn", corpus, "-o", tmp_path / "tok", "--vocab-size", 600, "--pattern",
            LLAMA3_PATTERN, "--special-token", "<s>", "--quiet", "--min-frequency", 1)
    assert r.returncode == 0, r.stderr
    ours = BPETokenizer.load(tmp_path / "tok")
    assert ours.merges == [tuple(m) for m in obj["model"]["merges"]]


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(version="2.0"), "version '2.0' is not supported"),
    (lambda o: o["model"].update(type="WordPiece"), "WordPiece models are not supported"),
    (lambda o: o["model"].update(type="Unigram"), "Unigram models are not supported"),
    (lambda o: o["model"]["merges"].insert(3, ["Ġzzqq", "x"]), "unknown symbol 'Ġzzqq'"),
    (lambda o: o.update(pre_tokenizer={"type": "Whitespace"}), "pre_tokenizer Whitespace"),
    (lambda o: o.update(normalizer={"type": "Lowercase"}), "normalizer Lowercase"),
])
def test_bad_tokenizer_json(hf_bytelevel, tmp_path, change, message):
    obj = json.loads(hf_bytelevel.read_text(encoding="utf-8"))
    change(obj)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError) as e:
        BPETokenizer.load(bad)
    assert message in str(e.value)
    if "unknown symbol" in message:  # the line of the bad merge in the file
        line = next(n for n, t in enumerate(bad.read_text().split("\n"), 1) if "Ġzzqq" in t)
        assert e.value.line in (line - 1, line)
        r = run("bpe", "convert", bad, tmp_path / "out.tiktoken")
        err = r.stderr.decode()
        assert r.returncode == 2 and err.count("\n") == 1 and f"bad.json:{e.value.line}:" in err
        assert not (tmp_path / "out.tiktoken").exists()


@pytest.fixture(scope="module")
def hf_bytelevel(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("hfb") / "tokenizer.json"
    hf_train("bytelevel", corpus, path)
    return path


# ---- CLI: --count, --pattern, convert ------------------------------------------------------------


def test_count_like_wc_and_json(learned, corpus, tmp_path):
    d = _save(learned, tmp_path)
    other = tmp_path / "b.txt"
    other.write_text("hello world\nsecond line\n", encoding="utf-8")
    r = run("bpe", "encode", "-t", d, "--count", corpus, other, "--threads", 2)
    assert r.returncode == 0, r.stderr
    n1 = sum(len(learned.encode(x)) for x in LINES)
    n2 = len(learned.encode("hello world")) + len(learned.encode("second line"))
    w = len(str(n1 + n2))
    assert r.stdout.decode() == f"{n1:>{w}} {corpus}\n{n2:>{w}} {other}\n{n1 + n2:>{w}} total\n"
    r = run("bpe", "encode", "-t", d, "--count", "--json", other)
    assert json.loads(r.stdout) == {"files": [{"file": str(other), "tokens": n2}], "total": n2}


def test_bad_pattern_and_option_combinations(learned, corpus, tmp_path):
    d = _save(learned, tmp_path)
    r = run("bpe", "encode", "-t", d, "--pattern", "([a-z", corpus)
    assert r.returncode == 2 and r.stderr.startswith(b"embedkit: error: --pattern: invalid regex")
    assert r.stderr.count(b"\n") == 1 and r.stdout == b""
    r = run("bpe", "learn", corpus, "-o", tmp_path / "new", "--vocab-size", 300,
            "--pattern", "a|", "--quiet")
    assert r.returncode == 2 and b"matches the empty string" in r.stderr
    assert not (tmp_path / "new").exists()
    with pytest.raises(UsageError, match="byte-level"):
        BPETokenizer.train([corpus], 300, byte_level=False, pattern=CL100K_PATTERN)


def test_pattern_name_table_matches_tiktoken_source():
    src = pytest.importorskip("tiktoken_ext.openai_public")
    import inspect
    import re

    text = inspect.getsource(src)
    assert R50K_PATTERN in text and CL100K_PATTERN in text
    body = inspect.getsource(src.o200k_base)
    assert "|".join(re.findall(r'r"""(.*?)"""', body)) == O200K_PATTERN


def test_r50k_and_gpt2_patterns_split_alike():
    """Known r50k files use the compiled GPT-2 scanner: both regexes cut text the same."""
    import regex

    a, b = regex.compile(GPT2_PATTERN), regex.compile(R50K_PATTERN)
    rng = random.Random(3)
    alphabet = "ab Z9'\t\n\r  .,é東🎉\u00a0\u2028"
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert a.findall(s) == b.findall(s), repr(s)
    for line in TEST_LINES:
        assert a.findall(line) == b.findall(line)


def test_convert_every_target_round_trips(learned, tmp_path):
    d = _save(learned, tmp_path)
    for target, name in [("tokenizer.json", "t.json"), ("tiktoken", "t.tiktoken"), ("hf-dir", "dir")]:
        r = run("bpe", "convert", d, tmp_path / name)
        assert r.returncode == 0 and f"as {target}".encode() in r.stdout, r.stderr
    again = [BPETokenizer.load(tmp_path / "t.json"), BPETokenizer.load(tmp_path / "dir"),
             BPETokenizer.load(tmp_path / "t.tiktoken", pattern="gpt2")]
    plain = [x.replace("<|endoftext|>", "") for x in TEST_LINES]  # .tiktoken holds no specials
    for t in again:
        assert [t.encode(x) for x in plain] == [learned.encode(x) for x in plain]
    word = BPETokenizer.train(LINES, 200, byte_level=False)
    with pytest.raises(UsageError, match="needs a byte-level vocabulary"):
        word.export(tmp_path / "w.json", "tokenizer.json")


def test_cache_is_used_and_corrupt_cache_is_ignored(learned, tmp_path, monkeypatch):
    from embedkit.bpe.formats import cache, detect

    monkeypatch.setenv("EMBEDKIT_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr(detect, "_CACHE_MIN_BYTES", 0)
    out = tmp_path / "t.json"
    learned.export(out, "tokenizer.json")
    first = BPETokenizer.load(out)
    entries = list((tmp_path / "c").iterdir())
    assert len(entries) == 1
    second = BPETokenizer.load(out)
    assert second._merges == first._merges and second._tokens == first._tokens
    entries[0].write_bytes(b"EMBEDKIT garbage")
    assert BPETokenizer.load(out)._merges == first._merges
    monkeypatch.setenv("EMBEDKIT_CACHE_DIR", "")
    assert cache.directory() is None
