"""Training options in one place, checked before any work starts (the CLI and ``train()`` share it)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from ..errors import UsageError

MODELS = ("cbow", "skipgram")
SUBWORDS = ("none", "char", "bpe")
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
                                 "`embedkit bpe learn`)")
            if not os.path.isdir(self.tokenizer):
                raise UsageError(f"--tokenizer {self.tokenizer}: not a folder")
        elif self.tokenizer:
            raise UsageError("--tokenizer is only used with --subwords bpe")
        return self

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
