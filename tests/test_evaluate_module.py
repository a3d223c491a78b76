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


def test_scores_equal_harness_metrics_item_by_item_and_on_average(harness_qa):
    names = [m for m in METRICS if m != "semantic"]  # semantic needs the embedder, not a metric module
    got = harness_qa.compute(predictions=[p for p, _ in ITEMS], references=[r for _, r in ITEMS], per_item=True)
    want = [score(p, r) for p, r in ITEMS]
    assert got["per_item"] == [{n: s[n] for n in names} for s in want]
    for n in names:
        assert got[n] == pytest.approx(sum(s[n] for s in want) / len(want))
    assert set(got) == set(names) | {"per_item"}


def test_a_single_reference_string_is_accepted(harness_qa):
    got = harness_qa.compute(predictions=["blue cable"], references=["blue"])
    assert got["contains"] == score("blue cable", ["blue"])["contains"] == 1.0
