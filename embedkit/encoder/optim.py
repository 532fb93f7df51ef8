"""AdamW with linear warmup then linear decay to zero, and global gradient-norm clipping.

The state (two moment arrays per parameter and the step count) is plain arrays and an int, so a
checkpoint stores it beside the parameters and ``--resume`` continues bit-exactly.
"""
from __future__ import annotations

import math

import numpy as np

from . import kernels as K


def lr_at(step: int, lr: float, warmup: int, total: int) -> float:
    """Learning rate for the 1-based ``step``: rises linearly over ``warmup`` steps, then falls
    linearly, reaching 0 just after ``total`` (so the last step still learns)."""
    if warmup > 0 and step <= warmup:
        return lr * step / warmup
    if total <= warmup:
        return lr
    return lr * max(0.0, (total - step + 1) / (total - warmup))


def decays(name: str, shape: tuple[int, ...]) -> bool:
    """Weight decay applies to matrices (incl. the piece embeddings), not to biases or LN gains."""
    return len(shape) == 2


class AdamW:
    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, warmup: int = 0,
                 total: int = 1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, clip: float = 1.0):
        self.lr, self.warmup, self.total = lr, warmup, total
        self.b1, self.b2 = betas
        self.eps, self.weight_decay, self.clip = eps, weight_decay, clip
        self.step_count = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> tuple[float, float]:
        """Update ``params`` in place; returns (gradient norm before clipping, learning rate)."""
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        if not math.isfinite(norm):
            return norm, 0.0
        scale = min(1.0, self.clip / (norm + 1e-6)) if self.clip > 0 else 1.0
        self.step_count += 1
        t = self.step_count
        lr = lr_at(t, self.lr, self.warmup, self.total)
        bc1, bc2 = 1.0 - self.b1 ** t, 1.0 - self.b2 ** t
        for name, p in params.items():
            wd = self.weight_decay if decays(name, p.shape) else 0.0
            K.adamw_update(p.reshape(-1), grads[name].reshape(-1), self.m[name].reshape(-1),
                           self.v[name].reshape(-1), lr, self.b1, self.b2, self.eps, wd, bc1, bc2,
                           scale)
        return norm, lr

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {"m." + k: a for k, a in self.m.items()}
        out.update({"v." + k: a for k, a in self.v.items()})
        return out

    def load_state(self, arrays: dict[str, np.ndarray], step: int) -> None:
        for k in self.m:
            self.m[k] = np.array(arrays["m." + k], dtype=self.m[k].dtype)
            self.v[k] = np.array(arrays["v." + k], dtype=self.v[k].dtype)
        self.step_count = step
