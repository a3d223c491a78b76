"""Candidate answers for generated training pairs: spans of a document chunk that a question can ask for.

A document is cut into sentences (line breaks and sentence punctuation; Markdown headings are skipped, they
state a topic, not a fact). Each sentence belongs to the first retrieval chunk that holds it whole (the same
chunking as retrieval, so the round-trip filter can ask for that chunk back); a sentence that chunking splits
is skipped. Two rules pick spans from a sentence (bench/README.md compares them by how many survive the
filters):

    numbers-names        numbers with their unit, percent sign or scale word ("93 °C", "12%", "1.5 million",
                         "1642", "1:2"), and capitalised names of one or more words that do not open the
                         sentence ("Alan Adler", "Yirgacheffe", "Specialty Coffee Association"); a run of
                         them joined by "and", or by "of" after a word that does not head a name, is two
                         names ("Angelo Moriondo of Turin" -> "Angelo Moriondo", "Turin")
    numbers-names-terms  the same, plus the short phrase a sentence defines: what follows "is a/an/the",
                         "called", "named" or "known as", up to the next punctuation or clause word
                         ("is the blue heron" -> "blue heron"; "is called crema" -> "crema")
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.retrieval.chunking import Passage, chunk_document
from harness.task.types import Document

MAX_ANSWER_WORDS = 6

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_UNITS = (r"%|percent|per cent|°C|°F|degrees(?: Celsius| Fahrenheit)?|m|km|cm|mm|kg|g|mg|ml|l|litres?|liters?|"
          r"metres?|meters?|grams?|kilograms?|tonnes?|tons?|bags?|hectares?|seconds?|minutes?|hours?|days?|weeks?|"
          r"months?|years?|million|billion|thousand|hundred|chromosomes?|species|bar|psi|ppm|USD|dollars?|cents?")
_NUMBER = re.compile(r"(?<![\w.])(?:[$€£]\s?)?\d[\d,.]*(?::\d+)?(?:\s?(?:-|–|to)\s?\d[\d,.]*)?"
                     rf"(?:\s?(?:{_UNITS})\b)?(?:\s(?:{_UNITS})\b)?")
_CAP_WORD = r"[A-Z][\w'’-]*"
_NAME = re.compile(rf"{_CAP_WORD}(?:\s+(?:of|de|da|del|van|von|la|le|du|and)?\s*{_CAP_WORD})*")
_DEFINED = re.compile(r"\b(?:(?:is|are|was|were)\s+(?:a|an|the)|called|named|known as)\s+([a-z][\w'-]*"
                      r"(?:\s+[a-z][\w'-]*){0,3})")
_CLAUSE = frozenset("that which who whose when where while because and or but with by from in on at to for of as "
                    "than into after before during if not also usually often".split())
_NOT_NAMES = frozenset("The A An This That These Those It Its In On At By For From With Of And Or But As "
                       "Most Many Some Each Every When Where While After Before During Since Today".split())

# Words after which "of" stays inside one name ("University of California", "Big Island of Hawaii").
_OF_HEADS = frozenset("Association Federation Institute Institution University College School Society Academy "
                      "Council Ministry Department Bank Museum Church Order Organization Organisation Union League "
                      "Republic Kingdom State States Island Isle Isles Gulf Bay Cape Port Lake Mount Sea Strait "
                      "King Queen Prince Princess Duke Emperor Sultan Bishop Pope Saint Cup Board Office Chamber "
                      "Centre Center Foundation Company Bureau Commission Committee Agency Court Library".split())


@dataclass(frozen=True)
class Candidate:
    doc: str
    chunk: str  # the retrieval chunk that holds the sentence whole
    sentence: str
    answer: str
    kind: str = ""  # the fact's kind (harness/pairs/facts.py) where the pair was built, "" for a model's


def sentences(text: str) -> list[str]:
    """A document's sentences, whitespace collapsed; heading lines and fragments under four words left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "<!--", "|", "```")):
            continue
        line = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", line)  # a list item's marker
        for s in _SENTENCE_END.split(line):
            s = " ".join(s.split())
            if len(s.split()) >= 4:
                out.append(s)
    return out


def _numbers(sentence: str) -> list[str]:
    return [m.group(0).strip(" ,.") for m in _NUMBER.finditer(sentence)]


