"""Scores of one answer against its references, all computed offline. Each is the max over references."""
from __future__ import annotations

from collections import Counter

import numpy as np
from rouge_score import rouge_scorer

from harness.text import normalize, score_tokens

# rouge_score is the package that evaluate's "rouge" module wraps; using it directly needs no hub.
class _Tokens:
    """rouge_score's own tokenizer drops every non-ASCII letter (a Thai answer would score 0)."""

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return score_tokens(text)


_ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokens())


def exact_match(pred: str, ref: str) -> float:
    return float(normalize(pred) == normalize(ref))


def contains(pred: str, ref: str) -> float:
    """The reference appears, as whole words, in the answer: fair to chatty models that answer in sentences."""
    p, r = f" {' '.join(score_tokens(pred))} ", f" {' '.join(score_tokens(ref))} "
    return float(r.strip() != "" and r in p)


def token_f1(pred: str, ref: str) -> float:
    p, r = score_tokens(pred), score_tokens(ref)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def recall(pred: str, ref: str) -> float:
    """Share of the reference's tokens found in the answer. Adlakha et al. (2023) found it tracks human
    judgements of verbose answers better than exact match or F1: a right sentence-long answer still scores."""
    p, r = Counter(score_tokens(pred)), Counter(score_tokens(ref))
    total = sum(r.values())
    return sum((p & r).values()) / total if total else 0.0


def rouge_l(pred: str, ref: str) -> float:
    return _ROUGE.score(ref, pred)["rougeL"].fmeasure


# A new metric is its function here, its entry in LEXICAL and NOTES, and its name in config.METRICS.
LEXICAL = {"exact_match": exact_match, "contains": contains, "f1": token_f1, "recall": recall, "rouge_l": rouge_l}
NOTES = {  # the line report.md explains each metric with
    "exact_match": "the normalised answer equals a reference",
    "contains": "a reference appears, as whole words, in the normalised answer",
    "f1": "token-overlap F1 with the best reference (SQuAD style)",
    "recall": "share of the reference's tokens found in the answer (robust to sentence-long answers)",
    "rouge_l": "ROUGE-L F-measure (longest common subsequence)",
    "semantic": "cosine similarity of answer and reference embeddings",
}


def score(pred: str, refs: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Lexical scores; `semantic` is added in batch by `semantic_scores` since it needs the embedder."""
    return {name: max(fn(pred, r) for r in refs) for name, fn in LEXICAL.items()}


def semantic_scores(embedder, preds: list[str], refs: list[tuple[str, ...]]) -> list[float]:
    """Cosine similarity of sentence embeddings, best reference per answer."""
    flat = [r for rs in refs for r in rs]
    vp = embedder.encode(preds, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    vr = embedder.encode(flat, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    out, at = [], 0
    for i, rs in enumerate(refs):
        sims = vr[at:at + len(rs)] @ vp[i]
        out.append(float(np.max(sims)) if len(rs) else 0.0)
        at += len(rs)
    return out
