"""``kernels.encode_words`` in plain Python, for a few words: one line from the shell is
encoded before Numba would even be imported (most of a one-line ``bpe encode``'s time). Same
rule as the kernel — lowest merge rank first, leftmost first — and the tests hold the two to
the same ids."""
from __future__ import annotations

_NO_RANK = 1 << 62


def pair_ranks(merges) -> dict[tuple[int, int], int]:
    """(left id, right id) → merge rank."""
    return {pair: r for r, pair in enumerate(map(tuple, merges))}


def merge_words(sym: list[int], wstart: list[int], ranks: dict, merges, tokens: list[str],
                ids: dict[str, int]) -> tuple[list[int], list[int]]:
    """Word w's initial ids are ``sym[wstart[w]:wstart[w+1]]``; returns (ids, starts) as the
    kernel does."""
    out, ostart = [], [0]
    for a, b in zip(wstart, wstart[1:]):
        word = sym[a:b]
        while len(word) > 1:
            r, i = min((ranks.get(p, _NO_RANK), i) for i, p in enumerate(zip(word, word[1:])))
            if r == _NO_RANK:
                break
            left, right = merges[r]
            word[i:i + 2] = [ids[tokens[left] + tokens[right]]]
        out.extend(word)
        ostart.append(len(out))
    return out, ostart
