"""L2-regularised logistic regression in NumPy, for linear probes.

The objective is scikit-learn's ``LogisticRegression(C)`` (so results can be checked against
it): ``C * sum_i loss_i + 0.5 * ||W||^2`` with the bias unpenalised; divided here by ``C * n`` so
gradients are O(1) whatever n. Two labels: one weight vector and the logistic loss; more: one
vector per label and the softmax cross-entropy (multinomial). Features are standardised with
the training part's mean and standard deviation (a constant column is only centred), so one C
grid suits features of any scale. The objective is strictly convex, so a descent method with
a line search finds its single minimum: Newton's method for two classes (its [D+1]^2 Hessian is
one BLAS product over the data), L-BFGS for more (the multinomial Hessian grows as (D K)^2).
Warm starts along a C grid make cross-validation cheap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import TrainingError

TOL = 1e-6          # stop when the largest gradient component is below this (objective / (C n))
MAX_ITER = 2000
MEMORY = 10


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n, D] -> (mean [D], scale [D]) in float64; scale 1 where a column is constant."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


def loss_and_grad(theta: np.ndarray, x: np.ndarray, y: np.ndarray, n_classes: int,
                  c: float) -> tuple[float, np.ndarray]:
    """Objective / (C n) and its gradient at flat ``theta`` = [W (D x K') row-major, b (K')].

    x [n, D] standardised float64, y [n] int labels 0..n_classes-1; K' = 1 for two classes.
    """
    n, d = x.shape
    k = 1 if n_classes == 2 else n_classes
    w = theta[:d * k].reshape(d, k)
    b = theta[d * k:]
    z = x @ w + b                                                          # [n, K']
    lam = 1.0 / (c * n)
    if k == 1:
        z = z[:, 0]
        yf = (y == 1).astype(np.float64)
        loss = float(np.sum(np.logaddexp(0.0, z) - yf * z)) / n
        g = (sigmoid(z) - yf)[:, None] / n                                # [n, 1]
    else:
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        lse = np.log(s) + zmax                                             # [n, 1]
        loss = float(np.sum(lse[:, 0] - z[np.arange(n), y])) / n
        g = e / s
        g[np.arange(n), y] -= 1.0
        g /= n
    loss += 0.5 * lam * float(np.vdot(w, w))
    grad = np.concatenate([(x.T @ g + lam * w).ravel(), g.sum(axis=0)])
    return loss, grad


def binary_hessian(theta: np.ndarray, x: np.ndarray, c: float) -> np.ndarray:
    """[D+1, D+1] Hessian of the two-class objective / (C n) at ``theta`` = [w (D), b]."""
    n, d = x.shape
    s = sigmoid(x @ theta[:d] + theta[d])
    s *= (1.0 - s) / n                                                     # [n]
    h = np.empty((d + 1, d + 1))
    h[:d, :d] = x.T @ (x * s[:, None])
    h[:d, :d][np.diag_indices(d)] += 1.0 / (c * n)
    h[:d, d] = h[d, :d] = x.T @ s
    h[d, d] = s.sum()
    return h


def newton(fg, hess, theta: np.ndarray, tol: float = TOL, max_iter: int = 100
           ) -> tuple[np.ndarray, float, int]:
    """Newton's method with Armijo backtracking for a smooth strictly convex ``fg`` whose
    Hessian ``hess(theta)`` is cheap (two classes, D up to ~1000): a handful of iterations,
    each one BLAS product over the data, where L-BFGS needs a hundred or more."""
    f, g = fg(theta)
    it = 0
    for it in range(1, max_iter + 1):
        _check_finite(f, g)
        if np.max(np.abs(g)) <= tol:
            break
        try:
            d = -np.linalg.solve(hess(theta), g)
        except np.linalg.LinAlgError:
            d = -g
        gd = float(g @ d)
        if gd >= 0:
            d, gd = -g, -float(g @ g)
        found = _backtrack(fg, theta, f, d, gd)
        if found is None:
            return theta, f, it
        new, f_new, g_new = found
        theta, f, g = new, f_new, g_new
    return theta, f, it


def _backtrack(fg, theta: np.ndarray, f: float, d: np.ndarray, gd: float):
    """Armijo backtracking along ``d`` from step 1, halving: ``(theta, f, grad)`` at the first
    sufficient decrease, or None once the step is too small to change anything."""
    step = 1.0
    while step >= 1e-16:
        new = theta + step * d
        f_new, g_new = fg(new)
        if f_new <= f + 1e-4 * step * gd:
            return new, f_new, g_new
        step *= 0.5
    return None


def _check_finite(f: float, g: np.ndarray) -> None:
    if not math.isfinite(f) or not np.isfinite(g).all():
        raise TrainingError("logistic regression diverged (NaN/inf in the objective); "
                            "the features hold NaN or inf")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z|."""
    return np.exp(-np.logaddexp(0.0, -z))


