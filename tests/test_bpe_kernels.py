"""The BPE kernels against slow, obvious Python references, and exact merges on tiny corpora."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedkit.bpe.kernels import encode_words, merge_table
from embedkit.bpe.pretokenize import (GPT2_BLOCK_PATTERN, GPT2_JOINED_PATTERN, GPT2_PATTERN,
                                      split_words)
from embedkit.bpe.trainer import learn


def reference_learn(counts: dict[str, int], vocab_size: int, min_frequency: int, alphabet: list[str]):
    """Recount every pair after every merge; best = highest count, then smallest (left, right) ids."""
    tokens = list(alphabet)
    ids = {t: i for i, t in enumerate(tokens)}
    words = {w: [ids[c] for c in w] for w in counts}
    merges = []
    while len(tokens) < vocab_size:
        pairs = Counter()
        for w, syms in words.items():
            for a, b in zip(syms, syms[1:]):
                pairs[a, b] += counts[w]
        if not pairs:
            break
        (a, b), c = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if c < min_frequency:
            break
        s = tokens[a] + tokens[b]
        if s not in ids:
            ids[s] = len(tokens)
            tokens.append(s)
        merges.append((a, b))
        for w, syms in words.items():
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(ids[s])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[w] = out
    return tokens, merges


def reference_encode(word: list[int], ranks: dict[tuple[int, int], int], new: dict) -> list[int]:
    """GPT-2's ``bpe()``: merge the lowest-ranked adjacent pair everywhere, left to right, repeat."""
    word = list(word)
    while len(word) > 1:
        pairs = [(ranks.get(p, 1 << 60), p) for p in zip(word, word[1:])]
        r, (a, b) = min(pairs)
        if r == 1 << 60:
            break
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                out.append(new[a, b])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


def _byte_level_words(counts):
    from embedkit.bpe.pretokenize import to_symbols

    return Counter({to_symbols(w.encode()): c for w, c in counts.items()})


def test_hand_checked_merges():
    # words: "ab" x1, " ab" x2, "abc" x1 → (a,b)=4 first, then (Ġ,ab)=2; (ab,c)=1 < min_frequency
    counts = Counter(split_words("ab ab ab\nabc", GPT2_BLOCK_PATTERN))
    assert counts == {"ab": 1, " ab": 2, "\n": 1, "abc": 1}
    tokens, merges = learn(counts, 300)
    assert [(tokens[a], tokens[b]) for a, b in merges] == [("a", "b"), ("Ġ", "ab")]
    assert tokens[256:] == ["ab", "Ġab"] and len(tokens) == 258


def test_ties_go_to_the_smallest_pair_of_ids():
    # every pair occurs once; letters have smaller ids than Ġ (code point order)
    tokens, merges = learn(Counter({"xy": 1, " zw": 1}), 300, min_frequency=1)
    assert [(tokens[a], tokens[b]) for a, b in merges] == [("x", "y"), ("z", "w"), ("Ġ", "zw")]


def test_vocab_size_stops_learning_and_specials_come_first():
    tokens, merges = learn(Counter({"aaaa": 5, "abab": 3}), 258, special_tokens=["<s>"])
    assert tokens[0] == "<s>" and len(tokens) == 258 and len(merges) == 1


def test_overlapping_pairs_merge_left_to_right():
    # "aaa" → "aa a" (not "a aa"), "aaaaa" → "aa aa a"; then (aa, a) wins over (aa, aa)
    tokens, merges = learn(Counter({"aaa": 3, "aaaaa": 1}), 300, min_frequency=1)
    ref_tokens, ref_merges = reference_learn({"aaa": 3, "aaaaa": 1}, 300, 1, tokens[:256])
    assert merges == ref_merges and tokens == ref_tokens
    assert [(tokens[a], tokens[b]) for a, b in merges][:2] == [("a", "a"), ("aa", "a")]


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_reference_on_random_corpora(seed):
    rng = random.Random(seed)
    letters = "abcde" if seed % 2 else "ab"
    words = Counter()
    for _ in range(60):
        w = "".join(rng.choice(letters) for _ in range(rng.randint(1, 9)))
        words[(" " if rng.random() < 0.4 else "") + w] += rng.randint(1, 5)
    tokens, merges = learn(words, 256 + 40, min_frequency=1 + seed % 3)
    sym_words = _byte_level_words(words)
    ref_tokens, ref_merges = reference_learn(sym_words, 256 + 40, 1 + seed % 3, tokens[:256])
    assert merges == ref_merges
    assert tokens == ref_tokens


