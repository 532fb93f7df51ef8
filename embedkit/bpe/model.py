"""``BPETokenizer``: learn, encode, decode, save and load byte-level (GPT-2) or word (Sennrich) BPE.

Encoding pre-tokenizes, then looks each word up in a cache; the words not seen before are merged
together in one Numba kernel call (lowest merge rank first, leftmost first — HF's order, so ids
match HF tokenizers). Byte-level decoding is exact: ``decode(encode(x)) == x`` for any text.

Word mode policy: words are whitespace-separated; the last symbol of a word carries ``</w>``;
a character never seen in training becomes ``<unk>`` (``<unk></w>`` at the end of a word), which
decodes to U+FFFD, and decoding joins words with one space.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError
from . import files
from .parallel import fork_map
from .pretokenize import (GPT2_JOINED_PATTERN, GPT2_PATTERN, LINE_SEP, bytes_to_unicode, compiled,
                          from_symbols, resolve_pattern, split_words, to_symbols)
from .trainer import EOW, UNK, word_bytes

_CACHE_LIMIT = 1 << 20
_PY_WORDS = 64  # new words merged in Python until the kernel's merge table exists (_merge_py)


class BPETokenizer:
    """A BPE vocabulary: tokens (id order), merges (rank order) and pre-tokenization settings."""

    def __init__(self, tokens: list[str], merges: list[tuple[int, int]], settings: dict):
        self._tokens = list(tokens)
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        self._merges = list(merges)
        self._settings = dict(settings)
        specials = self._settings["special_tokens"]
        missing = [t for t in specials if t not in self._ids]
        if missing:
            raise UsageError(f"special token {missing[0]!r} is not in the vocabulary")
        self._special_ids = {t: self._ids[t] for t in specials}
        self._split_specials = None
        if not self._settings.get("match_special", True):
            self._special_ids = {}  # tiktoken: text spelling a special token is ordinary text
        elif specials and self._settings["mode"] != "word":
            self._split_specials = _special_regex(specials, self._settings.get("token_flags") or {})
        self._mode = self._settings["mode"]
        self._not_whole_ids = None  # ignore_merges: ids a word may not be as a whole
        self._sp = None
        if self._mode == "sentencepiece":
            from .formats.sentencepiece import Runtime

            self._sp = Runtime(self._settings, self._ids)
        self._table = None
        self._py_ranks = None
        self._cache: dict[str, tuple[int, ...]] = {}
        self._raw: dict[str, tuple[int, ...]] = {}  # word mode: ids before unknown → <unk>
        self._ext: dict[str, int] = {}  # word mode: unknown symbols get ids >= vocab_size
        self._ext_r: dict[int, str] = {}
        self._str_cache: tuple[dict, dict] = ({}, {})  # word → rendered pieces / ids
        self._byte_lut = None  # byte → token id
        self._id_bytes = None  # token id → bytes
        self._print_unknown = False  # pieces of unseen characters as themselves (subword-nmt)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def train(cls, corpus, vocab_size: int, *, min_frequency: int = 2, byte_level: bool = True,
              lowercase: bool = False, special_tokens=(), threads: int = 1,
              quiet: bool = True, pattern: str | None = None) -> "BPETokenizer":
        """Learn from files (paths, ``'-'`` for stdin, .gz) or an iterable of str lines.
        ``pattern``: the byte-level pre-tokenizer regex (default GPT-2's; see ``PATTERNS``)."""
        from .count import count, is_paths
        from .trainer import learn

        specials = list(dict.fromkeys(special_tokens))
        if any(not isinstance(t, str) or not t or any(c.isspace() for c in t) for t in specials):
            raise UsageError("special tokens must be non-empty strings without whitespace")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise UsageError(f"vocab size must be a positive integer, got {vocab_size!r}")
        if threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        if byte_level and vocab_size < len(specials) + 256:
            raise UsageError(f"vocab size {vocab_size} is smaller than the base alphabet "
                             f"({len(specials)} special tokens + 256 byte symbols)")
        if pattern is not None and not byte_level:
            raise UsageError("--pattern needs byte-level BPE (word mode splits on whitespace)")
        if pattern is not None:
            pattern = resolve_pattern(pattern)
        if pattern == GPT2_PATTERN:
            pattern = None
        counts = count(corpus, byte_level=byte_level, lowercase=lowercase, threads=threads,
                       quiet=quiet, meanwhile=_warm_up, pattern=pattern)
        if not counts:
            paths = is_paths(corpus) and isinstance(corpus, (list, tuple))
            name = ", ".join(map(str, corpus)) if paths else "corpus"
            raise InputError(name, "empty corpus: no words to learn from")
        tokens, merges = learn(counts, int(vocab_size), min_frequency=min_frequency,
                               byte_level=byte_level, special_tokens=specials, release=True)
        settings = files.settings_for(byte_level, lowercase, specials)
        if pattern is not None:
            settings["pattern"] = pattern
        return cls(tokens, merges, settings)

    @classmethod
    def from_files(cls, d: dict[str, str], where: str | os.PathLike = "") -> "BPETokenizer":
        """Build from file texts {name: text}: vocab.json + merges.txt (+ embedkit.json)."""
        from .formats.tokdir import from_texts

        return cls(*from_texts(d, where))

    @classmethod
    def load(cls, path: str | os.PathLike, *, pattern: str | None = None,
             allow_special: bool = False) -> "BPETokenizer":
        """Any tokenizer file, recognised by content: a TOKDIR (embedkit's or HF's vocab.json +
        merges.txt), HF tokenizer.json, .tiktoken or tekken JSON, sentencepiece BPE .model, or
        subword-nmt codes. ``pattern`` replaces the pre-tokenizer regex; ``allow_special``
        lets text spell tiktoken's special tokens (else they are ordinary text)."""
        from .formats.detect import read, sniff

        p = Path(path)
        if pattern is not None:
            pattern = resolve_pattern(pattern)
        if p.is_file() and sniff(p) == "codes":
            return cls.from_codes(files.read_text(p), str(p))
        tokens, merges, settings = read(p, pattern)
        if allow_special:
            settings = dict(settings, match_special=True)
        return cls(tokens, merges, settings)

    @classmethod
    def from_codes(cls, text: str, where: str = "codes") -> "BPETokenizer":
        """A word-mode tokenizer from subword-nmt v0.2 codes (characters they never use are unknown)."""
        from .formats.subword_nmt import read

        tok = cls(*read(text, where))
        tok._print_unknown = True  # as subword-nmt's apply-bpe, which has no <unk>
        return tok

    # ---- files --------------------------------------------------------------------------------

    def to_files(self) -> dict[str, str]:
        """{file name: text} of vocab.json, merges.txt and embedkit.json."""
        return files.dump(self._tokens, self._merges, self._settings)

    def save(self, dirpath: str | os.PathLike) -> None:
        """Write the three files into ``dirpath``, all or nothing. An existing folder must be
        empty or a TOKDIR (holds embedkit.json); only these three files are replaced in it."""
        from ..io import atomic_dir

        texts = self.to_files()
        with atomic_dir(dirpath, files.SETTINGS) as tmp:
            for name, text in texts.items():
                (tmp / name).write_text(text, encoding="utf-8", errors="surrogatepass")

    def to_codes(self) -> str:
        """subword-nmt v0.2 codes (word mode only: byte-level merges are not subword-nmt symbols)."""
        if self.byte_level:
            raise UsageError("--format subword-nmt needs a word-mode vocabulary (--no-byte-level)")
        return files.dump_codes(self._tokens, self._merges)

    def export(self, path: str | os.PathLike, to: str) -> None:
        """Write as another tool's file, atomically: ``tokenizer.json`` (HF tokenizers),
        ``tiktoken`` (a .tiktoken rank file: rank = id; the special tokens and the pattern are
        not part of that format) or ``hf-dir`` (a TOKDIR: vocab.json + merges.txt +
        embedkit.json). Byte-level vocabularies only, except ``hf-dir``."""
        from ..io import atomic_write

        if to == "hf-dir":
            bad = next((t for a, b in self._merges for t in (self._tokens[a], self._tokens[b])
                        if " " in t or "\n" in t or "\r" in t), None)
            if bad is not None:
                raise UsageError(f"token {bad!r} holds whitespace, which merges.txt cannot; "
                                 "--to tokenizer.json can")
            return self.save(path)
        if to not in ("tokenizer.json", "tiktoken"):
            raise UsageError(f"unknown export format {to!r} (tokenizer.json, tiktoken, hf-dir)")
        sp_json = self._mode == "sentencepiece" and to == "tokenizer.json"
        if sp_json and self._settings.get("remove_extra_whitespaces"):
            raise UsageError("tokenizer.json cannot say sentencepiece's remove_extra_whitespaces; "
                             "--to hf-dir writes any vocabulary")
        if not self.byte_level and not sp_json:
            raise UsageError(f"--to {to} needs a byte-level vocabulary (this one is "
                             f"{self._mode}); --to hf-dir writes any vocabulary")
        if to == "tokenizer.json":
            from .formats.tokenizer_json import write

            text = write(self._tokens, self._merges, self._settings)
        else:
            from .formats.tiktoken import write

            text = write(self._tokens, set(self._settings["special_tokens"]),
                         set(self._settings.get("reserved_ids") or []))
        with atomic_write(path, "w") as f:
            f.write(text)

    # ---- vocabulary ---------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def byte_level(self) -> bool:
        return self._settings["mode"] == "byte-level"

    @property
    def lowercase(self) -> bool:
        return bool(self._settings["lowercase"])

    @property
    def special_tokens(self) -> list[str]:
        return list(self._settings["special_tokens"])

    @property
    def merges(self) -> list[tuple[str, str]]:
        return [(self._tokens[a], self._tokens[b]) for a, b in self._merges]

    def id_to_token(self, i: int) -> str:
        if not 0 <= i < len(self._tokens):
            raise UsageError(f"id {i} is not in the vocabulary (0..{len(self._tokens) - 1})")
        return self._tokens[i]

    def token_to_id(self, s: str) -> int | None:
        return self._ids.get(s)

    # ---- encoding -----------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the merge kernel now — before forking workers (on a fresh install they would
        all compile it at once) or timing; until its table exists a few words are merged in
        Python."""
        if self._sp is not None:
            self.encode("a")  # sentencepiece: its own runtime
            return
        from .kernels import encode_words

        sym, wstart = self._initial_symbols(["a"])
        encode_words(sym, wstart, *self._merge_table())

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def count_tokens(self, lines: list[str]) -> int:
        """How many tokens all ``lines`` encode to (each line on its own)."""
        return int(self._encode_flat(lines)[0].shape[0])

    def tokens(self, text: str) -> list[str]:
        return [self._tokens[i] for i in self.encode(text)]

    def encode_batch(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        """Token ids of each text (a text is pre-tokenized on its own, as HF ``encode_batch``);
        ``threads`` > 1 splits a big batch over forked processes."""
        if self._mode == "word" or (self._joined_words([]) is None and threads == 1):
            return self._text_by_text(lines)
        if threads > 1 and len(lines) >= 4 * threads:
            self.warm()  # once here, not in every forked worker
            step = -(-len(lines) // (4 * threads))
            chunks = (lines[i:i + step] for i in range(0, len(lines), step))
            parts = fork_map(_encode_chunk, chunks, threads, self)
        else:
            parts = [self._encode_flat(lines)]
        out = []
        for ids, bounds in parts:
            ids, bounds = ids.tolist(), bounds.tolist()
            out.extend(ids[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1))
        return out

    def _text_by_text(self, lines: list[str]) -> list[list[int]]:
        words = [self._words(t) for t in lines]
        self._fill(set(itertools.chain.from_iterable(words)))
        get = self._cache.__getitem__
        return [list(itertools.chain.from_iterable(map(get, ws))) for ws in words]

    def _encode_flat(self, lines: list[str]):
        """All texts' ids as one int32 array + int64 bounds (text k = ids[bounds[k]:bounds[k+1]]),
        gathered with NumPy from the per-word cache — no Python loop over words."""
        flat = self._joined_words(lines)
        if flat is None:
            ids = self._text_by_text(lines)
            bounds = np.zeros(len(ids) + 1, np.int64)
            np.cumsum([len(x) for x in ids], out=bounds[1:])
            return np.fromiter(itertools.chain.from_iterable(ids), np.int32, bounds[-1]), bounds
        todo = set(flat)
        todo.discard(LINE_SEP)
        self._fill(todo)
        uniq = list(todo)
        uniq.append(LINE_SEP)
        widx = np.fromiter(map(dict(zip(uniq, range(len(uniq)))).__getitem__, flat), np.int64,
                           len(flat))
        seqs = list(map(self._cache.__getitem__, uniq[:-1]))
        seqs.append(())
        lens = np.fromiter(map(len, seqs), np.int64, len(seqs))
        data = np.fromiter(itertools.chain.from_iterable(seqs), np.int32, int(lens.sum()))
        starts = np.zeros(len(seqs), np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        out_lens = lens[widx]
        offsets = np.zeros(len(widx) + 1, np.int64)
        np.cumsum(out_lens, out=offsets[1:])
        ids = data[np.repeat(starts[widx] - offsets[:-1], out_lens) + np.arange(offsets[-1])]
        seps = offsets[np.flatnonzero(widx == len(uniq) - 1)]
        return ids, np.concatenate([[0], seps, [len(ids)]]).astype(np.int64)

    def encode_to_text(self, lines: list[str], ids: bool = True) -> list[str]:
        """One string per text: space-separated ids, or byte-level pieces (``Ġthe Ġcat``) —
        the CLI's output, built from a per-word string cache."""
        if not ids and self._mode == "word":
            return self.subword_text(lines)
        strs = self._str_cache[ids]
        if len(strs) > _CACHE_LIMIT:
            strs.clear()
        flat = self._joined_words(lines)
        words = flat if flat is not None else [self._words(t) for t in lines]
        todo = set(flat if flat is not None else itertools.chain.from_iterable(words))
        if flat is not None:
            todo.discard(LINE_SEP)
        todo.difference_update(strs)
        self._fill(todo)
        tokens = self._tokens
        for w in todo:
            r = self._cache[w]
            strs[w] = " ".join(map(str, r)) if ids else " ".join([tokens[i] for i in r])
        get = strs.__getitem__
        if flat is None:
            return [" ".join(map(get, ws)) for ws in words]
        strs[LINE_SEP] = "\n"
        try:
            text = " ".join(map(get, flat))
        finally:
            del strs[LINE_SEP]
        return text.replace(" \n", "\n").replace("\n ", "\n").split("\n")

    def subword_text(self, lines: list[str]) -> list[str]:
        """Pieces as text. Byte-level: symbols separated by spaces. Word mode: subword-nmt's
        format (``fl@@ y@@ ing``: ``@@`` on every piece but a word's last, no ``</w>``); an
        unseen character is ``<unk>``, as its id says (printed as itself for a codes file)."""
        if self._mode != "word":
            return self.encode_to_text(lines, ids=False)
        out = []
        for line in lines:
            ws = self._words(line)
            self._fill(set(ws))
            pieces = []
            for w in ws:
                if w in self._special_ids:
                    pieces.append(w)
                    continue
                syms = [self._symbol(i) for i in (self._raw if self._print_unknown
                                                   else self._cache)[w]]
                pieces.extend(s + "@@" for s in syms[:-1])
                pieces.append(syms[-1][:-len(EOW)] if syms[-1].endswith(EOW) else syms[-1])
            out.append(" ".join(pieces))
        return out

    def _joined_words(self, lines: list[str]) -> list[str] | None:
        """All texts' words in one regex call, LINE_SEP between texts; None when not applicable."""
        s = self._settings
        if not self.byte_level or self._split_specials is not None \
                or s["pattern"] != GPT2_PATTERN or s.get("normalizer") or s.get("add_prefix_space"):
            return None
        text = LINE_SEP.join(lines)
        if text.count(LINE_SEP) != max(len(lines) - 1, 0):
            return None
        if self.lowercase:
            text = text.lower()
        return compiled(GPT2_JOINED_PATTERN).findall(text)

    def _words(self, text: str) -> list[str]:
        """Pre-tokenized words; special tokens are cut out first and kept as they are."""
        if self._sp is not None:
            return self._sp.words(text, self._split_specials, self._special_of)
        if self._split_specials is None:
            return self._plain_words(text)
        out = []
        for k, part in enumerate(self._split_specials.split(text)):
            if k % 2:
                out.append(self._special_of(part))
            elif part:
                out.extend(self._plain_words(part))
        return out

    def _plain_words(self, text: str) -> list[str]:
        """Normalize (NFC, lowercase), add HF's prefix space, split with the pattern."""
        s = self._settings
        if s.get("normalizer") == "NFC":
            import unicodedata

            text = unicodedata.normalize("NFC", text)
        if self.lowercase:
            text = text.lower()
        if s.get("add_prefix_space") and not text.startswith(" "):
            text = " " + text
        return split_words(text, s["pattern"], bool(s.get("gaps", False)))

    def _special_of(self, matched: str) -> str:
        """The special token a match stands for (lstrip/rstrip flags let it take whitespace)."""
        for t in (matched, matched.strip(), matched.lstrip(), matched.rstrip()):
            if t in self._special_ids:
                return t
        return matched

    def _fill(self, words: set[str]) -> None:
        """Put every word not yet cached through the merge kernel, all in one call."""
        cache = self._cache
        todo = words.difference(cache)
        if not todo:
            return
        if len(cache) + len(todo) > _CACHE_LIMIT:
            cache.clear()
            self._raw.clear()
            todo = set(words)
        for w in todo.intersection(self._special_ids):
            cache[w] = (self._special_ids[w],)
            todo.discard(w)
        if self._settings.get("ignore_merges"):
            not_whole = self._not_whole()
            for w in list(todo):
                i = self._ids.get(to_symbols(word_bytes(w)) if self.byte_level else w)
                if i is not None and i not in not_whole:
                    cache[w] = (i,)
                    todo.discard(w)
        todo = list(todo)
        sym, wstart = self._initial_symbols(todo)
        if self.byte_level and self._sp is None and len(todo) <= _PY_WORDS and \
                self._table is None:
            ids, ostart = self._merge_py(sym.tolist(), wstart.tolist())
        else:
            from .kernels import encode_words

            table, keys, new = self._merge_table()
            ids, ostart = encode_words(sym, wstart, table, keys, new)
            ids = ids.tolist()
            ostart = ostart.tolist()
        if self.byte_level:
            for k, w in enumerate(todo):
                cache[w] = tuple(ids[ostart[k]:ostart[k + 1]])
            return
        if self._sp is not None:
            v = len(self._tokens)
            for k, w in enumerate(todo):
                r = ids[ostart[k]:ostart[k + 1]]
                cache[w] = tuple(self._sp.fallback(r, self._symbol) if r and max(r) >= v else r)
            return
        raw = self._raw
        v = len(self._tokens)
        unk, unk_end = self._ids[UNK], self._ids[UNK + EOW]
        for k, w in enumerate(todo):
            r = tuple(ids[ostart[k]:ostart[k + 1]])
            raw[w] = r
            if max(r) >= v:
                r = tuple(i if i < v else unk_end if self._symbol(i).endswith(EOW) else unk for i in r)
            cache[w] = r

    def _not_whole(self) -> set[int]:
        """Ids a word may not be as a whole (``ignore_merges``): specials and placeholders."""
        if self._not_whole_ids is None:
            skip = {self._ids[t] for t in self._settings["special_tokens"]}
            for key in ("reserved_ids", "control_ids", "byte_ids"):
                skip.update(self._settings.get(key) or [])
            self._not_whole_ids = skip
        return self._not_whole_ids

    def _initial_symbols(self, words: list[str]):
        """Words → flat int32 symbol ids + int64 word starts. Byte-level: bytes missing from a
        foreign vocabulary are dropped, as HF does without an unk token."""
        if self.byte_level:
            if self._byte_lut is None:
                self._byte_lut = np.array([self._ids.get(c, -1) for c in bytes_to_unicode()],
                                          np.int32)
            lut = self._byte_lut
            raw = [word_bytes(w) for w in words]
            sym = lut[np.frombuffer(b"".join(raw), np.uint8)]
            wstart = np.zeros(len(raw) + 1, np.int64)
            np.cumsum(np.fromiter(map(len, raw), np.int64, len(raw)), out=wstart[1:])
            if (sym < 0).any():
                keep = sym >= 0
                wstart = np.concatenate([[0], np.cumsum(keep)])[wstart]
                sym = sym[keep]
            return sym, wstart
        sym = []
        wstart = [0]
        if self._sp is not None:  # characters are the symbols
            for w in words:
                sym.extend(map(self._symbol_id, w))
                wstart.append(len(sym))
            return np.array(sym, np.int32), np.array(wstart, np.int64)
        for w in words:
            sym.extend(self._symbol_id(c) for c in w[:-1])
            sym.append(self._symbol_id(w[-1] + EOW))
            wstart.append(len(sym))
        return np.array(sym, np.int32), np.array(wstart, np.int64)

    def _symbol_id(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = self._ext.setdefault(s, len(self._tokens) + len(self._ext))
        return i

    def _symbol(self, i: int) -> str:
        if i < len(self._tokens):
            return self._tokens[i]
        if len(self._ext) != len(self._ext_r):
            self._ext_r = {v: k for k, v in self._ext.items()}
        return self._ext_r[i]

    def _merge_py(self, sym: list[int], wstart: list[int]) -> tuple[list[int], list[int]]:
        """The merge kernel's result in plain Python (``merge_py``): for a few words."""
        from . import merge_py

        if self._py_ranks is None:
            self._py_ranks = merge_py.pair_ranks(self._merges)
        return merge_py.merge_words(sym, wstart, self._py_ranks, self._merges, self._tokens,
                                    self._ids)

    def _merge_table(self):
        if self._table is None:
            from .kernels import merge_table

            m = np.array(self._merges, np.int32).reshape(-1, 2)
            left, right = m[:, 0].copy(), m[:, 1].copy()
            new = np.array([self._ids[self._tokens[a] + self._tokens[b]] for a, b in self._merges],
                           np.int32)
            table, keys = merge_table(left, right, new)
            self._table = (table, keys, new)
        return self._table

    # ---- decoding -----------------------------------------------------------------------------

    def decode_bytes(self, ids) -> bytes:
        """Byte-level: the exact bytes the ids stand for."""
        if self._sp is not None:
            self._check_ids(ids)
            return self._sp.decode(ids, self._tokens)
        if not self.byte_level:
            return self.decode(ids).encode("utf-8", "surrogateescape")
        if self._id_bytes is None:
            table = []
            for t in self._tokens:
                b = None if t in self._special_ids else from_symbols(t)
                table.append(b if b is not None else t.encode("utf-8", "surrogatepass"))
            self._id_bytes = table
        table = self._id_bytes
        self._check_ids(ids)
        return b"".join(map(table.__getitem__, ids))

    def decode(self, ids, errors: str = "replace") -> str:
        """Text of the ids. Byte-level bytes that are not valid UTF-8 follow ``errors``."""
        if self._mode != "word":
            return self.decode_bytes(ids).decode("utf-8", errors)
        self._check_ids(ids)
        out = []
        for i in ids:
            s = self._tokens[i]
            if s in self._special_ids:
                out.append(s + " ")
            elif s.endswith(EOW):
                out.append("\ufffd " if s == UNK + EOW else s[:-len(EOW)] + " ")
            else:
                out.append("\ufffd" if s == UNK else s)
        text = "".join(out)
        return text[:-1] if text.endswith(" ") else text

    def _check_ids(self, ids) -> None:
        if len(ids) and (min(ids) < 0 or max(ids) >= len(self._tokens)):
            bad = next(i for i in ids if not 0 <= i < len(self._tokens))
            raise UsageError(f"id {bad} is not in the vocabulary (0..{len(self._tokens) - 1})")

    def __repr__(self) -> str:
        return f"BPETokenizer({self._mode}, vocab_size={self.vocab_size}, merges={len(self._merges)})"


def _special_regex(specials, flags: dict):
    """Special tokens cut out of the text, longest first (HF's leftmost-longest added tokens);
    ``single_word`` needs no word character around, ``lstrip``/``rstrip`` take the whitespace."""
    import regex

    alts = []
    for t in sorted(specials, key=len, reverse=True):
        f = flags.get(t, {})
        a = regex.escape(t)
        if f.get("single_word"):
            a = rf"(?<!\w){a}(?!\w)"
        alts.append((r"\s*" if f.get("lstrip") else "") + a + (r"\s*" if f.get("rstrip") else ""))
    return regex.compile("(" + "|".join(alts) + ")")


def _encode_chunk(tok: BPETokenizer, lines: list[str]):
    return tok._encode_flat(lines)


def _warm_up() -> None:
    from .kernels import warm_up

    warm_up()
