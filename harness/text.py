"""Text normalisation shared by scoring and the train/test leakage check, so both agree on 'the same text'."""
from __future__ import annotations

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