def test_merge_result_with_existing_text_reuses_its_id():
    # as in HF: a merge whose text is already a token (here a special token) reuses that id
    tokens, merges = learn(Counter({"abab": 3, "ab": 1}), 300, special_tokens=["ab"])
    assert [(tokens[a], tokens[b]) for a, b in merges] == [("a", "b"), ("ab", "ab")]
    assert merges[1] == (0, 0) and tokens[0] == "ab" and tokens[257:] == ["abab"]
    ref = reference_learn(_byte_level_words(Counter({"abab": 3, "ab": 1})), 300, 2, tokens[:257])
    assert ref == (tokens, merges)


@pytest.mark.parametrize("seed", range(4))
def test_encode_kernel_matches_gpt2_reference(seed):
    rng = random.Random(seed)
    words = Counter("".join(rng.choice("abc") for _ in range(rng.randint(1, 12))) for _ in range(200))
    tokens, merges = learn(words, 256 + 30, min_frequency=1)
    ids = {t: i for i, t in enumerate(tokens)}
    new = np.array([ids[tokens[a] + tokens[b]] for a, b in merges], np.int32)
    left = np.array([a for a, _ in merges], np.int32)
    right = np.array([b for _, b in merges], np.int32)
    table, keys = merge_table(left, right, new)
    ranks = {m: r for r, m in enumerate(merges)}
    newd = {m: int(n) for m, n in zip(merges, new)}
    tests = ["".join(rng.choice("abc") for _ in range(rng.randint(1, 40))) for _ in range(100)]
    syms = [[ids[c] for c in w] for w in tests]
    flat = np.array([s for w in syms for s in w], np.int32)
    wstart = np.concatenate([[0], np.cumsum([len(w) for w in syms])]).astype(np.int64)
    out, ostart = encode_words(flat, wstart, table, keys, new)
    for k, w in enumerate(syms):
        assert out[ostart[k]:ostart[k + 1]].tolist() == reference_encode(w, ranks, newd)


def test_block_pattern_splits_like_line_by_line():
    import regex

    rng = random.Random(0)
    pat = regex.compile(GPT2_PATTERN)
    for _ in range(2000):
        text = "".join(rng.choice([" ", "\n", "\t", "a", "1", ".", "\r", "'", "s", "é"])
                       for _ in range(rng.randint(0, 14)))
        per_line = [w for line in regex.split(r"(?<=\n)", text) if line for w in pat.findall(line)]
        assert split_words(text, GPT2_BLOCK_PATTERN) == per_line, repr(text)


def test_joined_pattern_splits_like_text_by_text():
    import regex

    rng = random.Random(1)
    pat = regex.compile(GPT2_PATTERN)
    alphabet = [" ", "\n", "\t", "a", "1", ".", "\r", "'", "s", "re", "ll", "é", "\u00a0", "\x85"]
    for _ in range(3000):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
                 for _ in range(rng.randint(1, 4))]
        expect = []
        for k, t in enumerate(texts):
            expect += (["\x00"] if k else []) + pat.findall(t)
        assert split_words("\x00".join(texts), GPT2_JOINED_PATTERN) == expect, texts


SCAN_ALPHABET = [" ", " ", " ", "\n", "\t", "a", "b", "Z", "1", "\u0663", ".", "!", "\r", "\u00a0",
                 "'", "s", "t", "m", "d", "l", "r", "v", "e", "é", "e\u0301", "\x0b", "\u2028", "'re",
                 "'ll", "'ve", "\x85", "\x1c", "\u3000", "日本", "🙂", "\udc80", "\udcff", "\x00"]


