"""The rules a fair verdict rests on: no test answer in a demonstration, taught vs documents-only labels,
Holm's correction, recall on sentence answers and on Thai, RAFT's oracle/distractor mix."""
import random

import pytest

from harness.task.demo_pool import demo_pool, draw
from harness.errors import HarnessError
from harness.metrics import score
from harness.retrieval.dense import Passage
from harness.report.stats import holm
from harness.task.types import QAPair, TestQuestion
from harness.task.taught import knowledge_labels
from harness.arms.training_data import raft_mix


def q(qid, question, *answers, fresh=False):
    return TestQuestion(qid, question, tuple(answers), None, fresh, "")


def test_demonstrations_never_carry_a_test_answer():
    # Built so that a naive draw leaks: most training pairs answer a test question (one a fresh one, one
    # inside a longer answer), and only two are about untested facts.
    test = [q("a", "Capital of Velmora?", "Quillport"), q("b", "New mayor?", "Mara Tessin", fresh=True),
            q("c", "Firmware?", "5.2")]
    pairs = [QAPair("Which city is the capital?", "Quillport"), QAPair("Name the capital.", "quillport!"),
             QAPair("Who became mayor?", "Mara Tessin"), QAPair("Latest firmware?", "firmware 5.2"),
             QAPair("Founded when?", "1642"), QAPair("Which river?", "Ashen River")]
    pool = demo_pool(pairs, test)
    assert {p.answer for p in pool.pairs} == {"1642", "Ashen River"} and pool.excluded == 4
    for seed in range(20):  # whatever the seed, only clean pairs come out
        assert {p.answer for p in draw(pool, 2, seed)} == {"1642", "Ashen River"}
    with pytest.raises(HarnessError, match="only 2 training pairs carry no test answer"):
        draw(pool, 3, 0)  # refuses rather than falling back to leaking pairs


def test_taught_and_documents_only_labels():
    pairs = [QAPair("Where did arabica originate?", "Ethiopia"),
             QAPair("Which goat herder found coffee in the legend?", "Kaldi")]
    test = [q("same-answer", "Which country is the home of Coffea arabica?", "ethiopia"),
            q("paraphrase", "Which goat herder found coffee according to the legend?", "the herder Kaldi of Abyssinia"),
            q("docs-only", "What do arabica flowers smell like?", "jasmine"),
            q("fresh", "Who won the 2025 WBC?", "Jack Simpson", fresh=True)]
    assert knowledge_labels(test, pairs) == {"same-answer": "taught", "paraphrase": "taught",
                                             "docs-only": "documents-only", "fresh": "fresh"}


def test_a_paraphrase_is_taught_from_jaccard_0_6_of_content_words():
    """PARAPHRASE_JACCARD on both sides: stop words ("what", "is", "of", "the") never count, so the content words
    below are exactly the Greek-letter names, and their overlaps are hand-counted fractions."""
    pairs = [QAPair("What is alpha bravo charlie delta?", "one"),
             QAPair("What is kilo lima mike november oscar?", "two")]
    test = [q("at", "What is alpha bravo charlie echo?", "x1"),  # 3 shared / 5 words = 0.600: on the bar
            q("above", "Is it kilo lima mike november of papa?", "x2"),  # 4 / 6 = 0.667
            q("below", "What is alpha bravo charlie golf hotel?", "x3"),  # 3 / 6 = 0.500
            q("just-below", "What of kilo lima mike november papa quebec?", "x4")]  # 4 / 7 = 0.571
    assert knowledge_labels(test, pairs) == {"at": "taught", "above": "taught", "below": "documents-only",
                                             "just-below": "documents-only"}


def test_holm_matches_a_hand_computed_case():
    # p sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06, kept monotone), 0.5 (x1 = 0.5)
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 0.8 x 2 caps at 1; 0.9 never drops below it
    assert holm([]) == []


def test_recall_survives_sentence_answers_in_english():
    s = score("It takes about 7 to 14 days after roasting.", ["About 7 to 14 days."])
    assert s["recall"] == 1.0 and s["exact_match"] == 0.0
    assert score("Brazil", ["About 7 to 14 days."])["recall"] == 0.0
    assert score("seven days", ["7 to 14 days"])["recall"] == pytest.approx(1 / 4)