def probabilities(z: np.ndarray, binary: bool) -> np.ndarray:
    """Label probabilities from scores [n, K]: ``binary``, K = 1 is the second label's logit;
    else a softmax over each row."""
    if binary:
        p1 = sigmoid(z[:, 0])
        return np.stack([1.0 - p1, p1], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def lbfgs(fg, theta: np.ndarray, tol: float = TOL, max_iter: int = MAX_ITER,
          memory: int = MEMORY) -> tuple[np.ndarray, float, int]:
    """Minimise a smooth convex ``fg(theta) -> (f, grad)``; returns (theta, f, iterations)."""
    f, g = fg(theta)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    it = 0
    for it in range(1, max_iter + 1):
        _check_finite(f, g)
        if np.max(np.abs(g)) <= tol:
            break
        d = -_two_loop(g, s_hist, y_hist)
        gd = float(g @ d)
        if gd >= 0:  # not a descent direction (numerical trouble): restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d = -g / max(1.0, float(np.linalg.norm(g)))
            gd = float(g @ d)
        found = _backtrack(fg, theta, f, d, gd)
        if found is None:
            return theta, f, it  # no further decrease is representable: as good as it gets
        new, f_new, g_new = found
        s, yv = new - theta, g_new - g
        if float(s @ yv) > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(yv)):
            s_hist.append(s)
            y_hist.append(yv)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        theta, f, g = new, f_new, g_new
    return theta, f, it


def _two_loop(g, s_hist, y_hist) -> np.ndarray:
    """The L-BFGS inverse-Hessian approximation applied to g (Nocedal & Wright, Alg. 7.4)."""
    q = g.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist)):
        a = float(s @ q) / float(s @ y)
        q -= a * y
        alphas.append(a)
    if s_hist:
        s, y = s_hist[-1], y_hist[-1]
        q *= float(s @ y) / float(y @ y)
    else:
        q /= max(1.0, float(np.linalg.norm(g)))
    for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
        q += s * (a - float(y @ q) / float(s @ y))
    return q


@dataclass
class LogReg:
    """A fitted model: standardisation, weights [D, K'] and biases [K'] (K' = 1 for two labels)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_classes: int
    c: float
    iterations: int = 0

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, n_classes: int, c: float, tol: float = TOL,
            max_iter: int = MAX_ITER) -> "LogReg":
        """Fit on raw features x [n, D] and labels y [n] in 0..n_classes-1 (n_classes >= 2)."""
        return cls.fit_path(x, y, n_classes, [c], tol, max_iter)[0]

    @classmethod
    def fit_path(cls, x: np.ndarray, y: np.ndarray, n_classes: int, cs, tol: float = TOL,
                 max_iter: int = MAX_ITER) -> "list[LogReg]":
        """One model per C in ``cs`` (in that order), standardising once and starting each fit
        from the previous solution (give C ascending: the next optimum is then near)."""
        if n_classes < 2:
            raise ValueError("logistic regression needs at least two classes")
        mean, scale = standardizer(x)
        xs = (np.asarray(x, np.float64) - mean) / scale
        y = np.asarray(y, np.int64)
        d = xs.shape[1]
        k = 1 if n_classes == 2 else n_classes
        theta = np.zeros(d * k + k)
        models = []
        for c in cs:
            fg = lambda t, c=c: loss_and_grad(t, xs, y, n_classes, c)  # noqa: E731
            if n_classes == 2:
                theta, _, iters = newton(fg, lambda t, c=c: binary_hessian(t, xs, c), theta, tol)
            else:
                theta, _, iters = lbfgs(fg, theta, tol, max_iter)
            models.append(cls(mean, scale, theta[:d * k].reshape(d, k).copy(),
                              theta[d * k:].copy(), n_classes, float(c), iters))
        return models

    def decision(self, x: np.ndarray) -> np.ndarray:
        """[n, D] -> [n, K'] scores."""
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.coef + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """[n, D] -> [n, n_classes] probabilities."""
        return probabilities(self.decision(x), self.n_classes == 2)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[n, D] -> [n] label indices (ties to the smaller index)."""
        z = self.decision(x)
        if self.n_classes == 2:
            return (z[:, 0] > 0).astype(np.int64)
        return np.argmax(z, axis=1)
