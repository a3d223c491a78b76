"""The leakage check: a held-out question that is also a training question measures memory, not knowledge.

Questions are compared as word sets (apostrophes kept inside words, so "product's" = "products"): the same
words, or nearly (word-set Jaccard similarity >= NEAR_DUPLICATE), count as the same question."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.task.types import QAPair, TestQuestion
from harness.text import best_matches, word_set

NEAR_DUPLICATE = 0.9  # word-set Jaccard similarity from which two questions count as the same


def _same_question(where: str, line: int, other: str, sim: float) -> str:
    return f"{where}:{line} {'=' if sim >= 1.0 else '≈'} {other}" + ("" if sim >= 1.0 else f" (similarity {sim:.2f})")


def repeated_question(questions: list[str]) -> tuple[int, int, float] | None:
    """The first question that repeats an earlier one word for word or nearly (word-set Jaccard >=
    NEAR_DUPLICATE), as (its index, the earlier one's index, similarity); None when all differ."""
    sets = [word_set(q) for q in questions]
    for i, (j, sim) in sorted(best_matches(sets, sets, NEAR_DUPLICATE, skip_self=True).items()):
        if j < i:  # each pair once, at its second question
            return i, j, sim
    return None


def check_duplicate_questions(task_root: Path, test: list[TestQuestion], test_lines: list[int]) -> None:
    """The same question twice in test.jsonl counts one fact twice and hides a copy-paste slip."""
    found = repeated_question([q.question for q in test])
    if found:
        i, j, sim = found
        near = "" if sim >= 1.0 else f" in other order or nearly (similarity {sim:.2f})"
        raise HarnessError(f"the same question as line {test_lines[j]}{near}; remove or reword one of them",
                           task_root / "test.jsonl", test_lines[i])


def check_leakage(task_root: Path, test: list[TestQuestion], test_lines: list[int],
                  train: list[tuple[str, tuple[QAPair, ...], list[int]]]) -> None:
    """Refuse a task whose test questions also appear, or nearly appear, in any training file.

    `train` holds (file name, pairs, their lines) for every training file. Words are compared whole
    (`normalize_words`), then as sets (Jaccard >= NEAR_DUPLICATE), so reordering or "product's" vs
    "products" is still a leak."""
    where = [f"{name}:{n}" for name, pairs, lines in train for n in lines]
    sets = [word_set(p.question) for _, pairs, _ in train for p in pairs]
    matches = best_matches([word_set(q.question) for q in test], sets, NEAR_DUPLICATE)
    leaks = [(test_lines[i], where[j], sim) for i, (j, sim) in sorted(matches.items())]
    if leaks:
        detail = "; ".join(_same_question("test.jsonl", line, w, sim) for line, w, sim in leaks[:10])
        raise HarnessError(f"{len(leaks)} test question(s) also appear in training data ({detail}). "
                           "A leaked question measures memory, not knowledge: reword or remove them.",
                           task_root / "test.jsonl", leaks[0][0])
