"""sentencepiece ``.model`` files (a protobuf ``ModelProto``), read without the sentencepiece or
protobuf packages. Only BPE models: pieces with scores, the normalizer spec (its precompiled
character map, dummy prefix, whitespace rules) and the trainer's ``byte_fallback``.

sentencepiece BPE merges, among adjacent symbols whose concatenation is a piece, the one with
the highest score (leftmost on ties) — a rank-ordered vocabulary, so ``ranks.derive_merges``
turns it into merges. Symbols are characters; whitespace is ``▁`` (U+2581); user-defined
symbols are never split nor merged; a character no piece has becomes its UTF-8 bytes as
``<0xNN>`` pieces (byte fallback) or the unknown id.
"""
from __future__ import annotations

import base64
import struct

from ...errors import InputError
from . import Parts
from .ranks import derive_merges

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
MODEL_TYPES = {1: "Unigram", 2: "BPE", 3: "word", 4: "char"}
SPACE = "\u2581"


class _Truncated(Exception):
    pass


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message: ints for varints and fixed
    numbers, bytes for length-delimited fields."""
    i, n = 0, len(buf)

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            if i >= n or shift > 63:
                raise _Truncated(i)
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7

    while i < n:
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            yield field, wt, varint()
        elif wt == 1:
            if i + 8 > n:
                raise _Truncated(i)
            yield field, wt, buf[i:i + 8]
            i += 8
        elif wt == 2:
            size = varint()
            if i + size > n:
                raise _Truncated(i)
            yield field, wt, buf[i:i + size]
            i += size
        elif wt == 5:
            if i + 4 > n:
                raise _Truncated(i)
            yield field, wt, buf[i:i + 4]
            i += 4
        else:
            raise _Truncated(i)


def looks_like(head: bytes) -> bool:
    """A ModelProto starts with its first piece: field 1, length-delimited (0x0A), holding a
    piece string."""
    if not head or head[0] != 0x0A:
        return False
    try:
        field, wt, v = next(_fields(head))
        return field == 1 and wt == 2 and any(f == 1 and w == 2 for f, w, _ in _fields(v))
    except (_Truncated, StopIteration):
        return False


def parse(data: bytes, where) -> dict:
    """The parts of a ModelProto this reader needs."""
    pieces, trainer, normalizer = [], {}, {}
    try:
        for field, wt, v in _fields(data):
            if field == 1 and wt == 2:
                p = {"piece": "", "score": 0.0, "type": NORMAL}
                for f, w, x in _fields(v):
                    if f == 1 and w == 2:
                        p["piece"] = x.decode("utf-8")
                    elif f == 2 and w == 5:
                        p["score"] = struct.unpack("<f", x)[0]
                    elif f == 3 and w == 0:
                        p["type"] = x
                pieces.append(p)
            elif field == 2 and wt == 2:
                for f, w, x in _fields(v):
                    trainer[f] = x
            elif field == 3 and wt == 2:
                for f, w, x in _fields(v):
                    normalizer[f] = x
    except _Truncated as e:
        raise InputError(where, f"truncated or corrupt sentencepiece model (at byte {e.args[0]} "
                                "of a record)") from None
    except UnicodeDecodeError:
        raise InputError(where, "corrupt sentencepiece model: a piece is not UTF-8") from None
    if not pieces:
        raise InputError(where, "not a sentencepiece model: no pieces")
    return {"pieces": pieces, "trainer": trainer, "normalizer": normalizer}


def check_charsmap(blob: bytes, where) -> None:
    """The precompiled character map: uint32 trie size, the trie's units, the replacements."""
    if not blob:
        return
    size = struct.unpack_from("<I", blob)[0] if len(blob) >= 4 else -1
    if size < 4 or size % 4 or 4 + size > len(blob):
        raise InputError(where, "corrupt sentencepiece model: bad precompiled_charsmap")


def read(data: bytes, where) -> Parts:
    from .. import files

    m = parse(data, where)
    trainer, norm = m["trainer"], m["normalizer"]
    kind = trainer.get(3, 1)
    if kind != 2:
        raise InputError(where, f"a sentencepiece {MODEL_TYPES.get(kind, kind)} model: only BPE "
                                "models are supported")
    if trainer.get(24, 0):
        raise InputError(where, "treat_whitespace_as_suffix models are not supported")
    pieces = m["pieces"]
    tokens = [p["piece"] for p in pieces]
    if len(set(tokens)) != len(tokens):
        raise InputError(where, "corrupt sentencepiece model: a piece appears twice")
    types = [p["type"] for p in pieces]
    if any(t not in (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE) for t in types):
        raise InputError(where, "corrupt sentencepiece model: unknown piece type")
    user = [t for t, ty in zip(tokens, types) if ty == USER_DEFINED]
    rankable = [i for i, ty in enumerate(types) if ty in (NORMAL, UNUSED)]
    order = sorted(rankable, key=lambda i: (-pieces[i]["score"], i))
    merges = derive_merges([tokens[i].encode("utf-8") for i in order], order, True)
    unk = [i for i, ty in enumerate(types) if ty == UNKNOWN]
    if not unk:
        raise InputError(where, "corrupt sentencepiece model: no unknown piece")
    chars = bytes(norm.get(2, b""))
    check_charsmap(chars, where)
    glued = any(SPACE in tokens[i].lstrip(SPACE) for i in rankable)  # "a▁": words can't be cut
    settings = files.settings_for(False, special_tokens=user)
    settings.update({
        "mode": "sentencepiece", "pattern": "sentencepiece", "end_of_word_suffix": None,
        "byte_fallback": bool(trainer.get(35, 0)) or BYTE in types,
        "unk_id": unk[0], "unk_surface": _text(trainer.get(44), " \u2047 "),
        "control_ids": [i for i, ty in enumerate(types) if ty in (CONTROL, UNKNOWN)],
        "byte_ids": [i for i, ty in enumerate(types) if ty == BYTE],
        "add_dummy_prefix": bool(norm.get(3, 1)), "remove_extra_whitespaces": bool(norm.get(4, 1)),
        "escape_whitespaces": bool(norm.get(5, 1)),
        "charsmap": base64.b64encode(chars).decode("ascii"), "split_words": not glued,
        "source": {"kind": "sentencepiece", "normalizer": _text(norm.get(1), "")}})
    return Parts(tokens, merges, settings)


