"""Pre-tokenization: how text is cut into words before BPE, and GPT-2's byte ↔ symbol alphabet.

Byte-level mode uses GPT-2's regex, so a word never spans two pre-tokens and every byte has a
printable stand-in symbol (space → ``Ġ``, ``\\n`` → ``Ċ``), which is what ``vocab.json`` and
``merges.txt`` hold. Word mode splits on whitespace, as subword-nmt does.
"""
from __future__ import annotations

import functools

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# The same split for a block of many lines: whitespace runs stop after each "\n", so a block
# yields exactly the words its lines would yield one by one (HF tokenizers trains line by line,
# line ending included). Only the two whitespace alternatives can cross a line ending.
GPT2_BLOCK_PATTERN = GPT2_PATTERN[:GPT2_PATTERN.index(r"|\s+(?!\S)")] + \
    r"|[^\S\n]*\n|[^\S\n]+(?!\S)|[^\S\n]+"

# The same split for many texts joined by NUL: NUL is a token of its own that every other
# alternative stops at, so one regex call over a batch yields each text's words, NUL between
# texts — about twice as fast as one call per line. (Only for texts without NUL.)
LINE_SEP = "\x00"
GPT2_JOINED_PATTERN = r"""\x00| ?\p{L}+| ?\p{N}+|'(?:s|t|re|ve|m|ll|d)| ?[^\s\p{L}\p{N}\x00]+""" \
    r"""|\s+(?![^\s\x00])|\s+"""

WHITESPACE = "whitespace"

# tiktoken's published pre-tokenizers (``tiktoken_ext/openai_public.py``); "gpt2" is HF's
# spelling of GPT-2's, which the compiled scanner implements (same words as r50k's on any text).
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+""" \
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+"""])
PATTERNS = {"gpt2": GPT2_PATTERN, "r50k": R50K_PATTERN, "p50k": R50K_PATTERN,
            "cl100k": CL100K_PATTERN, "o200k": O200K_PATTERN}
WHOLE = r"(?s).+"  # no pre-tokenizer: the whole text is one word (HF ByteLevel, use_regex false)


def resolve_pattern(name: str, where: str = "--pattern") -> str:
    """A published pattern's name, or a regex (checked here so a typo fails before any work)."""
    if name in PATTERNS:
        return PATTERNS[name]
    import regex

    try:
        regex.compile(name)
    except regex.error as e:
        from ..errors import UsageError

        raise UsageError(f"{where}: invalid regex {name[:60]!r}: {e}") from None
    if regex.compile(name).match(""):
        from ..errors import UsageError

        raise UsageError(f"{where}: the regex {name[:60]!r} matches the empty string")
    return name


@functools.lru_cache(maxsize=None)
def compiled(pattern: str):
    import regex

    return regex.compile(pattern)


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> tuple[str, ...]:
    """GPT-2's map from each byte to a printable character (``encoder.py::bytes_to_unicode``)."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return tuple(chr(table[b]) for b in range(256))


@functools.lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in enumerate(bytes_to_unicode())}


def byte_alphabet() -> list[str]:
    """The 256 byte symbols in code-point order: the order HF's trainer gives them ids."""
    return sorted(bytes_to_unicode())


@functools.lru_cache(maxsize=1)
def _translations() -> tuple[dict[int, str], dict[int, int]]:
    """``str.translate`` tables: byte value → its symbol, and symbol → the character of its byte
    value, with every other character of U+0000..U+00FF sent to U+FFFF (so that, like any
    character past U+00FF, it fails the Latin-1 encoding that ends ``from_symbols``)."""
    syms = bytes_to_unicode()
    back = {ord(c): b for b, c in enumerate(syms)}
    for c in range(256):
        back.setdefault(c, 0xFFFF)
    return dict(enumerate(syms)), back


def to_symbols(raw: bytes) -> str:
    """Bytes → the string of their byte-level symbols (``b' a'`` → ``'Ġa'``)."""
    return raw.decode("latin-1").translate(_translations()[0])


def from_symbols(text: str) -> bytes | None:
    """The inverse of :func:`to_symbols`; None when ``text`` has a character outside the alphabet."""
    try:
        return text.translate(_translations()[1]).encode("latin-1")
    except UnicodeEncodeError:
        return None


def split_words(text: str, pattern: str, gaps: bool = False) -> list[str]:
    """Pre-tokenize ``text``: the regex's matches, or whitespace-separated words. ``gaps``: text
    no match covers is a word too (HF ``Split``, behaviour Isolated); tiktoken drops it."""
    if pattern == WHITESPACE:
        return text.split()
    words = compiled(pattern).findall(text)
    if gaps and sum(map(len, words)) != len(text):
        words, at = [], 0
        for m in compiled(pattern).finditer(text):
            if m.start() > at:
                words.append(text[at:m.start()])
            words.append(m.group())
            at = m.end()
        if at < len(text):
            words.append(text[at:])
    return words