def test_compiled_scanner_counts_the_block_pattern_words():
    from embedkit.bpe.scanner import WordCounter

    rng = random.Random(2)
    for _ in range(5000):
        text = "".join(rng.choice(SCAN_ALPHABET) for _ in range(rng.randint(0, 16)))
        wc = WordCounter()
        wc.add(text)
        wc.add(text[::-1])
        expect = Counter(split_words(text, GPT2_BLOCK_PATTERN) + split_words(text[::-1], GPT2_BLOCK_PATTERN))
        assert wc.counter() == expect, repr(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_compiled_scanner_on_any_text(text):
    from embedkit.bpe.scanner import WordCounter

    wc = WordCounter()
    wc.add(text)
    assert wc.counter() == Counter(split_words(text, GPT2_BLOCK_PATTERN))


def test_compiled_scanner_grows_its_table():
    from embedkit.bpe.scanner import WordCounter

    words = [f" w{i}x" for i in range(100_000)]  # past the initial 32k words and 256k code points
    wc = WordCounter()
    wc.add("".join(words))
    wc.add("".join(words[:10]))
    expect = Counter(split_words("".join(words), GPT2_BLOCK_PATTERN))
    expect.update(split_words("".join(words[:10]), GPT2_BLOCK_PATTERN))
    assert wc.counter() == expect


def test_table_symbols_and_learning_equal_the_string_path(tmp_path):
    from embedkit.bpe.count import count_table, count_words
    from embedkit.bpe.trainer import word_bytes

    rng = random.Random(4)
    lines = ["".join(rng.choice(SCAN_ALPHABET[:-1]) for _ in range(rng.randint(0, 30))) for _ in range(2000)]
    path = tmp_path / "c.txt"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\xed\xa0\x80 \xc3")
    table = count_table(path, threads=2)
    words = list(table.counter())
    lut = np.arange(7, 7 + 256, dtype=np.int32)
    sym, wstart = table.symbols(lut)
    assert wstart[-1] == len(sym) and len(wstart) == len(words) + 1
    for k, w in enumerate(words):
        assert sym[wstart[k]:wstart[k + 1]].tolist() == [7 + b for b in word_bytes(w)], repr(w)
    for vocab_size in (300, 600):
        assert learn(table, vocab_size) == learn(count_words(path), vocab_size)
        assert learn(table, vocab_size, special_tokens=["<s>"]) == \
            learn(count_words(path), vocab_size, special_tokens=["<s>"])


def test_char_classes_cache_is_rebuilt_when_corrupt(monkeypatch, tmp_path):
    from pathlib import Path

    import embedkit.bpe.scanner as scanner

    good = scanner.char_classes()
    cache = next(Path(scanner.__file__).parent.joinpath("__pycache__").glob("charclass-*.npy"))
    saved = cache.read_bytes()
    try:
        cache.write_bytes(b"garbage")
        scanner.char_classes.cache_clear()
        assert np.array_equal(scanner.char_classes(), good)
        assert cache.read_bytes() == saved  # written back whole
    finally:
        cache.write_bytes(saved)
        scanner.char_classes.cache_clear()
    assert good[ord("a")] == scanner.LETTER and good[ord("٣")] == scanner.NUMBER
    assert good[0x2028] == scanner.SPACE and good[ord("'")] == scanner.OTHER


def test_count_words_on_files_threads_and_blocks_agree(tmp_path, monkeypatch):
    import embedkit.bpe.count as count

    rng = random.Random(3)
    alphabet = [c for c in SCAN_ALPHABET if c not in ("\r", "\x00")]  # CR: only in CRLF endings
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    raw = "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\xff\xfe tail"
    path = tmp_path / "c.txt"
    path.write_bytes(raw)
    text = raw.decode("utf-8", "surrogateescape")  # byte-level learning keeps CRLF as it is
    expect = Counter(split_words(text, GPT2_BLOCK_PATTERN))
    monkeypatch.setattr(count, "COMPILED_JOB_BYTES", 4096)
    assert count.count_words(path, threads=1) == expect
    assert count.count_words([path, path], threads=3) == expect + expect
    lower = Counter(split_words(text.lower(), GPT2_BLOCK_PATTERN))
    assert count.count_words(path, threads=2, lowercase=True) == lower


def test_count_words_on_texts_splits_each_text_on_its_own():
    from embedkit.bpe.count import count_words

    for texts in (["ab ab", " y\n", "", "z  "], ["ab ab", "a\x00b  x", " y\n"]):  # NUL: text by text
        expect = Counter(w for t in texts for w in split_words(t, GPT2_PATTERN))
        assert count_words(texts) == expect


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24), st.text(max_size=8))
def test_byte_symbols_round_trip_and_refuse_other_characters(raw, text):
    from embedkit.bpe.pretokenize import bytes_to_unicode, from_symbols, to_symbols

    syms = bytes_to_unicode()
    assert to_symbols(raw) == "".join(syms[b] for b in raw)
    assert from_symbols(to_symbols(raw)) == raw
    back = {c: b for b, c in enumerate(syms)}
    want = bytes(back[c] for c in text) if all(c in back for c in text) else None
    assert from_symbols(text) == want
    assert from_symbols(" ") is None and from_symbols("\xad") is None and from_symbols("Ġ") == b" "
