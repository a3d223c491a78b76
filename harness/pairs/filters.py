"""The filters a written question must pass to become a training pair, applied in order and each counted.

    verbatim        the answer is a verbatim span of its source chunk
    well_formed     one question: ends with "?", 4 to 40 words, no word sequence repeated (the 135M model loops:
                    "What is the ratio of 1:2 in a 1:2 ratio of..."), not a copy of a demonstration's question
    answer_hidden   the question does not contain its answer (normalised, as whole words)
    answer_type     the question asks for the kind of thing its answer is: a number (a quantity, year, date,
                    percentage: "how many", "what year", "when", "what temperature") or a name/term ("who",
                    "which", "where", "what is the name"); a question whose ask is neither stays
    unique          no earlier kept question with the same words
    not_test        not a near-duplicate of any test question (fresh ones included): the rule the task loader
                    refuses hand-written pairs by (word-set Jaccard >= NEAR_DUPLICATE, harness/task/leakage.py)
    round_trip      the question, searched in the task's retriever, finds its source sentence's chunk in the top k

The round trip runs last: it is the only filter that searches an index.
"""
from __future__ import annotations

import re

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.pairs.candidates import Candidate, chunk_of
from harness.pairs.phrasings import CLOZE
from harness.task.leakage import NEAR_DUPLICATE
from harness.task.types import TestQuestion
from harness.text import best_matches, normalize, normalize_words, word_set

CLOZE_OPENING = CLOZE.split("{")[0]
FILTERS = ("verbatim", "well_formed", "answer_hidden", "answer_type", "unique", "not_test", "round_trip")
MIN_WORDS, MAX_WORDS = 4, 40
REPEAT_NGRAM = 3


@dataclass(frozen=True)
class Written:
    """A candidate answer with the question the generator wrote for it."""

    candidate: Candidate
    question: str
    form: str = ""  # the phrasing (harness/pairs/phrasings.py) of a built question, "" for a model's


def verbatim(items: Sequence[Written]) -> list[Written]:
    return [w for w in items if w.candidate.answer.strip() and w.candidate.answer in w.candidate.chunk]


def repeats(text: str, n: int = REPEAT_NGRAM) -> bool:
    """Whether the same n words appear twice in the text (the loop of a small model)."""
    words = normalize_words(text).split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def well_formed(items: Sequence[Written], demo_questions: Sequence[str] = ()) -> list[Written]:
    copies = {normalize_words(q) for q in demo_questions}
    keep = []
    for w in items:
        q = w.question.strip()
        n = len(q.split())
        if (q.endswith("?") and q.count("?") == 1 and MIN_WORDS <= n <= MAX_WORDS and not repeats(q)
                and normalize_words(q) not in copies and not q.lower().startswith(("sentence:", "answer:"))):
            keep.append(w)
    return keep


def answer_hidden(items: Sequence[Written]) -> list[Written]:
    return [w for w in items if f" {normalize(w.candidate.answer)} " not in f" {normalize(w.question)} "]


_NUMBER_NOUNS = ("years?|decades?|century|centuries|months?|dates?|days?|age|percentages?|percent|proportion|share|"
                 "fraction|temperatures?|numbers?|amounts?|prices?|costs?|weight|ratio|altitude|elevation|height|"
                 "length|size|pressure|time|speed|duration|quantity|volume|dose|yield|population")
_NAME_NOUNS = ("capital|country|countries|city|cities|region|province|company|companies|species|variety|varieties|"
               "person|man|woman|inventor|founder|brand|title|term|word|island|river|mountain")
# The first ask in the question decides; at the same place the number asks are tried first ("which year").
_ASK = re.compile(
    r"\b(?:(?P<number>how\s+(?:many|much|long|old|far|high|tall|big|large|fast|hot|cold|often|heavy|warm)|when"
    rf"|(?:what|which)(?:\s+(?:is|was|are|were))?(?:\s+(?:the|a|an))?(?:\s+[a-z]+)?\s+(?:{_NUMBER_NOUNS})\b)"
    r"|(?P<name>who|whom|whose|where|which|what(?:\s+(?:is|was|are|were))?(?:\s+(?:the|a|an))?\s+names?|"
    rf"what(?:\s+(?:is|was|are|were))?(?:\s+(?:the|a|an))?\s+(?:{_NAME_NOUNS})\b|"
    r"name\s+the))\b")


def answer_kind(answer: str) -> str:
    """"number" for an answer that opens with a digit or a currency sign ("1958", "93 °C", "$4", "12 to 20
    percent"), "name" for any other (a name or a term)."""
    return "number" if re.match(r"\s*[$€£]?\s?\d", answer) else "name"


def ask_kind(question: str) -> str | None:
    """"number" or "name" by the question's first ask, None when it has neither ("What does X do?") or is a
    cloze, whose blank stands for any kind."""
    if question.startswith(CLOZE_OPENING):
        return None
    m = _ASK.search(question.lower())
    return None if m is None else m.lastgroup


def answer_type(items: Sequence[Written]) -> list[Written]:
    """A model's question must ask for its answer's kind of thing. A built one (`form` set) asks with the
    wh-phrase of its fact's kind by construction, where words of the sentence or title ("Who grows the most
    coffee: ...") would only mislead the check."""
    return [w for w in items if w.form or ask_kind(w.question) in (None, answer_kind(w.candidate.answer))]


def unique(items: Sequence[Written]) -> list[Written]:
    seen, keep = set(), []
    for w in items:
        words = word_set(w.question)
        if words not in seen:
            seen.add(words)
            keep.append(w)
    return keep


def not_test(items: Sequence[Written], test: Sequence[TestQuestion]) -> list[Written]:
    near = best_matches([word_set(w.question) for w in items], [word_set(q.question) for q in test], NEAR_DUPLICATE)
    return [w for i, w in enumerate(items) if i not in near]


def round_trip(items: Sequence[Written], search: Callable[[list[str], int], list[list]], k: int) -> list[Written]:
    found = search([w.question for w in items], k) if items else []
    return [w for w, hits in zip(items, found) if chunk_of(hits, w.candidate)]


def apply_filters(items: Sequence[Written], test: Sequence[TestQuestion], search: Callable, k: int,
                  demo_questions: Sequence[str] = ()) -> tuple[list[Written], dict[str, int]]:
    """The items every filter keeps, and how many were left after each one (`written` first)."""
    steps: dict[str, Callable[[list[Written]], list[Written]]] = {
        "verbatim": verbatim,
        "well_formed": lambda xs: well_formed(xs, demo_questions),
        "answer_hidden": answer_hidden,
        "answer_type": answer_type,
        "unique": unique,
        "not_test": lambda xs: not_test(xs, test),
        "round_trip": lambda xs: round_trip(xs, search, k),
    }
    kept, left = list(items), {"written": len(items)}
    for name in FILTERS:
        kept = steps[name](kept)
        left[name] = len(kept)
    return kept, left
