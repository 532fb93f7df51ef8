"""HF ``tokenizer.json`` (``tokenizers``' single-file format), BPE models. Byte-level:
``ByteLevel`` (GPT-2's regex), or ``Split(regex)`` + ``ByteLevel(use_regex: false)`` (Llama-3,
Qwen2), an optional NFC normalizer. sentencepiece-style (Llama-2, Mistral): ``▁`` for spaces
by [Precompiled] + Prepend + Replace normalizers or a Metaspace pre-tokenizer, byte fallback.
Both: ``added_tokens`` with their flags; ``ignore_merges``; merges as ``"a b"`` strings or
``["a", "b"]`` pairs. Other models (WordPiece, Unigram, WordLevel) and other pre-tokenizers
are refused, naming what was found.
"""
from __future__ import annotations

import json
import re

from ...errors import InputError
from ..pretokenize import GPT2_PATTERN, WHOLE
from . import Parts, reserved
from .hf_pair import check_pair

FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")


def _merge_line(text: str, k: int) -> int | None:
    """Line of the k-th merge in the file text (only computed for an error message)."""
    at = text.find('"merges"')
    if at < 0:
        return None
    item = re.compile(r'\[\s*"(?:[^"\\]|\\.)*"\s*,\s*"(?:[^"\\]|\\.)*"\s*\]|"(?:[^"\\]|\\.)*"')
    start = text.find("[", at)
    for n, m in enumerate(item.finditer(text, start + 1)):
        if n == k:
            return text.count("\n", 0, m.start()) + 1
    return None


def _pre_tokenizer(pt, where) -> tuple[str, bool]:
    """(pattern, add_prefix_space) of the supported byte-level pre-tokenizers."""
    if not isinstance(pt, dict):
        raise InputError(where, f"pre_tokenizer {pt!r} is not supported: a byte-level BPE "
                                "(ByteLevel, or Split + ByteLevel) is needed")
    steps = pt.get("pretokenizers") if pt.get("type") == "Sequence" else [pt]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise InputError(where, "bad pre_tokenizer Sequence")
    kinds = [s.get("type") for s in steps]
    if kinds[-1] != "ByteLevel" or kinds.count("ByteLevel") != 1 or \
            any(k != "Split" for k in kinds[:-1]) or len(kinds) > 2:
        raise InputError(where, f"pre_tokenizer {'+'.join(map(str, kinds))} is not supported "
                                "(ByteLevel, or one Split then ByteLevel)")
    bl = steps[-1]
    prefix = bool(bl.get("add_prefix_space", False))
    if len(steps) == 1:
        return (GPT2_PATTERN if bl.get("use_regex", True) else WHOLE), prefix
    if bl.get("use_regex", True):
        raise InputError(where, "Split + ByteLevel with use_regex true is not supported")
    sp = steps[0]
    pat = sp.get("pattern")
    if sp.get("behavior") != "Isolated" or sp.get("invert"):
        raise InputError(where, f"Split behavior {sp.get('behavior')!r} (invert "
                                f"{sp.get('invert')!r}) is not supported (Isolated only)")
    if isinstance(pat, dict) and isinstance(pat.get("Regex"), str):
        pattern = pat["Regex"]
    elif isinstance(pat, dict) and isinstance(pat.get("String"), str) and pat["String"]:
        import regex

        pattern = regex.escape(pat["String"])
    else:
        raise InputError(where, f"bad Split pattern {pat!r}")
    import regex

    try:
        regex.compile(pattern)
    except regex.error as e:
        raise InputError(where, f"Split regex does not compile: {e}") from None
    return pattern, prefix


def _normalizer(norm, where) -> str | None:
    if norm is None:
        return None
    steps = norm.get("normalizers") if isinstance(norm, dict) and norm.get("type") == "Sequence" \
        else [norm]
    kinds = [s.get("type") if isinstance(s, dict) else s for s in steps or []]
    if not kinds:
        return None
    if kinds == ["NFC"]:
        return "NFC"
    raise InputError(where, f"normalizer {'+'.join(map(str, kinds))} is not supported (none or NFC)")


SPACE = "\u2581"


