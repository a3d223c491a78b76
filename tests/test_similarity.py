"""One Jaccard similarity (harness/text.py) serves the leakage check and the taught/documents-only labels, and
it says "not similar" when there is nothing to compare."""
import pytest

from harness.task.taught import DOCS_ONLY, TAUGHT, knowledge_labels
from harness.task.types import QAPair, TestQuestion
from harness.text import token_set_similarity


@pytest.mark.parametrize("a, b", [(frozenset(), frozenset()), ("", ""), ("", "colour of the cable"),
                                  (frozenset(), frozenset({"cable"}))])
def test_empty_word_sets_are_not_similar(a, b):
    assert token_set_similarity(a, b) == 0.0


def test_similarity_is_shared_words_over_all_words():
    assert token_set_similarity(frozenset({"cable", "colour"}), frozenset({"cable", "length"})) == 1 / 3
    assert token_set_similarity("Which colour is the cable", "the cable is which colour") == 1.0


def test_a_question_of_stop_words_is_not_taught_by_another():
    # Both questions lose every word to the stop list; an empty overlap must not read as a paraphrase.
    test = [TestQuestion("q1", "What is it?", ("blue",)), TestQuestion("q2", "Which colour is the cable?", ("red",))]
    pairs = [QAPair("What was it?", "green"), QAPair("What colour is the cable?", "crimson")]
    assert knowledge_labels(test, pairs) == {"q1": DOCS_ONLY, "q2": TAUGHT}