def test_a_correct_thai_answer_scores_above_zero():
    # Thai has no spaces between words: tokens fall back to characters instead of one clause-long token.
    right = score("กาแฟอาราบิกามีถิ่นกำเนิดในเอธิโอเปีย", ["เอธิโอเปีย"])
    wrong = score("บราซิล", ["เอธิโอเปีย"])
    assert right["f1"] > 0 and right["recall"] == 1.0 and right["contains"] == 1.0
    assert right["f1"] > wrong["f1"] and wrong["contains"] == 0.0


def test_raft_mix_at_a_fixed_seed():
    chunks = [Passage(f"docs/d{i}.md", f"chunk {i} says answer{i}") for i in range(10)]
    pairs = [QAPair(f"question {i}?", f"answer{i}", f"docs/d{i}.md") for i in range(200)]
    pairs = [p for p in pairs if int(p.doc[6:-3]) < 10]
    pairs = [random.Random(i).choice(pairs) for i in range(200)]
    hits = [[chunks[(i + 1) % 10], chunks[(i + 2) % 10], chunks[(i + 3) % 10]] for i in range(200)]
    items = raft_mix(pairs, chunks, hits, 3, 0.8, seed=7)
    assert items == raft_mix(pairs, chunks, hits, 3, 0.8, seed=7)  # reproducible
    assert all(len(i.passages) == 3 and len(set(i.passages)) == 3 for i in items)
    for pair, item in zip(pairs, items):
        own = next(c.text for c in chunks if c.doc == pair.doc)
        assert (own in item.passages) == item.oracle  # the oracle flag tells the truth
    share = sum(i.oracle for i in items) / len(items)
    assert 0.72 < share < 0.88  # p = 0.8 (1 source + 2 distractors), the rest distractors only
    assert len({i.passages.index(next(c.text for c in chunks if c.doc == p.doc)) for p, i in zip(pairs, items)
                if i.oracle}) == 3  # shuffled: the source is not always in the same slot


def _fresh_standing(scores: dict[str, list[float]]):
    """The Standing of arms on fresh questions after a rebuild, judged from their per-question scores through the
    same paired tests (Holm over the phase's pairs) as the report's."""
    import pandas as pd

    from harness.report.standing import Costs, judge
    from harness.report.tables import fresh_significance_table

    preds = pd.DataFrame([{"phase": "update_rebuilt", "pipeline": arm, "id": f"f{i}", "fresh": True, "contains": s}
                          for arm, ss in scores.items() for i, s in enumerate(ss)])
    pairs = fresh_significance_table(preds, list(scores), "contains")
    means = {arm: sum(ss) / len(ss) for arm, ss in scores.items()}
    costs = Costs({arm: 1.0 for arm in scores}, {arm: 2 for arm in scores})
    return judge(means, pairs[pairs.phase == "update_rebuilt"], "base", 16, "contains", costs)


def test_a_fresh_lead_that_one_seed_could_reverse_is_called_a_tie():
    """coffee's fresh-after-rebuild winner changed with the training precision (finetune 0.688 in float32, 0.375
    trained in bf16): a lead on 16 questions the paired tests do not carry is a tie, not a win."""
    close = _fresh_standing({"raft": [1] * 10 + [0] * 6, "finetune": [1] * 6 + [0] * 10, "base": [0] * 16})
    assert close.headline() == "raft (contains 0.625) and finetune (0.375) tie at the top"
    # raft is shown better than base (10 to 0, p = 0.002, Holm x 3 = 0.006), finetune is not (6 to 0, p = 0.031,
    # Holm x 2 = 0.062): raft is the only arm of the tie to act on.
    assert close.pick == "raft" and close.shown == ("raft",)
    clear = _fresh_standing({"raft": [1] * 16, "finetune": [0] * 16, "base": [0] * 16})
    assert clear.headline() == "**raft** scores best (contains 1.000)"
