"""metrics/harness_qa loads with `evaluate.load` from the repo, offline, and scores exactly as the harness does."""
import os
from pathlib import Path

import pytest

# Set before evaluate is imported: it reads these once. Loading from a local folder must need no hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"

import evaluate  # noqa: E402

from harness.config import METRICS  # noqa: E402
from harness.metrics import score  # noqa: E402

MODULE = Path(__file__).parent.parent / "metrics" / "harness_qa"
ITEMS = [
    ("Coffea arabica originated in Ethiopia.", ["Ethiopia", "southwestern Ethiopia"]),
    ("The goat herder was named Kari.", ["Kaldi"]),
    ("Mocha", ["Mocha"]),
    ("It dates back to the 15th century, in Sufi monasteries.", ["15th century", "fifteenth century", "1400s"]),
]


@pytest.fixture(scope="module")
def harness_qa():
    return evaluate.load(str(MODULE))


# Worked by hand (articles and punctuation dropped; f1 and ROUGE-L are the same here, as the shared words are in
# order): item 1 against "Ethiopia", 1 of its 5 words, P 1/5, R 1 -> f1 1/3 (better than "southwestern Ethiopia",
# 2/7); item 2 shares no word; item 3 is the reference; item 4 holds "15th century": 2 of its 9 words -> f1 4/11.
HAND = [{"exact_match": 0.0, "contains": 1.0, "f1": 1 / 3, "recall": 1.0, "rouge_l": 1 / 3},
        {"exact_match": 0.0, "contains": 0.0, "f1": 0.0, "recall": 0.0, "rouge_l": 0.0},
        {"exact_match": 1.0, "contains": 1.0, "f1": 1.0, "recall": 1.0, "rouge_l": 1.0},
        {"exact_match": 0.0, "contains": 1.0, "f1": 4 / 11, "recall": 1.0, "rouge_l": 4 / 11}]


def test_scores_equal_hand_computed_values_item_by_item_and_on_average(harness_qa):
    names = [m for m in METRICS if m != "semantic"]  # semantic needs the embedder, not a metric module
    got = harness_qa.compute(predictions=[p for p, _ in ITEMS], references=[r for _, r in ITEMS], per_item=True)
    assert set(got) == set(names) | {"per_item"} and set(HAND[0]) == set(names)
    assert len(got["per_item"]) == len(HAND)
    for item, want in zip(got["per_item"], HAND):
        assert item == pytest.approx(want)
    means = {"exact_match": 0.25, "contains": 0.75, "recall": 0.75, "f1": (1 / 3 + 1 + 4 / 11) / 4,
             "rouge_l": (1 / 3 + 1 + 4 / 11) / 4}
    assert {n: got[n] for n in names} == pytest.approx(means)
    # ...and the module is the harness's own scoring, not a copy that could drift from it.
    assert got["per_item"] == [{n: score(p, r)[n] for n in names} for p, r in ITEMS]


def test_a_single_reference_string_is_accepted(harness_qa):
    got = harness_qa.compute(predictions=["blue cable"], references=["blue"])
    assert got["contains"] == 1.0 and got["exact_match"] == 0.0 and got["recall"] == 1.0
    assert got["f1"] == pytest.approx(2 / 3)  # 1 of 2 words: P 1/2, R 1
