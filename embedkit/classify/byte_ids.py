"""``classify predict``'s fast path: input bytes straight to token ids, with no Python string
per word.

On short lines, making the words costs more than scoring them: on 200,000 pros_cons lines,
``str.split`` alone takes 0.5 s, about as long as fastText needs for all of its work. Some
models need nothing of a word but its id, or, for an unseen word, its fastText hash (for the
word n-grams). That means no char n-grams or BPE pieces for unseen words and no lower-casing.
For those models a kernel does the whole step on the bytes:
- split on fastText's whitespace, as ``data.split_words`` does;
- hash each word as ``Dictionary::hash``;
- look it up in an open-addressing table of the vocabulary's UTF-8 bytes.

The result is the ``(line_ptr, ids, unknown hashes)`` that ``tables.token_ids`` and
``word_hashes`` make from strings. The tests hold the two paths to the same ids and scores.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .data import whole_line_blocks
from .tables import EOS, encoded


class ByteVocab:
    """A word -> id table over UTF-8 bytes.

    ``index`` maps words to ids, and the k-th unknown word of a batch gets ``unknown + k``.
    ``eos`` says what a line's end does:
    - ``"none"``: nothing;
    - ``"append"``: append ``</s>``;
    - ``"fasttext"``: append ``</s>`` and end the words at a literal ``</s>``, as fastText does.

    Words starting with one of the ``drop`` prefixes are left out (fastText skips every
    label-like word), as are those starting with the label prefix given to ``batches``.
    """

    def __init__(self, index: dict[str, int], unknown: int, eos: str, drop: tuple[str, ...] = ()):
        from . import byte_ids_kernels as BK
        from .kernels import word_hashes

        words = list(index)
        data, offsets = encoded(words)
        self._words, self._offsets = data, offsets
        self._hashes = word_hashes(data, offsets)
        self._ids = np.fromiter(index.values(), np.int64, len(words))
        size = 1 << max(4, (2 * len(words)).bit_length())
        self._slots = BK.build_slots(self._hashes, size)
        self.unknown = int(unknown)
        self.eos_mode = {"none": BK.NO_EOS, "append": BK.APPEND_EOS, "fasttext": BK.FASTTEXT_EOS}[eos]
        self._eos_id = int(index.get(EOS, -1))
        self._eos_hash = int(word_hashes(*encoded([EOS]))[0])
        self.drop = tuple(drop)

    def scan(self, data: np.ndarray, start: int, lines: int, prefix: str
             ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``lines`` lines of the uint8 ``data`` from byte ``start``: ``(end, line_ptr,
        ids, unknown_hashes)``. Words that start with ``prefix`` are left out."""
        return self._scan(data, start, lines, encoded([prefix, *self.drop]))

    def _scan(self, data, start, lines, prefixes):
        from . import byte_ids_kernels as BK

        return BK.scan(data, start, lines, *prefixes, self.eos_mode, self._slots, self._hashes,
                       self._words, self._offsets, self._ids, self._eos_id, self._eos_hash,
                       self.unknown)

    def batches(self, paths: list[str], prefix: str, size: int = 1024
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(line_ptr, ids, unknown_hashes)`` for every ``size`` lines of ``paths`` (``-``:
        stdin), read as ``data.iter_word_batches`` reads them (``data.whole_line_blocks``)."""
        prefixes = encoded([prefix, *self.drop])
        for block in whole_line_blocks(paths):
            data = np.frombuffer(block.data, np.uint8)
            start = 0
            while start < len(data):
                start, line_ptr, ids, unknown = self._scan(data, start, size, prefixes)
                yield line_ptr, ids, unknown
