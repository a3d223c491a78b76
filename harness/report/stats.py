"""Uncertainty for per-question scores: bootstrap intervals and paired tests between pipelines."""
from __future__ import annotations

import math
from statistics import NormalDist

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
    return mcnemar_exact_counts(int((a & ~b).sum()), int((~a & b).sum()))


def mcnemar_exact_counts(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: questions only a gets right, only b."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar_discordant(p_value: float, net: int, questions: int) -> int | None:
    """The number of discordant pairs behind an exact McNemar p-value whose two discordant counts differ by
    `net`, at most `questions`, or None when it cannot be known: no such count gives that p-value, or `net` is
    below 2 (a margin of one question gives p = 1 whatever the count). The significance table keeps the
    p-value, not the counts; for a fixed net of 2 or more the p-value grows strictly with the discordant count
    (more disagreement, same margin, weaker evidence), so the count is recovered exactly rather than guessed
    from the means."""
    if net < 2 or net > questions:
        return None
    below = p_value * (1 - 1e-9)  # the same p-value recomputed may differ in the last bit

    def p(k: int) -> float:
        return mcnemar_exact_counts(k + net, k)
    # Bisection, since p grows with k: a step-by-step search took 18 s at 1,800 discordant questions.
    most = (questions - net) // 2
    lo, hi = 0, min(1, most)
    while p(hi) < below and hi < most:
        hi = min(2 * hi, most)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if p(mid) < below else (lo, mid)
    return 2 * lo + net if math.isclose(p(lo), p_value, rel_tol=1e-9, abs_tol=1e-15) else None


def mcnemar_questions(discordant_share: float, difference: float, comparisons: int = 1, alpha: float = 0.05,
                      power: float = 0.8) -> float:
    """Questions a paired 0/1 comparison needs for McNemar's test to find `difference` with `power`, by the
    standard normal approximation (Connor 1987):

        n = (z_{1-a/2} * sqrt(p_disc) + z_{power} * sqrt(p_disc - d^2))^2 / d^2

    p_disc: the share of questions exactly one arm gets right; d: the difference in proportions correct
    (= the difference of the two discordant shares); a: `alpha` / `comparisons`, the level Holm's correction
    asks of the most significant of that many pairs, so the estimate holds for a pair Holm must see first.
    Infinite when d is 0: no number of questions separates arms that score the same."""
    d = abs(difference)
    if d == 0:
        return math.inf
    # Means of the same 0/1 scores can differ from the discordant share in the last bit: equal is allowed.
    if not d <= discordant_share + 1e-9 or discordant_share > 1:
        raise ValueError(f"need |difference| <= discordant share <= 1, got {d} and {discordant_share}")
    z = NormalDist().inv_cdf
    level = alpha / max(1, comparisons)
    root = (z(1 - level / 2) * math.sqrt(discordant_share)
            + z(power) * math.sqrt(max(0.0, discordant_share - d * d)))
    return root * root / (d * d)


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
