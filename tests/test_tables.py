"""Money, break-even and the measured opinion table on hand-made numbers."""
import pytest

from harness.report.opinion import _level
from harness.report.tables import break_even, cost_table

COSTS = {  # finetune: 1 h of training, answers 1 s/question; rag: no training, 2 s/question
    "finetune": {"build_s": 5.0, "train_seconds": 3600.0, "latency_mean_s": 1.0, "prompt_tokens_mean": 50,
                 "new_tokens_mean": 10},
    "rag": {"build_s": 0.0, "train_seconds": None, "latency_mean_s": 2.0, "prompt_tokens_mean": 450,
            "new_tokens_mean": 10},
}


def test_money_from_seconds_and_tokens():
    cost = cost_table(COSTS, ["finetune", "rag"], {"hour_usd": 3.6, "per_million_tokens_usd": 1.0}).set_index("pipeline")
    assert cost.loc["finetune", "build_usd"] == pytest.approx(3.6)
    # 1,000 questions: 1000 s at $0.001/s = $1, plus 60,000 tokens at $1/M = $0.06
    assert cost.loc["finetune", "usd_per_1k_questions"] == pytest.approx(1.06)
    assert cost.loc["rag", "usd_per_1k_questions"] == pytest.approx(2.0 + 0.46)


def test_break_even_by_hand():
    cost = cost_table(COSTS, ["finetune", "rag"], {"hour_usd": 3.6, "per_million_tokens_usd": 0.0})
    # No updates: $3.6 extra up front, $0.001 saved per question -> 3,600 questions
    assert break_even(cost, "finetune", "rag", updates_per_year=0) == pytest.approx(3600)
    # Retrained at each of 12 updates: 13 trainings a year, $46.8 -> 46,800 questions a year
    assert break_even(cost, "finetune", "rag", updates_per_year=12) == pytest.approx(46800)
    assert break_even(cost, "rag", "finetune") == 0.0  # nothing to pay back
    slower = {**COSTS, "finetune": {**COSTS["finetune"], "latency_mean_s": 3.0}}
    assert break_even(cost_table(slower, ["finetune", "rag"], {"hour_usd": 3.6, "per_million_tokens_usd": 0}),
                      "finetune", "rag") is None


def test_levels_rank_three_contenders():
    assert _level({"a": 0.9, "b": 0.5, "c": 0.1}) == {"a": "high", "b": "medium", "c": "low"}
    assert _level({"a": 0.9, "b": 0.9, "c": 0.1}) == {"a": "high", "b": "high", "c": "low"}
    assert _level({"a": 0.2, "b": 0.2}) == {"a": "same", "b": "same"}
