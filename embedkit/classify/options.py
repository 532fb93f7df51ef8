"""Training options in one place, checked before any work starts (the CLI and
``Classifier.train`` share them). Imports neither numpy nor numba, so a bad option is reported
without loading them."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from ..errors import UsageError

SUBWORDS = ("none", "char", "bpe")
_MAX_ROWS = 2**31 - 1
LOSSES = ("softmax", "ns", "hs", "ova")
MODELS = ("fasttext", "nb")
# fastText-only options: given with --model nb they are refused, not ignored (field -> flag).
NOT_NB = {"dim": "--dim", "lr": "--lr", "epochs": "--epochs", "neg": "--neg",
          "subwords": "--subwords", "minn": "--minn", "maxn": "--maxn",
          "tokenizer": "--tokenizer", "pretrained_vectors": "--pretrained-vectors"}


@dataclass(frozen=True)
class ClassifyOptions:
    dim: int = 100
    lr: float = 0.1
    epochs: int = 5
    word_ngrams: int | None = None  # None: 1 (fastText's default), 2 with model "nb"
    buckets: int = 2_000_000
    min_count: int = 1
    min_count_label: int = 1
    loss: str = "softmax"
    neg: int = 5
    subwords: str = "none"
    minn: int = 3
    maxn: int = 6
    tokenizer: str | None = None
    pretrained_vectors: str | None = None
    valid: str | None = None
    label_prefix: str = "__label__"
    lowercase: bool = False
    threads: int = 1
    seed: int = 0
    quiet: bool = True
    model: str = "fasttext"
    l2: float | str = 1.0  # --model nb: C, or "auto" (cross-validated)

    def __post_init__(self):
        # nb's strength is the bigram features (Wang & Manning; README's measured table), so its
        # default is 2; the fastText-style model keeps fastText's 1.
        if self.word_ngrams is None:
            object.__setattr__(self, "word_ngrams", 2 if self.model == "nb" else 1)

    def validate(self) -> "ClassifyOptions":
        """Raise UsageError naming the option for any value that cannot give a sensible model."""
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.model == "nb":
            defaults = ClassifyOptions()
            refuse_for_nb([k for k in NOT_NB if getattr(self, k) != getattr(defaults, k)])
            if self.loss not in ("softmax", "ova"):
                raise UsageError(f"--loss {self.loss} is not used by --model nb (softmax or ova)")
            if self.l2 != "auto" and not (isinstance(self.l2, (int, float))
                                          and 0.0 < self.l2 < float("inf")):
                raise UsageError(f"--l2 must be a positive number or auto, got {self.l2!r}")
        elif self.l2 != 1.0:
            raise UsageError("--l2 is only used with --model nb")
        if self.loss not in LOSSES:
            raise UsageError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.subwords not in SUBWORDS:
            raise UsageError(f"--subwords must be one of {', '.join(SUBWORDS)}, got {self.subwords!r}")
        _int_range("--dim", self.dim, 1, 10_000)
        _int_range("--epochs", self.epochs, 1, 100_000)
        _int_range("--word-ngrams", self.word_ngrams, 1, 100)
        _int_range("--min-count", self.min_count, 1, 2**62)
        _int_range("--min-count-label", self.min_count_label, 1, 2**62)
        _int_range("--neg", self.neg, 1, 1_000)
        _int_range("--threads", self.threads, 1, 1_024)
        _int_range("--seed", self.seed, 0, 2**63 - 1)
        if self.word_ngrams > 1 or self.subwords == "char":
            _int_range("--buckets", self.buckets, 1, _MAX_ROWS // 2)
        if not (0.0 < self.lr <= 100.0):
            raise UsageError(f"--lr must be in (0, 100], got {self.lr}")
        if self.subwords == "char":
            _int_range("--minn", self.minn, 1, 100)
            _int_range("--maxn", self.maxn, self.minn, 100)
        if self.subwords == "bpe":
            if not self.tokenizer:
                raise UsageError("--subwords bpe needs --tokenizer TOKDIR (from `embedkit bpe learn`)")
            if not os.path.exists(self.tokenizer):
                raise UsageError(f"--tokenizer {self.tokenizer}: no such folder or codes file")
        elif self.tokenizer:
            raise UsageError("--tokenizer is only used with --subwords bpe")
        if self.valid == "-":
            raise UsageError("--valid -: the validation set is read every epoch; give a file")
        return self

    def effective_buckets(self) -> int:
        """fastText: no buckets when nothing hashes into them (wordNgrams 1, no char n-grams)."""
        return self.buckets if (self.word_ngrams > 1 or self.subwords == "char") else 0

    def settings(self) -> dict:
        s = asdict(self)
        for k in ("quiet", "valid", "pretrained_vectors", "tokenizer", "model", "l2"):
            s.pop(k)
        s["buckets"] = self.effective_buckets()
        if self.subwords != "char":
            s["minn"] = s["maxn"] = 0
        return s


def refuse_for_nb(fields) -> None:
    """UsageError naming the fastText-only options among ``fields`` (given with --model nb)."""
    given = [NOT_NB[k] for k in NOT_NB if k in fields]
    if given:
        raise UsageError(f"{', '.join(given)}: not used by --model nb (a fastText-style option)")


def _int_range(name: str, v, lo: int, hi: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise UsageError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
