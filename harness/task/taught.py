"""Which stable test questions the fine-tune was taught, and which only the documents answer.

A stable question is **taught** when
  * one of its reference answers, normalised, equals a training answer, or
  * a training question is a near-paraphrase of it: the sets of content words (normalised, stop words
    dropped) overlap with Jaccard similarity (harness/text.py) >= PARAPHRASE_JACCARD;
When the training pairs were generated from the documents (harness/pairs/), a question covered only by a
generated pair is **taught (generated)**, and only when the pair is about the same fact (the answer matches and
the questions share a content word besides it): the report keeps it apart from facts a person wrote a pair for.
Otherwise it is **documents-only**: a fact the fine-tune can only guess while a retriever can find it.
Fresh questions (answered by documents that arrive later) are labelled **fresh**.

The label is computed from the task files, for the report; no pipeline ever sees it.
"""
from __future__ import annotations

from collections.abc import Sequence

from harness.task.types import QAPair, TestQuestion
from harness.text import normalize, token_set_similarity

TAUGHT, TAUGHT_GENERATED, DOCS_ONLY, FRESH = "taught", "taught (generated)", "documents-only", "fresh"
# The labels a stable question can carry, in the order the report shows their groups.
STABLE_LABELS = (TAUGHT, TAUGHT_GENERATED, DOCS_ONLY)
GENERATED = "generated"  # QAPair.origin of a pair written from the documents
PARAPHRASE_JACCARD = 0.6
# Words that say what kind of thing a question asks for, not what it is about: sharing one is no shared fact.
ASK_WORDS = frozenset("year decade century date percentage percent temperature place name number words fill blank "
                      "kind type".split())

STOP_WORDS = frozenset(
    "what which who whom whose when where why how is are was were be been being do does did of in on at to for "
    "from by with about as into than that this these those it its and or not no can could should would will "
    "many much one you your i me my we our they their there has have had according".split())


def all_built(pairs: Sequence[QAPair]) -> bool:
    """Whether every pair was made from the documents (none hand-written): a fine-tune on them trains
    pair_generation.epochs."""
    return bool(pairs) and all(p.origin == GENERATED for p in pairs)


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in normalize(text).split() if w not in STOP_WORDS)


class Coverage:
    """The facts a set of pairs teaches: their normalised answers and their questions' content words.

    With `same_fact`, an answer match counts only when the two questions also share a content word besides the
    answer's: generated pairs ask for every name of the documents, and "Brazil" in a pair about harvesters
    does not teach "Which country grows the most coffee?"."""

    def __init__(self, pairs: Sequence[QAPair], same_fact: bool = False):
        self.same_fact = same_fact
        self.questions = [content_words(p.question) for p in pairs]
        self.by_answer: dict[str, list[frozenset[str]]] = {}
        for p, words in zip(pairs, self.questions):
            self.by_answer.setdefault(normalize(p.answer), []).append(words - content_words(p.answer) - ASK_WORDS)

    def covers(self, q: TestQuestion) -> bool:
        return self.teaches(q.question, q.answers)

    def covers_pair(self, p: QAPair) -> bool:
        return self.teaches(p.question, (p.answer,))

    def teaches(self, question: str, answers: Sequence[str]) -> bool:
        words = content_words(question)
        for r in answers:
            asked = self.by_answer.get(normalize(r))
            if asked is not None and (not self.same_fact
                                      or any((words - content_words(r) - ASK_WORDS) & a for a in asked)):
                return True
        return any(token_set_similarity(words, t) >= PARAPHRASE_JACCARD for t in self.questions)


def knowledge_labels(test: Sequence[TestQuestion], pairs: Sequence[QAPair]) -> dict[str, str]:
    """Question id -> taught | taught (generated) | documents-only | fresh, against the original training
    pairs; a hand-written pair's cover wins over a generated one's."""
    written = Coverage([p for p in pairs if p.origin != GENERATED])
    generated = Coverage([p for p in pairs if p.origin == GENERATED], same_fact=True)

    def label(q: TestQuestion) -> str:
        if q.fresh:
            return FRESH
        return TAUGHT if written.covers(q) else TAUGHT_GENERATED if generated.covers(q) else DOCS_ONLY
    return {q.id: label(q) for q in test}