def _text(v, default: str) -> str:
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return default
    return default


class Runtime:
    """What encoding and decoding need beyond merges: sentencepiece's normalizer (character map,
    whitespace rules, dummy prefix, ``▁``), the cut into words, byte fallback and decoding."""

    def __init__(self, settings: dict, ids: dict[str, int]):
        import re

        import numpy as np

        self.s = settings
        self.map = None  # (trie units, replacements) of the precompiled character map
        blob = base64.b64decode(settings.get("charsmap") or "")
        if blob:
            size = struct.unpack_from("<I", blob)[0]
            self.map = (np.frombuffer(blob[4:4 + size], "<u4").copy(),
                        np.frombuffer(blob[4 + size:], np.uint8).copy())
        self.v = len(ids)
        self.unk = settings["unk_id"]
        self.fallback_bytes = [ids.get(f"<0x{b:02X}>", self.unk) for b in range(256)] \
            if settings.get("byte_fallback") else None
        cut = settings.get("cut") or (f"{SPACE}+[^{SPACE}]*|[^{SPACE}]+"
                                      if settings.get("split_words") else None)
        self.cut = re.compile(cut) if cut else None
        self.each = bool(settings.get("prefix_each_section"))  # HF: normalizer per section
        self.fuse = bool(settings.get("fuse_unk", True))
        self.control = set(settings.get("control_ids") or []) - {self.unk}
        self.byte_ids = set(settings.get("byte_ids") or [])

    def normalize_chars(self, text: str) -> str:
        """The character map, longest match first at each position (a compiled kernel)."""
        if self.map is None:
            return text
        import numpy as np

        from .sentencepiece_kernels import apply_charsmap

        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
        return apply_charsmap(data, *self.map).tobytes().decode("utf-8", "replace")

    def whitespace(self, text: str) -> str:
        s = self.s
        if s.get("remove_extra_whitespaces"):
            text = " ".join(w for w in text.split(" ") if w)
        if not text:
            return ""
        if s.get("add_dummy_prefix") and not (s.get("prefix_if_missing") and text[0] == " "):
            text = " " + text
        return text.replace(" ", SPACE) if s.get("escape_whitespaces") else text

    def words(self, text: str, specials, special_of) -> list[str]:
        """Normalized words; user-defined symbols (``specials``) are kept out of the map."""
        if specials is None:
            return self._cut(self.whitespace(self.normalize_chars(text)))
        parts = specials.split(text)
        if self.each:
            out = []
            for k, part in enumerate(parts):
                if k % 2:
                    out.append(special_of(part))
                elif part:
                    out.extend(self._cut(self.whitespace(self.normalize_chars(part))))
            return out
        text = "".join(p if k % 2 else self.normalize_chars(p) for k, p in enumerate(parts))
        out: list[str] = []
        for k, part in enumerate(specials.split(self.whitespace(text))):
            if k % 2:
                out.append(special_of(part))
            elif part:
                out.extend(self._cut(part))
        return out

    def _cut(self, text: str) -> list[str]:
        if self.cut is None:
            return [text] if text else []
        return self.cut.findall(text)

    def fallback(self, ids: list[int], symbol) -> list[int]:
        """Characters no piece has (ids >= vocabulary size): their bytes, or the unknown id
        (one for a run of them, as sentencepiece)."""
        out: list[int] = []
        for k, i in enumerate(ids):
            if i < self.v:
                out.append(i)
            elif self.fallback_bytes is None:
                if self.unk is not None and not (self.fuse and k and ids[k - 1] >= self.v):
                    out.append(self.unk)
            else:
                out.extend(self.fallback_bytes[b] for b in symbol(i).encode("utf-8", "surrogatepass"))
        return out

    def decode(self, ids, tokens: list[str]) -> bytes:
        out = []
        surface = self.s.get("unk_surface", " \u2047 ").encode()
        for i in ids:
            if i in self.control:
                continue
            if i == self.unk:
                out.append(surface)
            elif i in self.byte_ids:
                out.append(bytes([int(tokens[i][3:5], 16)]))
            else:
                out.append(tokens[i].replace(SPACE, " ").encode("utf-8", "surrogatepass"))
        data = b"".join(out)
        if self.s.get("add_dummy_prefix") and data.startswith(b" "):
            data = data[1:]
        return data