def _metaspace(obj) -> dict | None:
    """Settings of a sentencepiece-style tokenizer.json (Llama-2, Mistral): spaces as ``▁``, by
    a normalizer [Precompiled] + Prepend("▁") + Replace(" ", "▁") and no pre-tokenizer, or by a
    Metaspace pre-tokenizer; None for any other shape."""
    norm, pre = obj.get("normalizer"), obj.get("pre_tokenizer")
    steps = (norm.get("normalizers") if norm.get("type") == "Sequence" else [norm]) \
        if isinstance(norm, dict) else []
    if not isinstance(steps, list) or not all(isinstance(x, dict) for x in steps):
        return None
    charsmap = ""
    if steps and steps[0].get("type") == "Precompiled":
        charsmap = steps[0].get("precompiled_charsmap") or ""
        steps = steps[1:]
    kinds = [x.get("type") for x in steps]
    if pre is None and kinds in (["Prepend", "Replace"], ["Replace"]):
        if steps[-1].get("pattern") != {"String": " "} or steps[-1].get("content") != SPACE or \
                (len(steps) == 2 and steps[0].get("prepend") != SPACE):
            return None
        return {"charsmap": charsmap, "add_dummy_prefix": len(steps) == 2,
                "prefix_each_section": True, "cut": None}
    if isinstance(pre, dict) and pre.get("type") == "Metaspace" and not kinds and \
            pre.get("replacement", SPACE) == SPACE:
        scheme = pre.get("prepend_scheme", "always" if pre.get("add_prefix_space", True) else "never")
        return {"charsmap": charsmap, "add_dummy_prefix": scheme != "never",
                "prefix_each_section": scheme == "always", "prefix_if_missing": True,
                "cut": f"{SPACE}[^{SPACE}]*|[^{SPACE}]+" if pre.get("split", True) else None}
    return None


def _read_metaspace(model: dict, tokens: list[str], merges, specials, holes, meta, where) -> Parts:
    from .. import files

    ids = {t: i for i, t in enumerate(tokens)}
    unk = model.get("unk_token")
    if unk is not None and unk not in ids:
        raise InputError(where, f"unk_token {unk!r} is not in the vocabulary")
    byte_ids = [i for i, t in enumerate(tokens) if re.fullmatch(r"<0x[0-9A-F]{2}>", t)]
    glued = any(SPACE in t.lstrip(SPACE) for t in tokens)
    settings = files.settings_for(False, special_tokens=specials)
    settings.update({
        "mode": "sentencepiece", "pattern": "sentencepiece", "end_of_word_suffix": None,
        "byte_fallback": bool(model.get("byte_fallback", False)),
        "unk_id": ids.get(unk) if unk is not None else None, "unk_surface": unk or "",
        "fuse_unk": bool(model.get("fuse_unk", False)), "control_ids": [], "byte_ids": byte_ids,
        "remove_extra_whitespaces": False, "escape_whitespaces": True,
        "split_words": not glued, "reserved_ids": holes, "source": {"kind": "tokenizer.json"},
        **meta})
    return Parts(tokens, merges, settings)


def read(text: str, obj: dict, where) -> Parts:
    from .. import files

    version = obj.get("version")
    if version != "1.0":
        raise InputError(where, f"tokenizer.json version {version!r} is not supported (1.0)")
    model = obj.get("model")
    if not isinstance(model, dict):
        raise InputError(where, "tokenizer.json has no model")
    kind = model.get("type", "BPE" if "merges" in model else None)
    if kind != "BPE":
        raise InputError(where, f"{kind} models are not supported: only BPE")
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise InputError(where, f"BPE with {key} {model[key]!r} is not supported")
    if model.get("dropout"):
        raise InputError(where, "BPE dropout is not supported (encoding would be random)")
    meta = _metaspace(obj)
    if meta is None:
        pattern, prefix = _pre_tokenizer(obj.get("pre_tokenizer"), where)
        normalizer = _normalizer(obj.get("normalizer"), where)
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise InputError(where, "model.vocab must be a non-empty object {token: id}")
    table: dict[int, str] = {}
    for tok, i in vocab.items():
        if type(i) is not int or i < 0:
            raise InputError(where, f"token {tok!r} has id {i!r}")
        if i in table:
            raise InputError(where, f"id {i} is used twice ({table[i]!r} and {tok!r})")
        table[i] = tok
    added = obj.get("added_tokens") or []
    specials, flags = [], {}
    for e in added:
        if not isinstance(e, dict) or not isinstance(e.get("content"), str) or \
                type(e.get("id")) is not int or not e["content"]:
            raise InputError(where, f"bad added_tokens entry {str(e)[:60]}")
        c, i = e["content"], e["id"]
        if table.get(i, c) != c:
            raise InputError(where, f"added token {c!r} has id {i}, which {table[i]!r} uses")
        table[i] = c
        specials.append(c)
        f = {k: bool(e.get(k, False)) for k in FLAGS}
        if f["single_word"] or f["lstrip"] or f["rstrip"]:
            flags[c] = f
    n = max(table) + 1
    holes = [i for i in range(n) if i not in table]
    tokens = [table.get(i) or reserved(i) for i in range(n)]
    ids = {t: i for i, t in enumerate(tokens)}
    if len(ids) != len(tokens):
        dup = next(t for k, t in enumerate(tokens) if ids[t] != k)
        raise InputError(where, f"token {dup!r} has two ids")
    merges = []
    for k, m in enumerate(model.get("merges") or []):
        if isinstance(m, str):
            parts = m.split(" ")
        elif isinstance(m, list) and all(isinstance(x, str) for x in m):
            parts = m
        else:
            parts = []
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError(where, f"merge {k}: expected \"a b\" or [\"a\", \"b\"], got {m!r}"[:120],
                             _merge_line(text, k))
        try:
            merges.append(check_pair(parts[0], parts[1], ids, where, None, vocab="model.vocab"))
        except InputError as e:
            raise InputError(where, f"merge {k}: {e.problem}", _merge_line(text, k)) from None
    from ..trainer import dedupe_merges

    if meta is not None:
        return _read_metaspace(model, tokens, dedupe_merges(merges), specials, holes, meta, where)
    settings = files.settings_for(True, special_tokens=specials)
    settings.update({"pattern": pattern, "gaps": pattern != GPT2_PATTERN,
                     "add_prefix_space": prefix, "normalizer": normalizer,
                     "ignore_merges": bool(model.get("ignore_merges", False)),
                     "byte_fallback": bool(model.get("byte_fallback", False)),
                     "token_flags": flags, "reserved_ids": holes,
                     "source": {"kind": "tokenizer.json"}})
    return Parts(tokens, dedupe_merges(merges), settings)


