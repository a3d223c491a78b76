"""Questions built around a fact of a parsed sentence, several phrasings each, all true by construction: every
question is the sentence's own words with the answer's stretch replaced by a wh-phrase (harness/pairs/facts.py).

    short       the clause that holds the answer, the answer in place: "The AeroPress was invented by which
                engineer?" (a clause that borrows its subject says it: the subject of the verb it is coordinated
                with, or the noun a participle describes plus "was"; a sentence that opens with "it" or "they"
                takes the previous sentence's subject)
    fronted     the wh-phrase first, with inversion or do-support: "By which engineer was the AeroPress
                invented?", "How many grams of coffee does a typical double shot use?"; only where the answer sits
                in the clause's own verb phrase and is not its subject
    cloze       "Which words fill the blank in: The AeroPress was invented by the engineer ___?" (over the whole
                sentence where the clause cannot stand alone)
    topic       each of these but the cloze behind the document's title ("Altitude: ..."), kept after them
    sentence    the whole sentence, the answer in place, when it says more than the clause (kept last: the
                longest, so the costliest to train on)

Why these and not a small model's free writing: 135M-written questions were right for 4 of 30 pairs read by hand
(bench/README.md); a question built from the sentence's parse can be clumsy but never asks for the wrong thing.
Several phrasings of one fact, not one, is what lets a fine-tune extract it later (Allen-Zhu & Li 2023).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.pairs.facts import Fact

FORMS = ("short", "fronted", "cloze", "topic", "sentence")  # the order a fact's phrasings are kept in
MIN_PHRASINGS = 3
CLOZE = "Which words fill the blank in: {}?"
BLANK = "___"
_CLAUSE_DEPS = frozenset("ROOT conj advcl ccomp parataxis".split())
_ASIDES = frozenset("advcl parataxis relcl acl appos mark".split())
_PRONOUNS = frozenset("it they".split())
# Words that point outside the question: a question holding one cannot be answered from itself.
_CONTEXT_WORDS = frozenset("this these those such it they them he she him her its their".split())
_DO = {"VBZ": "does", "VBD": "did", "VBP": "do"}
_OPENERS = frozenset("what which who whom whose where how in at on for from by to of the a an".split())
_FINITE = frozenset("VBZ VBD VBP MD".split())
_DEMONSTRATIVES = frozenset("this that these those".split())
_MOVABLE = frozenset("dobj attr oprd dative acomp".split())


@dataclass(frozen=True)
class Phrasing:
    form: str
    question: str


def _verbal(t) -> bool:
    return t.pos_ in ("VERB", "AUX")


def clause_head(doc, i: int):
    """The verb heading the smallest clause around token i: up from it past noun phrases, infinitives and
    restrictive modifiers, to a root, a coordinated or subordinate verb, or a past participle describing a noun."""
    t = doc[i]
    while True:
        if _verbal(t) and (t.dep_ in _CLAUSE_DEPS or (t.dep_ == "acl" and t.tag_ == "VBN" and _aside(t))):
            if t.dep_ != "conj" or _verbal(t.head):
                return t
        if t.head.i == t.i:
            return t
        t = t.head


def _subject(head):
    return next((c for c in head.children if c.dep_ in ("nsubj", "nsubjpass")), None)


def _tidy(doc, ids: list[int]) -> list[int]:
    """Commas and conjunctions whose neighbours were dropped go too, so no clause reads "The AeroPress, uses"."""
    kept = set(ids)
    out = []
    for i in ids:
        t = doc[i]
        if t.text in (",", ";", ":", "—", "–") and not (i - 1 in kept and i + 1 in kept):
            continue
        if t.dep_ == "cc" and i + 1 not in kept:
            continue
        out.append(i)
    while out and (doc[out[-1]].is_punct or doc[out[-1]].dep_ == "cc"):
        out.pop()
    while out and (doc[out[0]].is_punct or doc[out[0]].dep_ == "cc"):
        out.pop(0)
    return out


def _keep(head, answer: range) -> list[int]:
    """Token indices of the clause headed by `head`: its subtree without the clauses and asides hung on it that
    do not hold the answer (coordinated verbs, subordinate clauses, appositions, modifiers set off by commas)."""
    keep = []

    def walk(t, top: bool) -> None:
        holds = any(i in answer for i in range(t.left_edge.i, t.right_edge.i + 1))
        if not top and not holds:
            if t.dep_ == "conj" and _verbal(t) and _verbal(t.head):  # a verb "coordinated" with a noun: a misparse
                return
            if t.dep_ in _ASIDES and (t.dep_ not in ("acl", "relcl", "appos") or _aside(t) or t.head.i in answer):
                return
        keep.append(t.i)
        for c in t.children:
            walk(c, False)

    walk(head, True)
    return _tidy(head.doc, [i for i in sorted(keep) if i not in _parenthesised(head.doc, answer)])


def _parenthesised(doc, answer: range) -> set[int]:
    """Tokens inside parentheses that do not hold the answer: an aside ("196 degrees Celsius (385 °F)")."""
    out, depth, inside = set(), 0, []
    for t in doc:
        if t.text == "(":
            depth, inside = depth + 1, [t.i]
        elif t.text == ")" and depth:
            depth -= 1
            inside.append(t.i)
            if not any(i in answer for i in inside):
                out.update(inside)
        elif depth:
            inside.append(t.i)
    return out


def _clean_cuts(doc, ids: list[int]) -> bool:
    """Whether every stretch cut out of the clause is one a reader would not miss: an aside set off by a comma,
    dash or parenthesis, or a coordinated verb phrase ("and attacks ..."). A cut anywhere else is a misparse
    ("A medium roast ends before second crack [and balances] acidity with ...")."""
    kept = set(ids)
    end = len(doc) - 1 if doc[len(doc) - 1].is_punct else len(doc)
    if ids[-1] + 1 < end:  # what follows the clause must be a clause of its own, not the rest of a phrase
        nxt = doc[ids[-1] + 1]
        if not (nxt.is_punct or nxt.dep_ in ("mark", "cc", "aux", "advmod") or (nxt.dep_ == "prep" and nxt.head.i in kept)
                or nxt.dep_ in ("advcl", "conj", "relcl", "xcomp") and doc[ids[-1]].is_punct):
            return False
    i = ids[0]
    while i < ids[-1]:
        if i in kept:
            i += 1
            continue
        start = i
        while i not in kept:
            i += 1
        cut = doc[start:i]
        before = doc[start - 1] if start > 0 else None
        if not (cut[0].is_punct or (before is not None and before.is_punct)
                or (cut[0].dep_ == "cc" and len(cut) > 1 and _verbal(cut[1]))
                or cut[0].dep_ in ("mark", "advmod", "aux")):
            return False
    return True


def _aside(t) -> bool:
    """Whether a modifier is set off by a comma (non-restrictive: the clause reads true without it)."""
    return t.left_edge.i > 0 and t.doc[t.left_edge.i - 1].text == ","


def _phrase(t, exclude: set[int] = frozenset()) -> str:
    """A noun phrase's words without its asides, a leading determiner lowercased."""
    ids = []

    def walk(x, top: bool) -> None:
        if not top and (x.i in exclude or x.dep_ in ("appos", "relcl", "acl", "punct", "cc", "conj")):
            return
        ids.append(x.i)
        for c in x.children:
            walk(c, False)

    walk(t, True)
    return " ".join(_words(t.doc, _tidy(t.doc, sorted(ids)), lower=True))


