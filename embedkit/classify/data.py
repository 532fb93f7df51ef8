"""Labelled text lines, as ``classify``, ``probe`` and ``encoder finetune`` read them.

Two formats, told apart by content (per file, from its first labelled line):

- fastText: every whitespace-separated word that starts with the label prefix (``__label__``) is a
  label, wherever it stands in the line (fastText's own rule); the other words are the text.
- TSV: ``label<TAB>text``; the field before the first TAB is the one label.

Text is split on fastText's whitespace (space, ``\t \n \v \f \r``; not Unicode spaces such as
NBSP, which fastText keeps inside words: ``split_words``); ``lowercase`` lower-cases it. Invalid
UTF-8 is kept with ``surrogateescape`` so words hash to the same bytes fastText sees. Labels are
stored without the prefix, so the two formats mix freely; ``style`` remembers which one a file
used, so output can be written back in the same form.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

from ..corpus import check_no_nul, decode, iter_blocks, iter_lines
from ..errors import InputError, UsageError

LABEL_PREFIX = "__label__"

# Where str.split() and fastText (Dictionary::readWord) disagree: str.split also splits on these,
# fastText does not; fastText splits on NUL, str.split does not (the readers refuse NUL anyway).
_NOT_FASTTEXT_SPACE = re.compile("[\x00\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_FASTTEXT_WORD = re.compile("[^ \t\n\v\f\r\x00]+")


def split_words(text: str) -> list[str]:
    """Words as fastText reads them; ``str.split`` (fast) unless the line holds a space it must not cut at."""
    if _NOT_FASTTEXT_SPACE.search(text) is None:
        return text.split()
    return _FASTTEXT_WORD.findall(text)


def whole_line_blocks(paths: list[str]):
    """The ``corpus`` blocks of ``paths`` (``-``: stdin) for prediction: a NUL, or a line over
    1 MiB (a block that is not whole lines), is an error naming the line."""
    for path in paths:
        for block in iter_blocks(path):
            check_no_nul(block)
            if not block.complete:
                raise InputError(block.path, "line longer than 1 MiB", block.lineno)
            yield block


def iter_word_batches(paths: list[str], label_prefix: str,
                      size: int = 1024) -> Iterator[list[list[str]]]:
    """The words of every line of ``paths`` (``-``: stdin), in batches of ``size`` lines; words
    starting with ``label_prefix`` are dropped (what ``classify predict`` scores).

    Each block of lines is decoded and searched for non-fastText spaces and for the prefix once;
    without such spaces its lines are cut with ``str.split``, the words ``split_words`` gives,
    several times faster on short lines (a CRLF line's ``\r`` is dropped by ``split`` too)."""
    carry: list[list[str]] = []
    for block in whole_line_blocks(paths):
        text = decode(block, "surrogateescape")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        cut = str.split if _NOT_FASTTEXT_SPACE.search(text) is None else split_words
        words = [cut(line) for line in lines]
        if label_prefix in text:
            words = [[w for w in ws if not w.startswith(label_prefix)] for ws in words]
        if carry:
            words = carry + words
        full = len(words) - len(words) % size
        for i in range(0, full, size):
            yield words[i:i + size]
        carry = words[full:]
    if carry:
        yield carry


class Example(NamedTuple):
    path: str
    lineno: int
    labels: tuple[str, ...]  # without the prefix; empty for an unlabelled (skipped) line
    words: list[str]


@dataclass
class Reader:
    """Streams examples from files; counts what it had to skip so the CLI can say so."""

    label_prefix: str = LABEL_PREFIX
    lowercase: bool = False
    require_labels: bool = True
    skipped: int = 0  # non-empty lines that carry no label
    first_skipped: tuple[str, int] | None = None
    styles: dict[str, str] = field(default_factory=dict)  # path -> "fasttext" | "tsv"

    def __post_init__(self):
        if not self.label_prefix or any(c.isspace() for c in self.label_prefix):
            raise UsageError(f"--label-prefix {self.label_prefix!r}: must be non-empty, without spaces")

    def __call__(self, paths: Iterable[str | os.PathLike]) -> Iterator[Example]:
        for path in paths:
            yield from self._file(os.fspath(path))

    def _file(self, path: str) -> Iterator[Example]:
        style = None
        prefix = self.label_prefix
        for line in iter_lines([path], errors="surrogateescape"):
            text = line.text
            if not line.end:
                raise InputError(path, "line longer than 1 MiB: not a labelled example", line.lineno)
            if not text.strip():
                continue
            if style is None:
                if any(w.startswith(prefix) for w in split_words(text)):
                    style = "fasttext"
                elif "\t" in text:
                    style = "tsv"
                self.styles[path] = style or "fasttext"
            if style == "tsv":
                label, _, rest = text.partition("\t")
                label = label.strip()
                labels = (label,) if label and "\t" in text else ()
                words = split_words(rest)
            else:
                words = split_words(text)
                n = 0
                while n < len(words) and words[n].startswith(prefix) and len(words[n]) > len(prefix):
                    n += 1
                if text.count(prefix) == n:  # labels only in front, the usual layout: no word loop
                    labels = tuple(dict.fromkeys([w[len(prefix):] for w in words[:n]]))
                    words = words[n:]
                else:
                    labels_list, rest = [], []
                    for w in words:
                        if w.startswith(prefix) and len(w) > len(prefix):
                            labels_list.append(w[len(prefix):])
                        else:
                            rest.append(w)
                    labels, words = tuple(dict.fromkeys(labels_list)), rest
            if self.lowercase:
                words = [w.lower() for w in words]
            if not labels:
                if self.require_labels:
                    self.skipped += 1
                    if self.first_skipped is None:
                        self.first_skipped = (path, line.lineno)
                    continue
            yield Example(path, line.lineno, labels, words)

    def skipped_message(self) -> str | None:
        """The one warning line for unlabelled lines, or None when there were none."""
        if not self.skipped:
            return None
        path, lineno = self.first_skipped
        return (f"{path}:{lineno}: skipped {self.skipped} line(s) without a label "
                f"(expected '{self.label_prefix}LABEL text' or 'LABEL<TAB>text')")


def read_examples(paths: Iterable[str | os.PathLike], label_prefix: str = LABEL_PREFIX,
                  lowercase: bool = False) -> tuple[list[Example], Reader]:
    """All labelled examples of ``paths`` in memory (for the small sets probes and fine-tuning use).

    Raises InputError when no line carries a label.
    """
    paths = [os.fspath(p) for p in paths]
    reader = Reader(label_prefix, lowercase)
    examples = list(reader(paths))
    if not examples:
        raise InputError(paths[0] if len(paths) == 1 else ", ".join(paths),
                         "no labelled lines (expected '__label__LABEL text' or 'LABEL<TAB>text')")
    return examples, reader


def read_single_label(path: str | os.PathLike, reader: Reader) -> tuple[list[list[str]], list[str]]:
    """(texts, labels) of one file of single-label lines, for probes and fine-tuning (softmax
    over labels): a line with several labels and a file with no labelled line are refused."""
    path = os.fspath(path)
    texts, labels = [], []
    for ex in reader([path]):
        if len(ex.labels) > 1:
            raise InputError(path, f"line has {len(ex.labels)} labels: probes and fine-tuning "
                                   f"take one label per line", ex.lineno)
        texts.append(ex.words)
        labels.append(ex.labels[0])
    if not labels:
        what = (f"no labelled lines ({reader.skipped} without a label)" if reader.skipped
                else "empty file: no labelled lines")
        raise InputError(path, f"{what} (expected '{reader.label_prefix}LABEL text' or "
                               f"'LABEL<TAB>text')")
    return texts, labels


def read_classes(path: str | os.PathLike, reader: Reader, who: str
                 ) -> tuple[list[list[str]], list[str], list[str]]:
    """``read_single_label`` plus the sorted label set, refusing a file with one class
    (``who`` names what needs two: "a probe", "a classifier")."""
    texts, gold = read_single_label(path, reader)
    labels = sorted(set(gold))
    if len(labels) < 2:
        raise InputError(path, f"all {len(gold)} labelled lines have the one label "
                               f"{labels[0]!r}: {who} needs at least two classes")
    return texts, gold, labels
