"""Scores on hand-computed cases."""
import pytest

from harness.metrics import contains, exact_match, rouge_l, score, token_f1
from harness.text import normalize


def test_normalize_strips_case_punctuation_articles_and_thousands():
    assert normalize("The 1,000 Metres!") == "1000 metres"
    assert normalize("Café  Arábica") == "cafe arabica"


def test_exact_match():
    assert exact_match("The Ethiopia.", "ethiopia") == 1.0
    assert exact_match("Ethiopia and Yemen", "Ethiopia") == 0.0


def test_contains_needs_whole_words():
    assert contains("It comes from southwestern Ethiopia.", "Ethiopia") == 1.0
    assert contains("Typical altitude is 1,000 m", "1000 m") == 1.0
    assert contains("Bourbonnais", "Bourbon") == 0.0  # a prefix is not the word


def test_token_f1_by_hand():
    # pred tokens: blue heron bird (3); ref: blue heron (2); common 2 -> P 2/3, R 1 -> F1 0.8
    assert token_f1("blue heron bird", "the blue heron") == pytest.approx(0.8)
    assert token_f1("nothing", "heron") == 0.0


def test_rouge_l_by_hand():
    # LCS of "a b c d" vs "a c d e" is "a c d" (3): P 3/4, R 3/4 -> 0.75
    assert rouge_l("w x y z", "w y z q") == pytest.approx(0.75)


def test_score_takes_the_best_reference():
    s = score("heron", ("blue heron", "heron"))
    assert s["exact_match"] == 1.0 and s["f1"] == 1.0


def test_every_metric_has_its_function_and_its_note():
    # Adding a metric is an entry in metrics.LEXICAL and NOTES plus its name in config.METRICS: one of the three
    # forgotten fails here rather than as a KeyError in a report.
    from harness.config import METRICS
    from harness.metrics import LEXICAL, NOTES
    assert [*LEXICAL, "semantic"] == list(METRICS) and list(NOTES) == list(METRICS)
    assert set(score("the Ethiopian highlands", ["Ethiopian highlands"])) == set(LEXICAL)
