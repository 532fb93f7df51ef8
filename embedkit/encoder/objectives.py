"""Training objectives: which pieces the model sees and which it must predict.

``mlm``: BERT's blank language modelling — each real, non-special piece is chosen with
probability 15%; a chosen piece becomes [MASK] 80% of the time, a random regular piece 10%, and
stays itself 10%; the loss is over the chosen pieces. ``clm``: predict every next piece, with
attention restricted to earlier positions (done by the network's causal mask).
"""
from __future__ import annotations

import numpy as np

MLM_RATE = 0.15


def mlm_batch(ids: np.ndarray, keep: np.ndarray, rng: np.random.Generator, mask_id: int,
              is_regular: np.ndarray, rate: float = MLM_RATE):
    """[B, T] ids/keep -> inputs [B, T], rows [M] (flat positions), targets [M].

    ``is_regular`` [V] marks the ids that may be chosen and drawn as random replacements (not
    specials). At least one piece is chosen when any is eligible, so every batch has a loss.
    """
    regular = np.flatnonzero(is_regular)
    eligible = keep & is_regular[ids]
    chosen = (rng.random(ids.shape) < rate) & eligible
    rows = np.flatnonzero(chosen)
    if rows.size == 0:
        candidates = np.flatnonzero(eligible)
        if candidates.size == 0:
            return ids.copy(), rows, ids.reshape(-1)[rows]
        rows = candidates[rng.integers(0, candidates.size, 1)]
    targets = ids.reshape(-1)[rows].copy()
    inputs = ids.copy()
    flat = inputs.reshape(-1)
    u = rng.random(rows.size)
    flat[rows[u < 0.8]] = mask_id
    swap = rows[(u >= 0.8) & (u < 0.9)]
    flat[swap] = regular[rng.integers(0, regular.size, swap.size)]
    return inputs, rows, targets


def clm_batch(windows: np.ndarray, keep: np.ndarray):
    """[B, T+1] windows/keep -> inputs [B, T], rows [M], targets [M]: every position whose next
    piece is real predicts it."""
    inputs = np.ascontiguousarray(windows[:, :-1])
    ok = keep[:, :-1] & keep[:, 1:]
    rows = np.flatnonzero(ok)
    targets = windows[:, 1:].reshape(-1)[rows]
    return inputs, rows, targets