def _words(doc, ids: list[int], lower: bool) -> list[str]:
    """The words of `ids`, the first lowercased when `lower` and it is a common word (not a name, not an
    acronym), so the phrase can stand inside a question."""
    words = [doc[i].text for i in ids]
    if lower and ids:
        first = doc[ids[0]]
        if first.pos_ == "DET" or (first.pos_ != "PROPN" and not first.ent_type_
                                   and not (len(first.text) > 1 and first.text.isupper())):
            words[0] = words[0].lower()
    return words


def _borrowed_subject(head, antecedent: str | None) -> str | None:
    """The words a subjectless clause takes its subject from; None when none can be found."""
    if head.dep_ == "acl":  # a participle describing a noun: "The AeroPress, invented by ..." -> "the AeroPress was"
        noun = head.head
        return f"{_phrase(noun, {head.i})} {'were' if noun.tag_ in ('NNS', 'NNPS') else 'was'}"
    t = head
    while t.dep_ == "conj" and _subject(t) is None:
        t = t.head
        if t.dep_ == "acl" and _subject(t) is None:
            return _borrowed_subject(t, antecedent)
    subj = _subject(t)
    if subj is None or t is head or subj.tag_ in ("WDT", "WP"):
        return None  # no subject, or a relative pronoun ("cherries that have been eaten and excreted by ...")
    return antecedent if subj.lower_ in _PRONOUNS else _phrase(subj)


