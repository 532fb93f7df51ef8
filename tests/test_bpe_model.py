"""BPETokenizer: exact round trips, HF tokenizers parity both ways, files, word mode, subword-nmt."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from embedkit import BPETokenizer
from embedkit.errors import InputError, UsageError

TEXT = ("The quick brown fox jumps over the lazy dog. It's 2024, and the dogs' owners aren't amused!\n"
        "Ünïcödé wörds: naïve café, 東京は大きい都市です。 Emoji 🎉🎉 and tabs\tand  double  spaces.\n"
        "    indented line with trailing spaces   \n"
        "Numbers 123 4567 89, symbols #$%&*() and a run-on-word-with-hyphens.\n")


def corpus_lines(n=40, seed=0):
    rng = random.Random(seed)
    words = TEXT.split(" ")
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))) for _ in range(n)]


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(corpus_lines(300), 400, special_tokens=["<|endoftext|>"])


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "corpus.txt"
    path.write_text("\n".join(corpus_lines(400, seed=1)) + "\n", encoding="utf-8")
    return path


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_any_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_round_trip_any_bytes(tok, raw):
    text = raw.decode("utf-8", "surrogateescape")  # how the CLI reads invalid UTF-8
    assert tok.decode_bytes(tok.encode(text)) == raw


def test_special_tokens_are_kept_whole(tok):
    text = "one<|endoftext|>two"
    ids = tok.encode(text)
    assert tok.token_to_id("<|endoftext|>") == 0 and 0 in ids
    assert tok.decode(ids) == text
    assert tok.special_tokens == ["<|endoftext|>"] and tok.byte_level


def test_api_names(tok):
    assert tok.vocab_size == 400
    assert tok.id_to_token(tok.token_to_id("Ġthe")) == "Ġthe"
    assert tok.token_to_id("no such token") is None
    assert "".join(tok.tokens(" the dog")) == "ĠtheĠdog"
    assert tok.encode_batch(["a b", "", "c"]) == [tok.encode("a b"), [], tok.encode("c")]
    assert tok.count_tokens(["a b", "", TEXT]) == len(tok.encode("a b")) + len(tok.encode(TEXT)) > 3
    with pytest.raises(UsageError):
        tok.decode([10 ** 6])


def test_batch_paths_agree(tok, monkeypatch):
    import embedkit.bpe.model as model

    lines = corpus_lines(60, seed=9) + ["", "nul\x00inside", "new\nline", "  "]
    one_by_one = [tok.encode(line) for line in lines]
    fresh = BPETokenizer.from_files(tok.to_files())
    assert fresh.encode_batch(lines[:60]) == one_by_one[:60]  # one regex call for the batch
    assert fresh.encode_batch(lines) == one_by_one  # NUL inside: text by text
    assert BPETokenizer.from_files(tok.to_files()).encode_batch(lines, threads=2) == one_by_one
    as_text = tok.encode_to_text(lines[:60])
    assert as_text == [" ".join(map(str, ids)) for ids in one_by_one[:60]]
    monkeypatch.setattr(model, "_CACHE_LIMIT", 50)  # the cache is emptied when full
    small = BPETokenizer.from_files(tok.to_files())
    assert small.encode_batch(lines[:30]) == one_by_one[:30]
    assert small.encode_batch(lines) == one_by_one  # words cached by the first call were dropped
    assert small.encode_batch(["zebra quagga"]) == [tok.encode("zebra quagga")]
    plain = BPETokenizer.train(corpus_lines(100), 350)  # no special tokens: one joined regex call
    assert plain._joined_words(lines[:60]) is not None
    assert plain.encode_batch(lines[:60]) == [plain.encode(line) for line in lines[:60]]
    fresh = BPETokenizer.from_files(tok.to_files())
    names = [chr(97 + i // 26) + chr(97 + i % 26) for i in range(60)]  # 60 distinct words
    fresh.encode_batch([" ".join(names[:40])])
    fresh.encode_batch([" ".join(names[40:])])  # 40 cached + 20 new > 50: emptied first
    assert len(fresh._cache) == 20
    word = BPETokenizer.train(lines[:60], 300, byte_level=False, min_frequency=1)
    monkeypatch.setattr(model, "_CACHE_LIMIT", 10)
    assert word.encode_batch(lines[:60]) == [word.encode(line) for line in lines[:60]]
    word.encode_batch(["zebra quagga"])
    assert sorted(word._cache) == sorted(word._raw) == ["quagga", "zebra"]  # both caches emptied
    assert sorted(small._cache) == [" quagga", "zebra"]  # full: emptied before new words went in
    assert small.encode_to_text(lines[:60]) == as_text
    assert len(small._str_cache[True]) > 50
    assert small.encode_to_text(lines[:1]) == as_text[:1]
    assert len(small._str_cache[True]) <= 50  # emptied, then only line 0's words


def test_files_round_trip(tok, tmp_path):
    tok.save(tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["embedkit.json", "merges.txt", "vocab.json"]
    again = BPETokenizer.load(tmp_path / "t")
    assert again.to_files() == tok.to_files()
    assert BPETokenizer.from_files(tok.to_files()).encode(TEXT) == tok.encode(TEXT)
    merges = (tmp_path / "t" / "merges.txt").read_text(encoding="utf-8")
    assert merges.startswith("#version: 0.2\n") and merges.endswith("\n")
    tok.export(tmp_path / "hf", "hf-dir")
    assert BPETokenizer.load(tmp_path / "hf").to_files() == tok.to_files()
    tok.export(tmp_path / "t.json", "tokenizer.json")
    tok.export(tmp_path / "t.tiktoken", "tiktoken")
    assert BPETokenizer.load(tmp_path / "t.json").encode(TEXT) == tok.encode(TEXT)
    assert BPETokenizer.load(tmp_path / "t.tiktoken", pattern="gpt2").encode(TEXT) == tok.encode(TEXT)
    with pytest.raises(UsageError, match=r"unknown export format 'nope' \(tokenizer.json, tiktoken, hf-dir\)"):
        tok.export(tmp_path / "t.nope", "nope")


def test_learned_merges_equal_hf_trainer(corpus_file, tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    hf = tokenizers.ByteLevelBPETokenizer()
    hf.train([str(corpus_file)], vocab_size=600, min_frequency=2, show_progress=False)
    hf.save_model(str(tmp_path))
    ours = BPETokenizer.train([corpus_file], 600, threads=2)
    assert json.loads((tmp_path / "vocab.json").read_text()) == json.loads(ours.to_files()["vocab.json"])
    assert (tmp_path / "merges.txt").read_text() == ours.to_files()["merges.txt"]


def test_learned_merges_equal_hf_on_shared_corpus(shared_data, tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    src = (shared_data / "corpus" / "dev.txt").read_bytes()[:300_000]
    path = tmp_path / "head.txt"
    path.write_bytes(src[:src.rindex(b"\n") + 1])
    hf = tokenizers.ByteLevelBPETokenizer()
    hf.train([str(path)], vocab_size=2000, min_frequency=2, show_progress=False)
    hf.save_model(str(tmp_path))
    ours = BPETokenizer.train([path], 2000)
    assert (tmp_path / "merges.txt").read_text() == ours.to_files()["merges.txt"]


def test_ids_equal_hf_both_ways(tok, tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    plain = BPETokenizer.from_files({k: v for k, v in tok.to_files().items() if k != "embedkit.json"})
    plain.save(tmp_path / "t")
    hf = tokenizers.ByteLevelBPETokenizer(str(tmp_path / "t" / "vocab.json"),
                                          str(tmp_path / "t" / "merges.txt"))
    lines = corpus_lines(50, seed=7) + ["", " ", "\n\n x", "🎉 東京", "a\x00b\x7f\u2028c"]
    assert [e.ids for e in hf.encode_batch(lines)] == plain.encode_batch(lines)
    # HF-written files, loaded by embedkit (no embedkit.json: GPT-2 byte-level settings)
    hf.save_model(str(tmp_path))
    loaded = BPETokenizer.load(tmp_path)
    assert loaded.encode_batch(lines) == [e.ids for e in hf.encode_batch(lines)]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_ids_equal_hf_on_any_text(tok, text):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers not installed")
    files = tok.to_files()
    hf = tokenizers.models.BPE(json.loads(files["vocab.json"]),
                               [tuple(m.split(" ")) for m in files["merges.txt"].splitlines()[1:]])
    t = tokenizers.Tokenizer(hf)
    t.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.add_special_tokens(["<|endoftext|>"])
    assert t.encode(text).ids == tok.encode(text)


def test_bad_files(tok, tmp_path):
    d = tmp_path / "t"
    tok.save(d)
    merges = (d / "merges.txt").read_text(encoding="utf-8").split("\n")
    cases = {
        "merges.txt": [("\n".join(merges[:3] + ["Ġt"] + merges[4:]), "merges.txt:4: bad merge line"),
                       ("\n".join(merges[:3] + ["Ġt zzqq"] + merges[4:]),
                        "merges.txt:4: unknown symbol 'zzqq'"),
                       ("\n".join(merges[:2] + ["Ā ā"] + merges[3:]),
                        "merges.txt:3: merge result 'Āā' is not in vocab.json")],
        "vocab.json": [("{\"a\": 0, ", "vocab.json:1: invalid JSON"),
                       ("{\"a\": 0, \"b\": 0}", "id 0 is used twice"),
                       ("[1, 2]", "expected a non-empty JSON object")],
        "embedkit.json": [("{\"format\": \"other\"}", "not an embedkit BPE settings file")],
    }
    for name, variants in cases.items():
        good = (d / name).read_text(encoding="utf-8")
        for text, message in variants:
            (d / name).write_text(text, encoding="utf-8")
            with pytest.raises(InputError, match=message.replace("(", r"\(")):
                BPETokenizer.load(d)
        (d / name).write_text(good, encoding="utf-8")
    (d / "merges.txt").unlink()
    with pytest.raises(InputError, match="tokenizer folder has no merges.txt"):
        BPETokenizer.load(d)
    with pytest.raises(InputError, match="no such tokenizer folder"):
        BPETokenizer.load(tmp_path / "missing")


def test_settings_file_defaults_and_lying_fields():
    """embedkit.json: a field left out takes its mode's default; each lying field is one
    InputError naming it (not a crash in encode)."""
    from embedkit.bpe.files import parse_settings, settings_for
    from embedkit.bpe.pretokenize import GPT2_PATTERN, WHITESPACE

    assert settings_for(True) == {"format": "embedkit-bpe", "version": 1, "mode": "byte-level",
                                  "pattern": GPT2_PATTERN, "lowercase": False,
                                  "special_tokens": [], "end_of_word_suffix": None}
    assert settings_for(False, True, ["<s>"])["pattern"] == WHITESPACE
    assert parse_settings(None) == settings_for(True)
    head = {"format": "embedkit-bpe", "version": 1}
    for mode in ("byte-level", "word"):
        assert parse_settings(json.dumps({**head, "mode": mode})) == settings_for(mode == "byte-level")
    lies = [({"special_tokens": "<s>"}, "special_tokens must be a list of non-empty strings"),
            ({"special_tokens": ["<s>", ""]}, "special_tokens must be a list of non-empty strings"),
            ({"version": "1"}, "field 'version' must be an integer"),
            ({"lowercase": "yes"}, "field 'lowercase' must be true or false"),
            ({"end_of_word_suffix": 3}, "field 'end_of_word_suffix' must be a string or null"),
            ({"pattern": 5}, "field 'pattern' must be a regular expression string"),
            ({"pattern": "(a"}, "field 'pattern' is not a valid regular expression")]
    for field, message in lies:
        with pytest.raises(InputError, match=r"^embedkit\.json: " + message.replace("(", r"\(")):
            parse_settings(json.dumps({**head, "mode": "byte-level", **field}))


def test_vocab_size_below_alphabet_and_empty_corpus():
    with pytest.raises(UsageError, match="smaller than the base alphabet"):
        BPETokenizer.train(["some text"], 200)
    with pytest.raises(InputError, match="empty corpus"):
        BPETokenizer.train(["", ""], 300)
    with pytest.raises(InputError, match="empty corpus"):
        BPETokenizer.train(["  \n ", "\t"], 300, byte_level=False)
    for size in (0, "300", 300.0):
        with pytest.raises(UsageError, match=f"vocab size must be a positive integer, got {size!r}"):
            BPETokenizer.train(["some text"], size, byte_level=False)
    with pytest.raises(UsageError, match="threads must be >= 1, got 0"):
        BPETokenizer.train(["some text"], 300, threads=0)


def test_input_errors_reach_the_caller_from_the_worker_pool(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"ok\n" * 10 + b"bin\x00ary\n")
    for threads in (1, 2):
        with pytest.raises(InputError, match="is a folder"):
            BPETokenizer.train([tmp_path], 300, threads=threads)
        with pytest.raises(InputError, match=r"bad.txt:11: NUL byte"):
            BPETokenizer.train([tmp_path / "bad.txt"], 300, threads=threads)


def test_lowercase_keeps_special_tokens():
    tok = BPETokenizer.train(["Hello <EOS> World", "hello world"], 300, lowercase=True,
                             special_tokens=["<EOS>"], min_frequency=1)
    assert tok.tokens("HELLO<EOS>") == ["hello", "<EOS>"]


def test_parallel_counting_gives_the_same_tokenizer(corpus_file):
    one = BPETokenizer.train([corpus_file], 500, threads=1)
    two = BPETokenizer.train([corpus_file], 500, threads=2)
    lines = BPETokenizer.train(corpus_file.read_text(encoding="utf-8").splitlines(keepends=True), 500)
    assert one.to_files() == two.to_files() == lines.to_files()


def test_word_mode_hand_checked():
    tok = BPETokenizer.train(["low lower lowest", "low low newer"], 40, byte_level=False)
    # (lo, w</w>) and (w, e) both occur 3 times: the smaller ids win ('w' < 'lo', a merge result)
    assert tok.merges == [("l", "o"), ("w", "e"), ("lo", "w</w>"), ("lo", "we")]
    assert tok.subword_text(["lowest newest"]) == ["lowe@@ s@@ t n@@ e@@ we@@ s@@ t"]
    assert tok.decode(tok.encode("  low   lowest ")) == "low lowest"
    # unknown characters: <unk> inside a word, <unk></w> at its end; decoded as U+FFFD
    ids = tok.encode("lowz zz")
    assert [tok.id_to_token(i) for i in ids] == ["lo", "w", "<unk></w>", "<unk>", "<unk></w>"]
    assert tok.decode(ids) == "low\ufffd \ufffd\ufffd"
    assert tok.subword_text(["lowz"]) == ["lo@@ w@@ <unk>"]  # as the ids say (issue 9)
    special = BPETokenizer.train(["low lower <s> lowest", "low low <s>"], 300, byte_level=False,
                                 special_tokens=["<s>"], min_frequency=1)
    assert special.subword_text(["lowest <s> low"]) == ["lowest <s> low"]  # a special stays whole


@pytest.fixture(scope="module")
def word_tok():
    return BPETokenizer.train(corpus_lines(200), 300, byte_level=False)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,'!\n\t"))
def test_word_mode_round_trip_normalises_whitespace(word_tok, text):
    assert word_tok.decode(word_tok.encode(text)) == " ".join(text.split())


def test_subword_nmt_codes_round_trip_and_parity(tmp_path):
    tok = BPETokenizer.train(corpus_lines(200), 300, byte_level=False)
    codes = tok.to_codes()
    assert codes.startswith("#version: 0.2\n")
    lines = codes.splitlines()[1:]
    assert len(lines) == len(tok.merges) and all(len(ln.split(" ")) == 2 for ln in lines)
    assert any(ln.endswith("</w>") for ln in lines)  # word-final merges carry the marker
    (tmp_path / "codes").write_text(codes, encoding="utf-8")
    loaded = BPETokenizer.load(tmp_path / "codes")
    assert loaded.merges == tok.merges
    # subword-nmt splits on single spaces only: compare on single-spaced lines
    lines = [" ".join(line.split()) for line in corpus_lines(30, seed=3)] + ["x", "zq unseen ÿ"]
    # a learned vocabulary prints an unseen character as <unk> (as its id); codes, as apply-bpe
    expected = tok.subword_text(lines)
    assert expected[-1].endswith(" <unk>")
    assert loaded.subword_text(lines) == expected[:-1] + [expected[-1][:-len("<unk>")] + "ÿ"]
    apply_bpe = pytest.importorskip("subword_nmt.apply_bpe", reason="subword-nmt not installed")
    with open(tmp_path / "codes", encoding="utf-8") as f:
        ref = apply_bpe.BPE(f)
    assert [ref.process_line(line) for line in lines] == loaded.subword_text(lines)
    with pytest.raises(UsageError, match="needs a word-mode vocabulary"):
        BPETokenizer.train(["a b"], 300).to_codes()


def test_subword_nmt_learned_codes_load(tmp_path):
    learn_bpe = pytest.importorskip("subword_nmt.learn_bpe", reason="subword-nmt not installed")
    import io

    out = io.StringIO()
    learn_bpe.learn_bpe(io.StringIO("\n".join(corpus_lines(100))), out, 50, min_frequency=2)
    (tmp_path / "codes").write_text(out.getvalue(), encoding="utf-8")
    tok = BPETokenizer.load(tmp_path / "codes")
    assert len(tok.merges) == 50
    apply_bpe = pytest.importorskip("subword_nmt.apply_bpe")
    ref = apply_bpe.BPE(io.StringIO(out.getvalue()))
    lines = [" ".join(line.split()) for line in corpus_lines(20, seed=5)]
    assert [ref.process_line(line) for line in lines] == tok.subword_text(lines)