def _parts(words: list[str]) -> list[list[str]]:
    """A run of capitalised words cut where it joins two names: at every "and" ("Typica and Bourbon"), and at
    "of" unless the word before it heads one name, or an "of" already stayed inside it ("Angelo Moriondo of
    Turin" is two; "Specialty Coffee Association of America" and "Federation of Coffee Growers of Colombia" are
    one)."""
    parts: list[list[str]] = [[]]
    for i, w in enumerate(words):
        if w == "and" or (w == "of" and (i == 0 or words[i - 1] not in _OF_HEADS) and "of" not in parts[-1]):
            parts.append([])
        else:
            parts[-1].append(w)
    return [p for p in parts if p]


def _names(sentence: str) -> list[str]:
    out = []
    for m in _NAME.finditer(sentence):
        words = m.group(0).split()
        if m.start() == 0 or sentence[:m.start()].rstrip().endswith((".", ":", '"')):
            words = words[1:] if words and words[0] in _NOT_NAMES or len(words) == 1 else words
        while words and words[0] in _NOT_NAMES:
            words = words[1:]
        if words and not (m.start() == 0 and len(words) == 1 and words[0] == m.group(0)):
            for part in _parts(words):
                while part and part[-1] in ("of", "de", "da", "del", "van", "von", "la", "le", "du"):
                    part = part[:-1]
                if part:
                    out.append(re.sub(r"['’]s$", "", " ".join(part)))
    return out


def _terms(sentence: str) -> list[str]:
    out = []
    for m in _DEFINED.finditer(sentence):
        words = m.group(1).split()
        kept = []
        for w in words:
            if w in _CLAUSE:
                break
            kept.append(w)
        if kept:
            out.append(" ".join(kept))
    return out


def spans(sentence: str, rule: str) -> list[str]:
    """The candidate answers of one sentence under `rule`, in order of appearance, each once."""
    numbers = _numbers(sentence)
    # A unit's capital ("C" of "93 °C") is not a name.
    names = [n for n in _names(sentence) if len(n) > 1 and not any(n in x for x in numbers)]
    found = numbers + names + (_terms(sentence) if rule == "numbers-names-terms" else [])
    found = [f for f in found if f and len(f.split()) <= MAX_ANSWER_WORDS and f in sentence]
    return sorted(dict.fromkeys(found), key=sentence.find)


def candidates(docs: Sequence[Document], chunk_words: int, chunk_overlap: int, rule: str,
               per_chunk: int) -> tuple[list[Candidate], dict[str, int]]:
    """Candidates of every document, at most `per_chunk` per chunk (spread over its sentences), and counts:
    chunks, sentences, sentences split by chunking, candidates found before the per-chunk cap."""
    out: list[Candidate] = []
    counts = {"chunks": 0, "sentences": 0, "sentences_split_by_chunking": 0, "spans_found": 0}
    for doc in docs:
        chunks = chunk_document(doc, chunk_words, chunk_overlap)
        counts["chunks"] += len(chunks)
        by_chunk: dict[str, list[Candidate]] = {c.text: [] for c in chunks}
        for s in sentences(doc.text):
            counts["sentences"] += 1
            home = next((c for c in chunks if s in c.text), None)
            if home is None:
                counts["sentences_split_by_chunking"] += 1
                continue
            found = spans(s, rule)
            counts["spans_found"] += len(found)
            by_chunk[home.text] += [Candidate(doc.path, home.text, s, a) for a in found]
        for found in by_chunk.values():
            out += _spread(found, per_chunk)
    return out, counts


def _spread(found: list[Candidate], limit: int) -> list[Candidate]:
    """Up to `limit` candidates taken round-robin over their sentences, so one long sentence cannot fill a
    chunk's share."""
    by_sentence: dict[str, list[Candidate]] = {}
    for c in found:
        by_sentence.setdefault(c.sentence, []).append(c)
    queues, picked = list(by_sentence.values()), []
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked


def chunk_of(passages: Sequence[Passage], candidate: Candidate) -> bool:
    """Whether a retrieved passage list holds the candidate's sentence (its chunk, or an overlapping twin)."""
    return any(p.doc == candidate.doc and candidate.sentence in p.text for p in passages)