def write_metaspace(tokens: list[str], merges: list[tuple[int, int]], settings: dict) -> str:
    """A sentencepiece BPE as HF writes Llama-2-style files: normalizer [Precompiled (the
    character map)] + Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte fallback.
    (Metaspace would not add the dummy prefix to a text that starts with a space.)"""
    prefix = bool(settings.get("add_dummy_prefix"))
    reserved_ids = set(settings.get("reserved_ids") or [])
    ids = {t: i for i, t in enumerate(tokens)}
    unk = settings.get("unk_id")
    decoders = [{"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]
    if prefix:
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    obj = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [{"id": ids[t], "content": t, "single_word": False, "lstrip": False,
                             "rstrip": False, "normalized": False, "special": False}
                            for t in settings["special_tokens"]],
           "normalizer": {"type": "Sequence", "normalizers": (
               [{"type": "Precompiled", "precompiled_charsmap": settings["charsmap"]}]
               if settings.get("charsmap") else []) + (
               [{"type": "Prepend", "prepend": SPACE}] if prefix else []) + [
               {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
           "pre_tokenizer": None,
           "post_processor": None,
           "decoder": {"type": "Sequence", "decoders": decoders},
           "model": {"type": "BPE", "dropout": None,
                     "unk_token": tokens[unk] if unk is not None else None,
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": bool(settings.get("fuse_unk", True)),
                     "byte_fallback": bool(settings.get("byte_fallback")), "ignore_merges": False,
                     "vocab": {t: i for i, t in enumerate(tokens) if i not in reserved_ids},
                     "merges": [[tokens[a], tokens[b]] for a, b in merges]}}
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def write(tokens: list[str], merges: list[tuple[int, int]], settings: dict) -> str:
    """A tokenizer.json HF ``tokenizers`` loads with the same ids."""
    if settings["mode"] == "sentencepiece":
        return write_metaspace(tokens, merges, settings)
    if settings["mode"] != "byte-level":
        raise ValueError("byte-level only")
    # Oniguruma (HF) reads tiktoken's possessive interval "{1,3}+" as "({1,3})+": drop the "+"
    # (an interval closing its alternative backtracks into nothing, so the split is the same).
    pattern = re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", settings["pattern"])
    prefix = bool(settings.get("add_prefix_space", False))
    bl = {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True,
          "use_regex": pattern == GPT2_PATTERN}
    if pattern == GPT2_PATTERN:
        pre = bl
    elif pattern == WHOLE:
        pre = dict(bl, use_regex=False)
    else:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            dict(bl, use_regex=False)]}
    flags = settings.get("token_flags") or {}
    ids = {t: i for i, t in enumerate(tokens)}
    added = []
    for t in settings["special_tokens"]:
        f = flags.get(t, {})
        added.append({"id": ids[t], "content": t, "single_word": f.get("single_word", False),
                      "lstrip": f.get("lstrip", False), "rstrip": f.get("rstrip", False),
                      "normalized": f.get("normalized", False), "special": f.get("special", True)})
    reserved_ids = set(settings.get("reserved_ids") or [])
    vocab = {t: i for i, t in enumerate(tokens) if i not in reserved_ids}
    obj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
           "normalizer": {"type": "NFC"} if settings.get("normalizer") == "NFC" else None,
           "pre_tokenizer": pre,
           "post_processor": {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": False,
                              "use_regex": pattern == GPT2_PATTERN},
           "decoder": {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True,
                       "use_regex": pattern == GPT2_PATTERN},
           "model": {"type": "BPE", "dropout": None, "unk_token": None,
                     "continuing_subword_prefix": None, "end_of_word_suffix": None,
                     "fuse_unk": False, "byte_fallback": False,
                     "ignore_merges": bool(settings.get("ignore_merges", False)),
                     "vocab": vocab, "merges": [[tokens[a], tokens[b]] for a, b in merges]}}
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
