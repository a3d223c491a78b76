"""Text normalisation shared by scoring and the train/test leakage check, so both agree on 'the same text'."""
from __future__ import annotations

import math
import re
import string
import unicodedata

_PUNCT = set(string.punctuation) | {"–", "—", "‘", "’", "“", "”", "…"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def normalize(text: str) -> str:
    """SQuAD-style: lowercase, strip accents, punctuation and articles, collapse whitespace."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _THOUSANDS.sub("", text)  # "1,000" and "1000" are the same number
    text = "".join(" " if c in _PUNCT else c for c in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


# Apostrophes inside a word are dropped, not turned into a space: "product's" and "products" are one word.
_IN_WORD_APOSTROPHE = re.compile(r"(?<=\w)['’‘`´](?=\w)")


def normalize_words(text: str) -> str:
    """Like `normalize`, but keeps words whole: an apostrophe inside a word joins its halves
    ("product's" → "products", "don't" → "dont"). Used to compare questions, not to score answers."""
    return normalize(_IN_WORD_APOSTROPHE.sub("", text))


def _singular(word: str) -> str:
    # "goats" and "goat", "dishes" and "dish" ask for the same fact; "process", "genus" and "basis" are not plurals.
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-3] + "y" if word.endswith("ies") else word[:-1]


def word_set(text: str) -> frozenset[str]:
    """The distinct words of `text` after `normalize_words` (case, accents, punctuation, articles ignored), plurals
    folded to the singular, so a question copied with one word made plural still counts as the same."""
    return frozenset(_singular(w) for w in normalize_words(text).split())


def token_set_similarity(a: str | frozenset[str], b: str | frozenset[str]) -> float:
    """Jaccard similarity of the two word sets: shared words / all distinct words, from 0.0 to 1.0.

    1.0 means the same words in any order; two questions that differ by one word in ten score 9/11.
    Accepts text or a word set already computed (`word_set`, or harness/task/taught.py's content words).
    Two empty sets score 0.0: with no word to share there is no evidence that two questions ask the same thing,
    and a question of stop words alone must not count as a paraphrase of every other such question."""
    sa = a if isinstance(a, frozenset) else word_set(a)
    sb = b if isinstance(b, frozenset) else word_set(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


# Scripts written without spaces between words: a "word" there would be a whole clause, so it is split into
# characters instead (a crude but honest unit: a correct Thai answer shares characters with its reference).
_NO_SPACE_SCRIPTS = re.compile(r"[\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff"
                               r"\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def score_tokens(text: str) -> list[str]:
    """Tokens for scoring and lexical retrieval: normalised words, with no-space scripts split per character."""
    out: list[str] = []
    for w in normalize(text).split():
        out.extend(list(w) if _NO_SPACE_SCRIPTS.search(w) else [w])
    return out


def best_matches(queries: list[frozenset[str]], corpus: list[frozenset[str]], threshold: float,
                 skip_self: bool = False) -> dict[int, tuple[int, float]]:
    """For each query word set, the corpus set most similar to it (`token_set_similarity`), if at least
    `threshold` (> 0): {query index: (corpus index, similarity)}; ties go to the lower corpus index.
    `skip_self` ignores corpus[i] for queries[i] (when both lists are the same).

    Prefix filtering keeps this far below queries x corpus comparisons: with words ordered rarest
    first, two sets of Jaccard >= t must share a word among the first |S| - ceil(t|S|) + 1 of each."""
    freq: dict[str, int] = {}
    for s in (*queries, *corpus):
        for w in s:
            freq[w] = freq.get(w, 0) + 1

    def prefix(s: frozenset[str]) -> list[str]:
        keep = len(s) - math.ceil(threshold * len(s) - 1e-9) + 1
        return sorted(s, key=lambda w: (freq[w], w))[:keep]

    index: dict[str, list[int]] = {}
    for j, s in enumerate(corpus):
        for w in prefix(s):
            index.setdefault(w, []).append(j)
    out = {}
    for i, q in enumerate(queries):
        if not q:
            continue
        candidates = sorted({j for w in prefix(q) for j in index.get(w, ()) if not (skip_self and j == i)})
        scored = [(token_set_similarity(q, corpus[j]), -j) for j in candidates]
        if scored and max(scored)[0] >= threshold:
            sim, neg_j = max(scored)
            out[i] = (-neg_j, sim)
    return out


def percent(share: float) -> str:
    """A share as a whole percentage, where a small non-zero one reads 'under 1%' rather than a false '0%'."""
    return "under 1%" if 0 < share < 0.005 else f"{share:.0%}"