def subject_text(doc) -> str | None:
    """The main subject of a sentence, as a next sentence's opening "it" would mean it; None for a pronoun."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    subj = _subject(root) if root is not None else None
    if subj is None or subj.pos_ == "PRON" or subj.lower_ in _CONTEXT_WORDS:
        return None
    return _phrase(subj)


def _join(words: list[str]) -> str:
    text = " ".join(w for w in words if w)
    text = re.sub(r"\s+([,;:.!?%)\]])", r"\1", text)
    text = re.sub(r"([(\[$€£])\s+", r"\1", text)
    text = re.sub(r"\s+(n't|'s|’s)\b", r"\1", text)
    text = re.sub(r"°\s+([CF])\b", r"°\1", text)
    text = re.sub(r"\s*-\s*(?=\w)", "-", text) if re.search(r"\w\s-\s\w", text) else text
    return text.strip(" ,;:")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _substitute(doc, ids: list[int], span: tuple[int, int], stand_in: str, lower_first: bool) -> list[str]:
    words, done = [], False
    for n, i in enumerate(ids):
        if span[0] <= i < span[1]:
            if not done:
                words.append(stand_in)
                done = True
        else:
            words.append(_words(doc, [i], lower_first and n == 0)[0])
    return words


def _in_place(doc, ids: list[int], span: tuple[int, int], stand_in: str, prefix: str | None) -> str:
    return _join(([prefix] if prefix else []) + _substitute(doc, ids, span, stand_in, bool(prefix)))


def _fronted(doc, ids: list[int], head, fact: Fact, prefix: str | None, subj) -> str | None:
    """The wh-phrase (with the phrase it heads, and its preposition) moved first, the subject after the auxiliary
    or "do"; None where the clause is not in the plain order this can invert."""
    root = doc[fact.replace[0]:fact.replace[1]].root
    t = root
    while t.i != head.i:  # the answer must sit in the head verb's own phrase, not a clause below it
        t = t.head
        if t.i != head.i and _verbal(t) and t.dep_ != "xcomp":
            return None
    top = root.head if root.dep_ == "pobj" and root.head.i in ids else root
    # Only a verb's own object, predicate or prepositional phrase moves: a piece of a noun phrase ("of coffee" in
    # "18 grams of coffee") does not.
    if not (top.dep_ in _MOVABLE or (top.dep_ == "prep" and _verbal(top.head))):
        return None
    moved = [i for i in ids if top.left_edge.i <= i <= top.right_edge.i]
    if fact.wh == "what" and any(i >= fact.replace[1] for i in moved):
        return None  # "At what of about 18 to 22 °C does arabica grow best?": a bare "what" cannot carry a tail
    if moved and moved[0] > 0 and doc[moved[0] - 1].text == ",":
        return None  # set off by a comma: an aside to something else, not the verb's own argument
    if any(doc[i].dep_ == "cc" for i in moved):
        return None  # "What and activated carbon filters does ...": a coordination does not move whole
    subj_ids = [i for i in ids if subj is not None and subj.left_edge.i <= i <= subj.right_edge.i]
    if set(moved) & set(subj_ids):
        return None
    rest = [i for i in ids if i not in moved and i not in subj_ids]
    if any(i < head.i for i in rest if doc[i].dep_ not in ("aux", "auxpass", "neg", "advmod")):
        return None  # a fronted adverbial or a second subject: leave the order alone
    wh = _join(_substitute(doc, moved, fact.replace, fact.wh, False))
    if subj_ids:
        subject = " ".join(_words(doc, subj_ids, lower=True))
    elif prefix and prefix.split()[-1] in ("was", "were"):  # a participle's borrowed subject
        subject, rest = " ".join(prefix.split()[:-1]), rest
        return _cap(_join([wh, prefix.split()[-1], subject] + [doc[i].text for i in rest]))
    elif prefix:
        subject = prefix
    else:
        return None
    auxes = [i for i in rest if doc[i].dep_ in ("aux", "auxpass") and doc[i].head.i == head.i and i < head.i]
    if head.lemma_ == "be" and not auxes:
        first, verb = head.i, head.text
    elif auxes:
        first, verb = auxes[0], doc[auxes[0]].text
    elif head.tag_ in _DO:
        first, verb = None, _DO[head.tag_]
    else:
        return None
    body = [doc[i].text if not (first is None and i == head.i) else head.lemma_ for i in rest if i != first]
    out = _cap(_join([wh, verb, subject] + body))
    return None if "," in out[len(wh):] else out  # an aside left behind reads wrongly once the order changes


def self_contained(question: str) -> bool:
    """A question must not lean on a sentence it does not quote ("this process", "it")."""
    return not any(w in _CONTEXT_WORDS for w in re.findall(r"[a-z]+", question.lower()))


def _clause_forms(doc, fact: Fact, antecedent: str | None) -> list[Phrasing]:
    """short, fronted and cloze over the clause that holds the answer; [] when that clause cannot stand alone."""
    head = clause_head(doc, fact.start)
    ids = _colon_side(doc, [i for i in _keep(head, range(*fact.replace)) if not (doc[i].is_punct and doc[i].text
                                                                                 in ".!?")], fact)
    subj = _subject(head)
    prefix = None
    if subj is None:
        prefix = _borrowed_subject(head, antecedent)
        if prefix is None and head.dep_ != "ROOT":
            return []
    elif subj.lower_ in _PRONOUNS:
        if antecedent is None or subj.i != 0:
            return []
        prefix, ids, subj = antecedent, [i for i in ids if i != subj.i], None
    if not ids or not any(fact.replace[0] <= i < fact.replace[1] for i in ids):
        return []
    if not (prefix or any(doc[i].tag_ in _FINITE for i in ids)):
        return []  # no finite verb kept: a fragment ("The natural process, also called what?"), not a question
    if any(doc[i].dep_ == "det" and doc[i].lower_ in _DEMONSTRATIVES for i in ids):
        return []  # "that line", "these beans": the clause points at a sentence the question does not hold
    if not _clean_cuts(doc, ids):
        return []
    short = _in_place(doc, ids, fact.replace, fact.wh, prefix)
    if ids[0] == fact.replace[0] and fact.wh != "what" and not (subj is not None and subj.i == ids[0]):
        # An adverbial opening the clause ("In 1714 the city of Amsterdam gave ..."): asked for at the end.
        after = [i for i in ids if i >= fact.replace[1]]
        short = _join(([prefix] if prefix else []) + _words(doc, after, True) + [fact.wh])
    out = [Phrasing("short", _cap(short) + "?")]
    fronted = _fronted(doc, ids, head, fact, prefix, subj)
    if fronted:
        out.append(Phrasing("fronted", fronted + "?"))
    out.append(Phrasing("cloze", CLOZE.format(_cap(_in_place(doc, ids, (fact.start, fact.end), BLANK, prefix)))))
    return out


def _colon_side(doc, ids: list[int], fact: Fact) -> list[int]:
    """The side of a colon that holds the answer: "Kenya grades beans by size: AA is the largest screen size"
    asks about size without AA's clause. [] when that side states nothing (a list: the sentence forms ask it)."""
    colons = [t.i for t in doc if t.text == ":"]
    if not colons:
        return ids
    cuts = [-1] + colons + [len(doc)]
    for a, b in zip(cuts, cuts[1:]):
        if a < fact.start < b:
            side = [i for i in ids if a < i < b]
            # A side whose verb is on the other side of the colon is a list hung on it, not a clause.
            return side if any(doc[i].tag_ in _FINITE and doc[i].head.i == doc[i].i or doc[i].dep_ in _CLAUSE_DEPS
                               and doc[i].tag_ in _FINITE for i in side) else []
    return []


