"""Rank-ordered vocabularies (tiktoken, sentencepiece) as merge lists for the merges encoder.

tiktoken and sentencepiece do not store merges: they merge, among adjacent pairs whose
concatenation is a token, the one with the best rank (lowest rank / highest score; leftmost on
ties). For a vocabulary built by BPE this is merges-driven BPE with one merge per token: the two
parts that the same procedure, restricted to better-ranked tokens, leaves when run on the token
alone. Tokens that do not end in exactly two parts are reachable only whole (tiktoken's first
lookup) and get no merge.
"""
from __future__ import annotations


def derive_merges(raw: list[bytes], order: list[int], char_symbols: bool) -> list[tuple[int, int]]:
    """``raw``: the tokens' bytes in rank order (best first), ``order``: their ids. Base symbols
    are bytes, or UTF-8 characters (``char_symbols``, sentencepiece). Returns (left id, right id)
    merges in rank order (a compiled kernel does the work: 200k tokens in < 0.1 s)."""
    import numpy as np

    from .rank_kernels import derive

    buf = np.frombuffer(b"".join(raw) or b"\0", np.uint8)
    off = np.zeros(len(raw) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, raw), np.int64, len(raw)), out=off[1:])
    start = ((buf & 0xC0) != 0x80).astype(np.uint8) if char_symbols else np.ones(len(buf), np.uint8)
    left, right = derive(buf, off, start)
    ids = np.asarray(order, np.int64)
    keep = np.flatnonzero(left >= 0)
    return list(zip(ids[left[keep]].tolist(), ids[right[keep]].tolist()))
