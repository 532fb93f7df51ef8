"""Training options in one place, checked before any work starts (the CLI and ``train()`` share it)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from ..errors import UsageError

MODELS = ("cbow", "skipgram")
SUBWORDS = ("none", "char", "bpe")
BPE_BAGS = ("all", "weighted", "segmentation")
# "weighted" meets the bar set against char n-grams for CBOW at 8k-64k tokens but for skip-gram
# only at 64k (8k-32k: WS-353 0.013-0.017 behind char's, the bar allows 0.01), and it refuses
# tokenizers the segmentation takes (sentencepiece); so the default stays the segmentation
# (README, "BPE bags").
BPE_BAG_DEFAULT = "segmentation"
_MAX_ROWS = 2**31 - 1  # row ids are int32 in the kernels


@dataclass(frozen=True)
class TrainOptions:
    model: str = "cbow"
    dim: int = 100
    window: int = 5
    negative: int = 5
    epochs: int = 5
    min_count: int = 5
    max_vocab: int | None = None
    sample: float = 1e-4
    lr: float = 0.05
    threads: int = 1
    seed: int = 0
    subwords: str = "none"
    minn: int = 3
    maxn: int = 6
    buckets: int = 2_000_000
    tokenizer: str | None = None
    lowercase: bool = False
    bpe_bag: str | None = None  # None: BPE_BAG_DEFAULT (only with --subwords bpe)
    bpe_min_len: int | None = None  # None: 2
    bpe_max_len: int | None = None  # None: 0 = no bound

    def validate(self) -> "TrainOptions":
        """Raise UsageError naming the option for any value that cannot give a sensible model."""
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.subwords not in SUBWORDS:
            raise UsageError(f"--subwords must be one of {', '.join(SUBWORDS)}, got {self.subwords!r}")
        _int_range("--dim", self.dim, 1, 10_000)
        _int_range("--window", self.window, 1, 1_000)
        _int_range("--negative", self.negative, 1, 1_000)
        _int_range("--epochs", self.epochs, 1, 100_000)
        _int_range("--min-count", self.min_count, 1, 2**62)
        if self.max_vocab is not None:
            _int_range("--max-vocab", self.max_vocab, 1, _MAX_ROWS)
        _int_range("--threads", self.threads, 1, 1_024)
        _int_range("--seed", self.seed, 0, 2**63 - 1)
        if not (0.0 <= self.sample < 1.0):
            raise UsageError(f"--sample must be in [0, 1), got {self.sample}")
        if not (0.0 < self.lr <= 10.0):
            raise UsageError(f"--lr must be in (0, 10], got {self.lr}")
        if self.subwords == "char":
            _int_range("--minn", self.minn, 1, 100)
            _int_range("--maxn", self.maxn, self.minn, 100)
            _int_range("--buckets", self.buckets, 1, _MAX_ROWS // 2)
        if self.subwords == "bpe":
            if not self.tokenizer:
                raise UsageError("--subwords bpe needs --tokenizer TOKDIR (a folder written by "
                                 "`embedkit bpe learn`, HF vocab.json + merges.txt, or a "
                                 "subword-nmt codes file)")
            if not os.path.exists(self.tokenizer):
                raise UsageError(f"--tokenizer {self.tokenizer}: no such folder or codes file")
        elif self.tokenizer:
            raise UsageError("--tokenizer is only used with --subwords bpe")
        self._validate_bpe_bag()
        return self

    def bpe_bag_settings(self) -> tuple[str, int, int]:
        """(bag, min length, max length) with the defaults filled in."""
        return (self.bpe_bag or BPE_BAG_DEFAULT, 2 if self.bpe_min_len is None else self.bpe_min_len,
                0 if self.bpe_max_len is None else self.bpe_max_len)

    def _validate_bpe_bag(self) -> None:
        given = [n for n, v in (("--bpe-bag", self.bpe_bag), ("--bpe-min-len", self.bpe_min_len),
                                ("--bpe-max-len", self.bpe_max_len)) if v is not None]
        if given and self.subwords != "bpe":
            raise UsageError(f"{given[0]} is only used with --subwords bpe")
        if self.bpe_bag is not None and self.bpe_bag not in BPE_BAGS:
            raise UsageError(f"--bpe-bag must be one of {', '.join(BPE_BAGS)}, got {self.bpe_bag!r}")
        bag, lo, hi = self.bpe_bag_settings()
        if bag == "segmentation" and (self.bpe_min_len is not None or self.bpe_max_len is not None):
            raise UsageError("--bpe-min-len and --bpe-max-len are only used with --bpe-bag all "
                             "or weighted")
        _int_range("--bpe-min-len", lo, 1, 1_000)
        _int_range("--bpe-max-len", hi, 0, 1_000)
        if hi and hi < lo:
            raise UsageError(f"--bpe-max-len {hi} is below --bpe-min-len {lo} (0 = no bound)")

    def settings(self) -> dict:
        """The options as stored in a model's metadata."""
        return asdict(self)


def _int_range(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise UsageError(f"{name} must be between {lo} and {hi}, got {value}")


def check_memory(rows: int, dim: int, vocab: int) -> None:
    """Refuse a model that cannot fit in this machine's RAM before allocating it."""
    need = (rows + 2 * vocab) * dim * 4
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise UsageError(f"the model needs {need / 2**30:.1f} GiB ({rows:,} input rows x {dim} "
                         f"dimensions) but this machine has {have / 2**30:.1f} GiB; lower --dim, "
                         f"--buckets or --max-vocab")
