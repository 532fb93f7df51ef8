"""What the fuzzing tests share: hypothesis settings, mutation strategies (bytes, text, embedkit
store headers), the outcome check and its tally (``FUZZ_COUNTS``, one per reader)."""
from __future__ import annotations

import collections
import json

import numpy as np
from hypothesis import HealthCheck, settings, strategies as st

from embedkit.errors import InputError
from embedkit.store import _PREFIX
from embedkit.vectors.model import UnknownWordError, load

EXAMPLES = 250
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
NUMBERS = [0, -1, 1 << 31, 1 << 63, (1 << 31) - 1, 1]
JUNK = [b" ", b"\n", b"\x00", b"\xff\xfe", b"nan", b"1e999", b"-", b"\r\n", b"\x97", b"{", b"]"]
FUZZ_COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
WORDS = ["the", "cat", "sat", "dog", "café", "日本"]


# ---- mutations ---------------------------------------------------------------------------------

def _put(data: bytes, pos: int, value: int, width: int) -> bytes:
    raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return data[:pos] + raw + data[pos + width:]


@st.composite
def byte_mutation(draw, data: bytes, slots: list[tuple[int, int]] = ()) -> bytes:
    """One of: flip bytes, truncate, insert junk, overwrite a binary integer field."""
    kinds = ["flip", "truncate", "insert"] + (["number"] * 2 if slots else [])
    kind = draw(st.sampled_from(kinds))
    n = len(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
        return data
    if kind == "truncate":
        return data[:draw(st.integers(0, n - 1))]
    if kind == "insert":
        i = draw(st.integers(0, n))
        return data[:i] + draw(st.sampled_from(JUNK)) * draw(st.integers(1, 3)) + data[i:]
    pos, width = draw(st.sampled_from(list(slots)))
    return _put(data, pos, draw(st.sampled_from(NUMBERS)), width)


@st.composite
def text_mutation(draw, data: bytes) -> bytes:
    """A text vector file with a lying ``N D`` header, or a byte-level mutation."""
    if draw(st.booleans()):
        return draw(byte_mutation(data))
    head, _, body = data.partition(b"\n")
    n, d = head.split()
    n = draw(st.sampled_from([n] + [str(x).encode() for x in NUMBERS]))
    d = draw(st.sampled_from([d] + [str(x).encode() for x in NUMBERS]))
    return n + b" " + d + b"\n" + body


def _json_header(data: bytes) -> tuple[dict, int]:
    head_len = _PREFIX.unpack_from(data)[3]
    return json.loads(data[_PREFIX.size:_PREFIX.size + head_len]), head_len


def _with_header(data: bytes, header: dict) -> bytes:
    """``data`` with its JSON header replaced, in place: the seeds carry a ``pad`` string in
    their meta, dropped here, so the mutated header always fits the old one's room."""
    _, head_len = _json_header(data)
    meta = header.get("meta")
    if isinstance(meta, dict):
        meta.pop("pad", None)
        for value in meta.values():
            if isinstance(value, dict):
                value.pop("pad", None)
    text = json.dumps(header).encode()
    assert len(text) <= head_len, "seed header has too little slack"
    return data[:_PREFIX.size] + text.ljust(head_len) + data[_PREFIX.size + head_len:]


LIES = [0, -1, 1 << 31, 1 << 63, 1.5, "3", None, [], {}, True]


@st.composite
def store_mutation(draw, data: bytes) -> bytes:
    """A native store with one header field lying (dtype, shape, offset, meta), or bytes mutated."""
    if draw(st.integers(0, 2)) == 0:
        return draw(byte_mutation(data, [(12, 4), (16, 8)]))
    header, _ = _json_header(data)
    target = draw(st.sampled_from(["array", "array", "meta", "meta", "top"]))
    if target == "array":
        name = draw(st.sampled_from(sorted(header["arrays"])))
        spec = header["arrays"][name]
        field = draw(st.sampled_from(["dtype", "shape", "offset"]))
        if field == "dtype":
            spec["dtype"] = draw(st.sampled_from(["<i4", "<f8", "<i8", ">f4", "|u1", "<f2", "x", 4]))
        elif field == "shape":
            shape = spec["shape"]
            spec["shape"] = draw(st.sampled_from(
                [shape[::-1], [shape[0] * 2] + shape[1:], shape[:1], shape + [1], [-1] + shape[1:],
                 [1 << 63] + shape[1:], [0] + shape[1:], [shape[0] - 1] + shape[1:], "x",
                 [1.5] + shape[1:]]))
        else:
            others = [s["offset"] for s in header["arrays"].values()]
            spec["offset"] = draw(st.sampled_from(
                NUMBERS + others + [spec["offset"] + 1, spec["offset"] - 64, 1.5, "8"]))
    elif target == "meta":
        meta = header["meta"]
        key = draw(st.sampled_from(sorted(meta) + ["subwords.minn", "subwords.maxn",
                                                   "subwords.buckets", "subwords.kind"]))
        value = draw(st.sampled_from(LIES + ["bpe", "none", "char"]))
        if key.startswith("subwords.") and isinstance(meta.get("subwords"), dict):
            meta["subwords"][key.split(".")[1]] = value
        elif key == "words" and draw(st.booleans()):
            words = meta["words"]
            meta["words"] = draw(st.sampled_from([words[:-1], words + ["x"], words[:1] * len(words),
                                                  words[:-1] + [3]]))
        else:
            meta[key] = value
    else:
        header[draw(st.sampled_from(["meta", "arrays", "kind"]))] = draw(st.sampled_from(LIES))
    return _with_header(data, header)


# ---- what a load must give -------------------------------------------------------------------

def _outcome(reader: str, path, open_and_use) -> None:
    """Run ``open_and_use``; record ``ok`` or ``error``; anything else fails the test."""
    try:
        open_and_use(path)
    except InputError as e:
        assert "\n" not in str(e), str(e)
        FUZZ_COUNTS[reader]["clean error"] += 1
        return
    except BaseException:
        FUZZ_COUNTS[reader]["other"] += 1
        raise
    FUZZ_COUNTS[reader]["loaded"] += 1


def _use_vectors(path) -> None:
    vecs = load(path)
    assert len(vecs) > 0
    word = vecs.words[0]
    v = vecs[word]
    assert v.shape == (vecs.dim,) and np.isfinite(v).all()
    try:
        oov = vecs["zzqx-not-a-word"]
        assert oov.shape == (vecs.dim,) and np.isfinite(oov).all()
    except UnknownWordError:
        pass
    found = vecs.most_similar(word, k=3)
    assert len(found) <= 3 and all(np.isfinite(s) for _, s in found)


# ---- seeds -------------------------------------------------------------------------------------

def _slack(n: int = 3000) -> dict:
    return {"pad": " " * n}
