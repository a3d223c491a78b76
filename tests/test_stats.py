"""The statistics on hand-computed cases."""
import numpy as np
import pytest

from harness.report.stats import bootstrap_ci, mcnemar_exact, paired_p, permutation_paired


def test_bootstrap_of_a_constant_is_a_point():
    assert bootstrap_ci(np.full(20, 0.5)) == (0.5, 0.5)


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    x = np.array([0, 1] * 30, dtype=float)
    lo, hi = bootstrap_ci(x, seed=1)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.25, abs=0.08)  # ±1.96·sqrt(.25/60) ≈ ±0.127
    assert bootstrap_ci(x, seed=1) == (lo, hi)


def test_mcnemar_by_hand():
    # 5 questions only a gets right, 0 only b: p = 2 · (1/2)^5 = 0.0625
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    b = np.array([0, 0, 0, 0, 0, 1, 0, 0])
    assert mcnemar_exact(a, b) == pytest.approx(0.0625)
    # 6 against 1: p = 2 · (1 + 7) / 128 = 0.125
    a = np.array([1] * 6 + [0])
    b = np.array([0] * 6 + [1])
    assert mcnemar_exact(a, b) == pytest.approx(0.125)
    assert mcnemar_exact(a, a) == 1.0


def test_permutation_by_hand():
    # six equal positive differences: only the all-plus and all-minus flips are as extreme: p = 2/64
    a, b = np.full(6, 0.9), np.full(6, 0.4)
    assert permutation_paired(a, b, seed=0) == pytest.approx(2 / 64, abs=0.006)
    assert permutation_paired(a, a) == 1.0


def test_paired_p_picks_the_test_by_score_type():
    assert paired_p(np.array([1, 0, 1.0]), np.array([0, 0, 1.0]))[1] == "McNemar"
    assert paired_p(np.array([0.5, 0.2]), np.array([0.1, 0.2]))[1] == "permutation"
