"""Training pairs built from the documents with no model: every fact-bearing sentence's facts
(harness/pairs/facts.py), each asked in several phrasings (harness/pairs/phrasings.py).

A sentence is a line's sentence (harness/pairs/candidates.py's splitter) cut again at semicolons, so "X is
called crema; it forms from ..." gives two, the second's "it" meaning the first's subject. Each belongs to the
first retrieval chunk that holds it whole: the round-trip filter asks for that chunk back, and RAFT trains with
it as the pair's source passage. A head word that more than COMMON_SHARE of the documents' sentences use
("coffee" in coffee's), and at least COMMON_MIN of them, is not asked for as a term.
"""
from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.pairs.candidates import Candidate, sentences
from harness.pairs.facts import facts
from harness.pairs.filters import Written
from harness.pairs.parse import parse
from harness.pairs.phrasings import FORMS, phrasings, subject_text
from harness.retrieval.chunking import chunk_document
from harness.sampling import MIN_FACTS, kept_count, spread
from harness.task.types import Document

COMMON_SHARE, COMMON_MIN = 0.08, 5


@dataclass(frozen=True)
class Built:
    """The phrasings built from some documents, and what the building saw."""

    items: list[Written]
    counts: dict[str, int]
    seconds: float  # parsing and phrasing, as first measured (the build is cached: the forecast makes it first)


def clauses(text: str) -> list[str]:
    """The document's sentences, each cut at semicolons where both sides are four words or more (a colon often
    opens a list that belongs to its sentence: phrasings.py keeps to the answer's side of it)."""
    out = []
    for s in sentences(text):
        parts = [p.strip() for p in re.split(r";\s+", s)]
        if len(parts) > 1 and all(len(p.split()) >= 4 for p in parts):
            out += parts  # as written, so each is still a span of its chunk
        else:
            out.append(s)
    return out


def title(doc: Document) -> str | None:
    line = next((l for l in doc.text.splitlines() if l.strip()), "")
    return line.lstrip("#").strip() or None if line.startswith("#") else None


def common_words(parsed: Sequence) -> frozenset[str]:
    """Head words too frequent in these documents to be asked for."""
    df = Counter(w for d in parsed for w in {t.lemma_.lower() for t in d if t.pos_ == "NOUN"})
    return frozenset(w for w, n in df.items() if n > COMMON_SHARE * len(parsed) and n >= COMMON_MIN)


@functools.lru_cache(maxsize=4)  # the forecast, validate and the run build the same documents' pairs
def build(docs: tuple[Document, ...], chunk_words: int, chunk_overlap: int, per_sentence: int) -> Built:
    """Every fact of every sentence (at most `per_sentence` a sentence) with its phrasings, and counts:
    chunks, sentences, sentences split by chunking, sentences with facts, facts, facts with a phrasing."""
    start = time.perf_counter()
    counts = Counter(chunks=0, sentences=0, sentences_split_by_chunking=0, sentences_with_facts=0, facts=0,
                     facts_phrased=0)
    per_doc = []
    for doc in docs:
        chunks = chunk_document(doc, chunk_words, chunk_overlap)
        counts["chunks"] += len(chunks)
        per_doc.append((doc, chunks, clauses(doc.text)))
    parsed = parse([s for _, _, ss in per_doc for s in ss])
    common = common_words(parsed)
    items, k = [], 0
    for doc, chunks, ss in per_doc:
        antecedent, name = None, title(doc)
        for s in ss:
            d, k = parsed[k], k + 1
            counts["sentences"] += 1
            home = next((c for c in chunks if s in c.text), None)
            if home is None:
                counts["sentences_split_by_chunking"] += 1
                continue
            found = facts(d, common, per_sentence)
            counts["sentences_with_facts"] += bool(found)
            for f in found:
                counts["facts"] += 1
                asked = phrasings(d, f, antecedent, name)
                counts["facts_phrased"] += bool(asked)
                c = Candidate(doc.path, home.text, s, f.answer(d), f.kind)
                items += [Written(c, p.question, p.form) for p in asked]
            antecedent = subject_text(d) or antecedent
    return Built(items, dict(counts), time.perf_counter() - start)


def fact(w: Written) -> tuple[str, str, str]:
    """The fact a pair asks about: its document, sentence and answer (its phrasings share it)."""
    return w.candidate.doc, w.candidate.sentence, w.candidate.answer


def per_fact(items: Sequence[Written], most: int) -> list[Written]:
    """At most `most` phrasings of each fact, taken in the order of FORMS (short first), the items' order kept."""
    rank = {f: n for n, f in enumerate(FORMS)}
    by_fact: dict[tuple[str, str, str], list[Written]] = {}
    for w in items:
        by_fact.setdefault(fact(w), []).append(w)
    keep = {id(w) for ws in by_fact.values() for w in sorted(ws, key=lambda w: rank.get(w.form, len(FORMS)))[:most]}
    return [w for w in items if id(w) in keep]


def sample_facts(items: Sequence[Written], share: float, seed: int) -> list[Written]:
    """A share of the facts (harness/sampling.py: seeded, spread evenly over the documents), each with every
    phrasing it has: a fine-tune on one phrasing a fact learnt nothing on coffee (bench/README.md, true pairs),
    so a cut drops whole facts rather than thin them all. A share of 1 keeps every item."""
    return facts_spread(items, kept_count(share, len(facts_of(items)), MIN_FACTS), seed)


def facts_of(items: Sequence[Written]) -> list[tuple[str, str, str]]:
    """The distinct facts the items ask about, in their order."""
    return list(dict.fromkeys(fact(w) for w in items))


def facts_spread(items: Sequence[Written], k: int, seed: int) -> list[Written]:
    """Every phrasing of `k` facts, drawn with `seed` and spread over the documents (harness/sampling.py)."""
    chosen = set(spread(facts_of(items), lambda f: f[0], k, seed))
    return [w for w in items if fact(w) in chosen]
