"""tiktoken rank files: ``.tiktoken`` (``base64(token bytes) rank`` a line) and tiktoken-style
JSON such as Mistral's tekken files (``config.pattern`` + ``vocab`` of ``{rank, token_bytes}``).

A ``.tiktoken`` file holds neither the pre-tokenizer nor the special tokens: the published
files are recognised by sha256 (``KNOWN``), others need ``--pattern``. tiktoken looks a whole
pre-token up first (``ignore_merges``), then merges by rank; text that spells a special token is
ordinary text unless special tokens are allowed.
"""
from __future__ import annotations

import base64
import binascii

from ...errors import InputError
from ..pretokenize import PATTERNS, bytes_to_unicode, from_symbols
from . import Parts, reserved
from .ranks import derive_merges

_EOT, _FP, _FM, _FS, _EOP = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                             "<|endofprompt|>")
# sha256 of the published files (tiktoken_ext/openai_public.py) → name, pattern, special tokens
KNOWN = {
    "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930":
        ("r50k_base", "r50k", {_EOT: 50256}),
    "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069":
        ("p50k_base", "p50k", {_EOT: 50256}),
    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7":
        ("cl100k_base", "cl100k", {_EOT: 100257, _FP: 100258, _FM: 100259, _FS: 100260,
                                   _EOP: 100276}),
    "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d":
        ("o200k_base", "o200k", {_EOT: 199999, _EOP: 200018}),
}


def parse_ranks(text: str, where) -> dict[bytes, int]:
    """``.tiktoken`` text → {token bytes: rank}; bad base64, bad lines, repeats name their line."""
    ranks: dict[bytes, int] = {}
    seen: dict[int, int] = {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise InputError(where, f"bad line {line[:40]!r}: expected 'base64-token rank'", n)
        try:
            tok = binascii.a2b_base64(parts[0], strict_mode=True)
        except (binascii.Error, ValueError):
            raise InputError(where, f"not base64: {parts[0][:40]!r}", n) from None
        r = int(parts[1])
        if not tok:
            raise InputError(where, "empty token", n)
        if r in seen:
            raise InputError(where, f"duplicate rank {r} (also on line {seen[r]})", n)
        if tok in ranks:
            raise InputError(where, f"duplicate token {parts[0]!r} (ranks {ranks[tok]} and {r})", n)
        seen[r] = n
        ranks[tok] = r
    if not ranks:
        raise InputError(where, "empty .tiktoken file: no tokens")
    return ranks


def parts_from_ranks(ranks: dict[bytes, int], specials: dict[str, int], pattern: str,
                     source: dict, where) -> Parts:
    """Byte-level Parts: token id = rank, specials at their ids, holes filled with placeholders."""
    from .. import files

    used = set(ranks.values())
    for s, i in specials.items():
        if i in used:
            raise InputError(where, f"special token {s!r} has id {i}, which a token's rank uses")
    n = max(list(ranks.values()) + list(specials.values())) + 1
    tokens: list[str | None] = [None] * n
    table = {b: ord(c) for b, c in enumerate(bytes_to_unicode())}
    for tok, r in ranks.items():
        tokens[r] = tok.decode("latin-1").translate(table)  # = to_symbols(tok), faster
    for s, i in specials.items():
        tokens[i] = s
    holes = [i for i, t in enumerate(tokens) if t is None]
    for i in holes:
        tokens[i] = reserved(i)
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    merges = derive_merges([t for t, _ in by_rank], [r for _, r in by_rank], False)
    settings = files.settings_for(True, special_tokens=list(specials))
    settings.update({"pattern": pattern, "ignore_merges": True, "match_special": False,
                     "reserved_ids": holes, "source": source})
    return Parts(tokens, merges, settings)  # type: ignore[arg-type]


def read(text: str, sha: str, where, pattern: str | None) -> Parts:
    ranks = parse_ranks(text, where)
    name, pat, specials = KNOWN.get(sha, (None, None, {}))
    if pattern is None:
        if pat is None:
            raise InputError(where, "a .tiktoken file holds no pre-tokenizer: give --pattern "
                                    "(r50k, p50k, cl100k, o200k or a regex)")
        pattern = PATTERNS["gpt2"] if pat in ("r50k", "p50k") else PATTERNS[pat]
    return parts_from_ranks(ranks, specials, pattern, {"kind": "tiktoken", "name": name}, where)


def read_tekken(obj: dict, where, pattern: str | None) -> Parts:
    """Mistral's tekken JSON: ids = rank + the number of special ids; the vocabulary is cut to
    ``default_vocab_size`` ids, as ``mistral_common``'s ``Tekkenizer`` does."""
    config, vocab = obj.get("config"), obj.get("vocab")
    if not isinstance(config, dict) or not isinstance(vocab, list):
        raise InputError(where, "not a tekken file: expected \"config\" and a \"vocab\" list")
    try:
        n_special = int(config.get("default_num_special_tokens", 0))
        size = int(config.get("default_vocab_size", n_special + len(vocab)))
        pat = pattern or config["pattern"]
        ranks: dict[bytes, int] = {}
        for k, e in enumerate(vocab):
            tok = base64.b64decode(e["token_bytes"], validate=True)
            r = int(e["rank"])
            if tok in ranks:
                raise InputError(where, f"vocab entry {k}: duplicate token {e['token_bytes']!r}")
            ranks[tok] = r
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        raise InputError(where, f"not a tekken file: bad config or vocab entry ({e})") from None
    if len(set(ranks.values())) != len(ranks):
        raise InputError(where, "duplicate ranks in vocab")
    keep = {t: r + n_special for t, r in ranks.items() if r < size - n_special}
    names = {}
    for e in obj.get("special_tokens") or []:
        if isinstance(e, dict) and isinstance(e.get("rank"), int) and isinstance(e.get("token_str"), str):
            names[e["rank"]] = e["token_str"]
    specials = {names.get(i, f"<SPECIAL_{i}>"): i for i in range(n_special)}
    return parts_from_ranks(keep, specials, pat, {"kind": "tekken",
                                                  "version": config.get("version")}, where)


def write(tokens: list[str], special: set[str], reserved_ids: set[int]) -> str:
    """``.tiktoken`` text: every token that is neither special nor a placeholder, rank = id."""
    lines = []
    for i, t in enumerate(tokens):
        if t in special or i in reserved_ids:
            continue
        b = from_symbols(t)
        if b is None:
            raise ValueError(t)
        lines.append(f"{base64.b64encode(b).decode()} {i}")
    return "\n".join(lines) + "\n"
