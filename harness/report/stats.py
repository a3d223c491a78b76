"""Uncertainty for per-question scores: bootstrap intervals and paired tests between pipelines."""
from __future__ import annotations

import math

import numpy as np


def bootstrap_ci(values: np.ndarray, seed: int = 0, n: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean, resampling questions with replacement."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def bootstrap_ci_seeds(scores: np.ndarray, seed: int = 0, n: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Interval of the mean of a (training seeds x questions) score matrix, resampling both: the interval then
    covers training randomness as well as which questions happened to be asked."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    s, q = scores.shape
    rows = rng.integers(0, s, (n, s))
    cols = rng.integers(0, q, (n, q))
    means = np.array([scores[np.ix_(r, c)].mean() for r, c in zip(rows, cols)])
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (binomial test on the discordant pairs)."""
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def permutation_paired(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 10000) -> float:
    """Two-sided sign-flip permutation test on the mean of paired differences."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    observed = abs(d.mean()) if len(d) else 0.0
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n, len(d)))
    extreme = (np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum()
    return float((extreme + 1) / (n + 1))


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(np.asarray(values, dtype=float), (0.0, 1.0)).all())


def paired_p(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, str]:
    """McNemar for 0/1 scores (exact match, contains), permutation otherwise (F1, ROUGE-L, similarity)."""
    if is_binary(a) and is_binary(b):
        return mcnemar_exact(a, b), "McNemar"
    return permutation_paired(a, b, seed), "permutation"


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone), in the input order: controls the chance of any
    false 'significant' across all the pairs compared, without Bonferroni's loss of power."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