def _sentence_forms(doc, fact: Fact, antecedent: str | None) -> list[Phrasing]:
    """The whole sentence with the answer in place, and its cloze; [] when it leans on a sentence before it."""
    ids = [t.i for t in doc if not (t.is_punct and t.i == len(doc) - 1)]
    prefix = None
    if doc[0].lower_ in _PRONOUNS and doc[0].dep_.startswith("nsubj"):
        if antecedent is None:
            return []
        prefix, ids = antecedent, ids[1:]
    if any(doc[i].dep_ == "det" and doc[i].lower_ in _DEMONSTRATIVES for i in ids):
        return []
    if not any(doc[i].tag_ in _FINITE for i in ids):
        return []  # a list or heading cut off at a colon, not a statement
    return [Phrasing("sentence", _cap(_in_place(doc, ids, fact.replace, fact.wh, prefix)) + "?"),
            Phrasing("cloze", CLOZE.format(_cap(_in_place(doc, ids, (fact.start, fact.end), BLANK, prefix))))]


def phrasings(doc, fact: Fact, antecedent: str | None, title: str | None) -> list[Phrasing]:
    """The questions asking for `fact`, in the order of FORMS, each ending in "?", duplicates left out, none
    that leans on context: the clause's forms, the sentence's (its cloze only where the clause has none), and
    each of them but the cloze behind the document's title."""
    clause = _clause_forms(doc, fact, antecedent)
    sentence = _sentence_forms(doc, fact, antecedent)
    out = clause + [p for p in sentence if p.form == "sentence" or not clause]
    if title:  # each question form again behind the title: the filters may drop some, and a fact wants three
        for p in [p for p in out if p.form != "cloze"]:
            q = p.question
            lower = q.split()[0].lower() in _OPENERS or _lowerable(doc)
            out.append(Phrasing("topic", f"{title}: {q[:1].lower() + q[1:] if lower else q}"))
    seen, kept = set(), []
    for p in sorted(out, key=lambda p: FORMS.index(p.form)):
        if p.question.lower() not in seen and self_contained(p.question.replace(BLANK, "")):
            seen.add(p.question.lower())
            kept.append(p)
    return kept


def _lowerable(doc) -> bool:
    first = doc[0]
    return first.pos_ == "DET" or (first.pos_ != "PROPN" and not first.ent_type_)
