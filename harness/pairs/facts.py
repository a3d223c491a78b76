"""The facts of a parsed sentence: spans a question can ask for, each typed, with the phrase that asks for it.

A fact is a span of the sentence (so a pair's answer is true by construction) of one of these kinds:

    year, decade       "1933", "the 1940s"                         what year / what decade
    temperature        "92 to 96 °C"                               what temperature
    percent            "roughly 60 percent", "12%"                 what percentage
    money              "$4", "1.2 billion dollars"                 how much
    ratio              "1:2"                                       what ratio
    quantity           "44 chromosomes", "between 1,000 and 2,000 metres", "two seeds"
                                                                   how many <unit>
    person             "Alan Adler" (two or more capitalised words the tagger calls a person)
                                                                   who
    place              a place the tagger names after in/at/near   where (the preposition goes with it)
    name               any other proper name, Latin binomials ("Hemileia vastatrix") whole
                                                                   which <noun> when the name stands beside a
                                                                   common noun ("the engineer Alan Adler" ->
                                                                   which engineer), else what
    term               a lowercase noun phrase in a subject, object or predicate role ("raised beds",
                       "caramelization"), determiners left out     what

`replace` is the stretch of the sentence the question's wh-phrase stands in for: the answer, and with it the
determiner, the common noun beside a name, "between" before a range, or the place's preposition.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_KINDS = ("year", "decade", "temperature", "percent", "money", "ratio", "quantity")
KINDS = NUMBER_KINDS + ("person", "place", "name", "term")
MAX_ANSWER_WORDS = 6

_TEMPERATURE = r"°\s?[CF]|degrees(?:\s(?:Celsius|Fahrenheit))?"
_PERCENT = r"%|percent|per cent"
_NUM = r"\d[\d,]*(?:\.\d+)?"
_NUMBER = re.compile(
    rf"(?<![\w.,])(?:between\s)?(?P<money>[$€£]\s?)?{_NUM}(?:s\b)?(?::\d+)?"
    rf"(?:\s?(?:-|–|to|and)\s?(?:[$€£]\s?)?{_NUM})?"
    rf"(?:\s?(?P<temp>{_TEMPERATURE})|\s?(?P<pct>{_PERCENT})\b)?"
    r"(?:\s(?P<scale>million|billion|thousand|trillion)\b)?")
_QUALIFIERS = ("roughly", "about", "around", "approximately", "nearly", "almost", "over", "more than",
               "less than", "up to", "some", "just over", "just under", "at least")
_MONEY_WORDS = frozenset("dollars dollar cents cent euros euro pounds usd".split())
_NUMBER_WORDS = frozenset("two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
                          "sixty seventy eighty ninety hundred dozen".split())
_PRONOUN_HEADS = frozenset("it its they them this these those that which who whom he she him her one ones".split())
# Heads too general to be a fact on their own ("the rest", "a way").
_GENERIC = frozenset("use way part rest kind type lot number form amount thing things area time times end fact "
                     "result level side top bottom one ones all most some many much other others example case "
                     "cases term name word place point percent method process technique practice approach system style east west "
                     "north south centre center middle".split())
# Words opening a noun phrase that say how much or which, not what: left out of a term ("several layers").
_NOT_CONTENT = frozenset("only such other several many few various numerous some most all both each".split())
_RELATIONAL = frozenset("same different similar other another former latter".split())
_NAME_LABELS = frozenset("PERSON ORG GPE LOC NORP FAC PRODUCT EVENT WORK_OF_ART LAW LANGUAGE".split())
# A species epithet's Latin ending ("arabica", "canephora", "hampei", "vastatrix", "eugenioides").
_LATIN_EPITHET = re.compile(r"[a-z]{3,}(?:a|ae|i|us|um|is|ix|ii|ei|oides|ensis)")
_LOCATIVE = frozenset("in at near across throughout inside".split())
_TERM_ROLES = frozenset("nsubj nsubjpass dobj pobj attr oprd appos conj".split())
_OF_HEADS = frozenset("Association Federation Institute University College Society Council Ministry Department "
                      "Bank Museum Organization Organisation Union Republic Kingdom Island Isle Gulf Bay Cape Lake "
                      "Mount Sea Board Office Centre Center Foundation Company Commission Committee Agency".split())


@dataclass(frozen=True)
class Fact:
    kind: str
    start: int  # token range of the answer in the sentence's Doc
    end: int
    replace: tuple[int, int]  # token range the wh-phrase stands in for
    wh: str

    def answer(self, doc) -> str:
        return doc[self.start:self.end].text


def _char_span(doc, a: int, b: int):
    return doc.char_span(a, b, alignment_mode="expand")


def _number_kind(m: re.Match, before: str, after: str) -> tuple[str, str] | None:
    """(kind, wh-phrase) of a number match, `after` the words that follow it; None when nothing types it."""
    text = m.group(0)
    digits = re.sub(r"^between\s", "", text)
    if m.group("temp"):
        return "temperature", "what temperature"
    if m.group("pct"):
        return "percent", "what percentage"
    if m.group("money") or after.split()[:1] and after.split()[0].lower() in _MONEY_WORDS:
        return "money", "how much"
    if ":" in digits:
        return "ratio", "what" if "ratio" in before.split()[-3:] else "what ratio"
    if re.fullmatch(r"1\d{3}s|20\d0s", digits):
        return "decade", "what decade"
    if re.fullmatch(r"1[0-9]{3}|20[0-9]{2}", digits):
        return "year", "what year"
    return None


def _numbers(doc, taken: set[int]) -> list[Fact]:
    out = []
    text = doc.text
    for m in _NUMBER.finditer(text):
        after = text[m.end():].lstrip()
        if text[:m.start()].rstrip().endswith("("):
            continue  # a parenthesis restates ("196 °C (385 °F)"): the number before it is the fact
        typed = _number_kind(m, text[:m.start()].lower(), after)
        span = _char_span(doc, m.start(), m.end())
        if span is None:
            continue
        end = span.end
        if typed is None:
            # A count: the noun it counts joins the answer ("44 chromosomes" -> how many chromosomes).
            nxt = doc[end] if end < len(doc) else None
            if nxt is None or nxt.pos_ not in ("NOUN", "PROPN") or nxt.tag_ not in ("NNS", "NNPS"):
                continue
            end += 1
            typed = "quantity", f"how many {nxt.text}"
        start = rep_start = span.start  # a range's "between" is part of its answer ("between 1,000 and 2,000 m")
        if typed[0] in ("year", "decade") and start > 0 and doc[start - 1].lower_ == "the":
            rep_start = start - 1
        if typed[0] == "year" and start > 0 and doc[start - 1].lower_ == "in":
            rep_start = start - 1  # "in 1933" -> "in what year"; the wh-phrase carries its preposition
            typed = "year", "in what year"
        for q in _QUALIFIERS:  # "roughly 60 percent": the qualifier stays in the sentence, not the answer
            words = q.split()
            if start >= len(words) and [t.lower_ for t in doc[start - len(words):start]] == words:
                rep_start = min(rep_start, start - len(words))
        if any(i in taken for i in range(start, end)):
            continue
        taken.update(range(rep_start, end))
        out.append(Fact(typed[0], start, end, (rep_start, end), typed[1]))
    for t in doc:  # spelled counts: "two seeds"
        if t.lower_ in _NUMBER_WORDS and t.i + 1 < len(doc) and t.i not in taken:
            nxt = doc[t.i + 1]
            if nxt.tag_ in ("NNS", "NNPS") and nxt.i not in taken:
                taken.update((t.i, nxt.i))
                out.append(Fact("quantity", t.i, t.i + 2, (t.i, t.i + 2), f"how many {nxt.text}"))
    return out


def _name_spans(doc) -> list[tuple[int, int, str]]:
    """(start, end, label) of proper names: the tagger's entities of name labels, then runs of proper nouns it
    missed, then Latin binomials ("Coffea arabica", whose second word the tagger calls a common noun)."""
    spans = [(e.start, e.end, e.label_) for e in doc.ents if e.label_ in _NAME_LABELS]
    covered = {i for s, e, _ in spans for i in range(s, e)}
    i = 0
    while i < len(doc):
        if doc[i].pos_ == "PROPN" and i not in covered:
            j = i
            while j + 1 < len(doc) and (doc[j + 1].pos_ == "PROPN" or (doc[j + 1].lower_ == "of" and j + 2 < len(doc)
                                        and doc[j].text in _OF_HEADS and doc[j + 2].pos_ == "PROPN")) \
                    and j + 1 not in covered:
                j += 1
            spans.append((i, j + 1, ""))
            covered.update(range(i, j + 1))
            i = j + 1
        else:
            i += 1
    out = []
    for s, e, label in spans:
        if s == 0 and e == 1 and not label:
            continue  # a capitalised first word the tagger names nothing ("Cooler temperatures ...")
        # A genus and its epithet are one name: extend "Coffea" over "arabica".
        if (e - s == 1 and e < len(doc) and re.fullmatch(r"[A-Z][a-z]{3,}", doc[s].text)
                and _LATIN_EPITHET.fullmatch(doc[e].text) and doc[e].pos_ in ("NOUN", "PROPN", "ADJ", "X", "VERB")
                and not (s > 0 and doc[s - 1].lower_ == "the")):
            e += 1
        while e > s and doc[e - 1].pos_ in ("PUNCT", "PART"):  # "Kenya's": the possessive is not the name
            e -= 1
        while s < e and doc[s].pos_ in ("DET", "PUNCT"):
            s += 1
        if s < e:
            out.append((s, e, label))
    return out


def _head_noun(doc, s: int, e: int) -> int | None:
    """The common noun a name stands beside ("the engineer Alan Adler", "the fungus Colletotrichum kahawae"): the
    noun just before it that it is in apposition to or compounded with; None when there is none."""
    if s == 0:
        return None
    prev = doc[s - 1]
    if prev.pos_ == "NOUN" and prev.lower_ not in _GENERIC and (
            any(doc[i].head.i == prev.i or prev.head.i == doc[i].i for i in range(s, e))):
        return prev.i
    return None


def _determiner_start(doc, i: int, end: int) -> int:
    """Where the noun phrase around token i (ending before `end`) begins: its determiner and adjectives go with
    the wh-phrase."""
    j = i
    while j > 0 and doc[j - 1].dep_ in ("det", "amod", "compound", "nummod", "poss") and doc[j - 1].head.i in range(
            j, end):
        j -= 1
    return j


def _names(doc, taken: set[int]) -> list[Fact]:
    out = []
    for s, e, label in _name_spans(doc):
        if any(i in taken for i in range(s, e)) or e - s > MAX_ANSWER_WORDS:
            continue
        root = doc[s:e].root
        if label == "NORP" and root.dep_ in ("amod", "compound"):
            continue  # an adjective of nationality ("Dutch traders") is not what the sentence is about
        if doc[s].lower_ in _PRONOUN_HEADS:
            continue
        rep, wh, kind = (s, e), "what", "name"
        noun = _head_noun(doc, s, e)
        prep = root.head if root.dep_ == "pobj" else None
        words = doc[s:e].text.split()
        if noun is not None:
            rep, wh = (_determiner_start(doc, noun, e), e), f"which {doc[noun].text}"
        elif label == "PERSON" and len(words) >= 2 and all(w[:1].isupper() for w in words):
            wh, kind = ("whom" if s > 0 and doc[s - 1].pos_ == "ADP" else "who"), "person"
        elif label in ("GPE", "LOC") and prep is not None and prep.lower_ in _LOCATIVE and prep.i == s - 1:
            # "where" stands for the whole place phrase only when it says where something happens.
            rep, wh, kind = ((prep.i, e), "where", "place") if prep.head.pos_ in ("VERB", "AUX") else \
                ((s, e), "what place", "place")
        elif s > 0 and doc[s - 1].lower_ == "the":
            rep = (s - 1, e)
        if e < len(doc) and doc[e].tag_ == "POS":  # "Achille Gaggia's machine": asked as "whose machine"
            if kind != "person":
                continue
            rep, wh = (rep[0], e + 1), "whose"
        if any(i in taken for i in range(*rep)):
            continue
        taken.update(range(*rep))
        out.append(Fact(kind, s, e, rep, wh))
    return out


def _terms(doc, taken: set[int]) -> list[Fact]:
    out = []
    for chunk in doc.noun_chunks:
        root = chunk.root
        if root.pos_ != "NOUN" or root.dep_ not in _TERM_ROLES or root.lemma_.lower() in _GENERIC:
            continue
        s = chunk.start
        while s < chunk.end and (doc[s].dep_ in ("det", "poss", "predet") or doc[s].pos_ in ("DET", "PRON")
                                 or doc[s].lower_ in _NOT_CONTENT):
            s += 1
        if chunk.end - s == 1 and any(t.lower_ in _NOT_CONTENT - {"only", "other"} for t in doc[chunk.start:s]):
            continue  # "several layers": what is left says nothing
        if any(t.lower_ in _RELATIONAL for t in doc[s:chunk.end]):
            continue  # "the same plant family as", "a different problem": a relation to something else, not a thing
        e = chunk.end
        while s < e and doc[s].is_punct:  # "an airtight, opaque container": never an answer opening on a comma
            s += 1
        if s >= e or any(doc[i].is_punct and doc[i].text not in "-'’" for i in range(s, e)):
            continue
        if s >= e or e - s > MAX_ANSWER_WORDS or any(doc[i].lower_ in _PRONOUN_HEADS for i in range(s, e)):
            continue
        if any(doc[i].is_digit or doc[i].like_num for i in range(s, e)):
            continue
        if e - s == 1 and s > chunk.start and doc[s - 1].lower_ == "the":
            continue  # "the contract", "the genus": a word pointing back at what the text named before
        if any(i in taken for i in range(chunk.start, e)):
            continue
        taken.update(range(chunk.start, e))
        out.append(Fact("term", s, e, (chunk.start, e), "what"))
    return out


def facts(doc, common: frozenset[str] = frozenset(), limit: int = 0) -> list[Fact]:
    """The facts of one parsed sentence, no two overlapping: numbers first, then names, then terms whose head
    word is not in `common` (a word most sentences of the documents use, such as "coffee" in coffee's, is no
    fact); at most `limit` of them (0: all), returned in sentence order."""
    if len(doc) and doc[0].tag_ == "VB":
        return []  # a sentence opening on a bare verb is an instruction or a misparse ("Wet hulling, ..."), no fact
    taken: set[int] = set()
    found = _numbers(doc, taken) + _names(doc, taken)
    found += [f for f in _terms(doc, taken) if doc[f.start:f.end].root.lemma_.lower() not in common]
    found = [f for f in found if not _glued(doc, f)]
    return sorted(found[:limit] if limit else found, key=lambda f: f.start)


def _glued(doc, f: Fact) -> bool:
    """Whether the answer is part of a longer word ("spring-piston", "18/64"): asking for a piece of it is no
    question."""
    before = doc[f.start - 1] if f.start > 0 else None
    after = doc[f.end] if f.end < len(doc) else None
    return ((before is not None and not before.whitespace_ and before.text not in "($€£\"'“‘")
            or (after is not None and not doc[f.end - 1].whitespace_ and after.text in "-–/"))
