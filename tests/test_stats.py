"""The statistics on hand-computed cases."""
import math

import numpy as np
import pytest

from harness.report.stats import (bootstrap_ci, mcnemar_discordant, mcnemar_exact, mcnemar_exact_counts,
                                  mcnemar_questions, paired_p, permutation_paired)


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


def test_mcnemar_questions_by_hand():
    # Half the questions split the arms (p_disc = 0.5), one arm ahead by d = 0.25, one comparison:
    #   z_{1-0.05/2} = 1.95996, z_{0.8} = 0.84162
    #   1.95996 * sqrt(0.5) = 1.95996 * 0.70711 = 1.38590
    #   0.84162 * sqrt(0.5 - 0.0625) = 0.84162 * 0.66144 = 0.55668
    #   (1.38590 + 0.55668)^2 / 0.25^2 = 1.94258^2 / 0.0625 = 3.77362 / 0.0625 = 60.378 -> 61 questions
    assert mcnemar_questions(0.5, 0.25) == pytest.approx(60.378, abs=0.01)
    assert mcnemar_questions(0.5, -0.25) == mcnemar_questions(0.5, 0.25)  # which arm leads does not matter
    # Three pairs under Holm: the first must meet 0.05 / 3, z_{1-0.05/6} = 2.39398:
    #   (2.39398 * 0.70711 + 0.55668)^2 / 0.0625 = (1.69280 + 0.55668)^2 / 0.0625 = 5.06016 / 0.0625 = 80.96
    assert mcnemar_questions(0.5, 0.25, comparisons=3) == pytest.approx(80.96, abs=0.01)
    assert mcnemar_questions(0.5, 0.0) == math.inf
    with pytest.raises(ValueError):
        mcnemar_questions(0.1, 0.25)  # a difference larger than the disagreements behind it cannot be


def test_discordant_count_comes_back_from_the_exact_p_value():
    # 6 against 1 (7 discordant, net 5): p = 0.125, as in test_mcnemar_by_hand
    assert mcnemar_discordant(0.125, 5, questions=10) == 7
    assert mcnemar_discordant(mcnemar_exact_counts(40, 12), 28, questions=60) == 52
    assert mcnemar_discordant(mcnemar_exact_counts(40, 12), 28, questions=51) is None  # 52 would not fit
    assert mcnemar_discordant(0.3, 2, questions=10) is None  # no count of net 2 gives 0.3 (0.5, 0.625, ...)
    # A margin of one question: p = 1 whatever the count, so the count is unknown
    assert mcnemar_exact_counts(1, 0) == mcnemar_exact_counts(9, 8) == 1.0
    assert mcnemar_discordant(1.0, 1, questions=20) is None
