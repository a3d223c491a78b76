"""What each trained arm learns from, as token ids and labels. Prompts come from `prompts.messages`, the same
function the arm is asked through, so training and answering formats cannot drift apart.

    qa    a training pair as the chat the arm is asked in; loss on the answer tokens only
    raft  the same, with top-k passages in the prompt: with probability p the pair's source passage among
          distractors, otherwise distractors only (Zhang et al. 2024); loss on the answer tokens only
    cpt   the documents themselves in blocks of `block_tokens`; loss on every token (continued pretraining)
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass

from harness.inference.chat import adds_bos, training_ids
from harness.prompts import messages
from harness.retrieval.chunking import Passage, chunk_document
from harness.sampling import MIN_ROWS, kept_count, spread
from harness.task.provenance import without_markers
from harness.task.types import Document, QAPair
from harness.text import normalize

IGNORE = -100


def encode_chat(tokenizer, prompt, answer: str, template: str | None = None) -> dict[str, list[int]]:
    """Whole chat as input; labels only on the answer (and its end-of-turn), so the model learns answers.
    `template` is the arm's chat template (`prompts.chat_template`); None for the tokenizer's own. The prompt's
    ids are those the arm is asked with (`chat.training_ids`), whatever the template does with a system turn."""
    p_ids, a_ids = training_ids(tokenizer, prompt, answer, template)
    return {"input_ids": p_ids + a_ids, "labels": [IGNORE] * len(p_ids) + a_ids}


def qa_examples(tokenizer, pairs: Sequence[QAPair], instruction: str | None,
                template: str | None = None) -> list[dict]:
    return [encode_chat(tokenizer, messages(p.question, instruction=instruction), p.answer, template) for p in pairs]


@dataclass(frozen=True)
class RaftItem:
    question: str
    passages: tuple[str, ...]
    answer: str
    oracle: bool  # whether the pair's source passage is among the passages


def source_passage(pair: QAPair, chunks: Sequence[Passage]) -> Passage | None:
    """The chunk of the pair's own document that states its answer (else the document's first chunk)."""
    own = [c for c in chunks if c.doc == pair.doc]
    answer = f" {normalize(pair.answer)} "
    return next((c for c in own if answer in f" {normalize(c.text)} "), own[0] if own else None)


def raft_mix(pairs: Sequence[QAPair], chunks: Sequence[Passage], retrieved: Sequence[Sequence[Passage]],
             n_passages: int, p_oracle: float, seed: int) -> list[RaftItem]:
    """RAFT's training prompts. Distractors are the pair's own retrieval results from other documents (the
    hard negatives the arm will meet at answer time), topped up with random chunks; order is shuffled."""
    rng = random.Random(seed)
    items = []
    for pair, hits in zip(pairs, retrieved):
        oracle = source_passage(pair, chunks) if pair.doc else None
        show_oracle = oracle is not None and rng.random() < p_oracle
        others = [h for h in hits if h.doc != pair.doc]
        pool = [c for c in chunks if c.doc != pair.doc]
        want = n_passages - (1 if show_oracle else 0)
        picked = [h.text for h in others[:want]]
        while len(picked) < want and len(pool) > len(picked):
            extra = rng.choice(pool).text
            if extra not in picked:
                picked.append(extra)
        shown = picked + ([oracle.text] if show_oracle else [])
        rng.shuffle(shown)
        items.append(RaftItem(pair.question, tuple(shown), pair.answer, show_oracle))
    return items


def raft_examples(tokenizer, items: Sequence[RaftItem], instruction: str | None,
                  template: str | None = None) -> list[dict]:
    return [encode_chat(tokenizer, messages(i.question, i.passages, instruction), i.answer, template)
            for i in items]


MIN_BLOCKS = 8  # a corpus too small for this many blocks gets shorter ones, so there is an eval split


def cpt_examples(tokenizer, docs: Sequence[Document], block_tokens: int) -> list[dict]:
    """Documents end to end (each closed by end-of-text) cut into blocks; every token is a label."""
    return [row for _, row in cpt_blocks(tokenizer, docs, block_tokens)]


def cpt_blocks(tokenizer, docs: Sequence[Document], block_tokens: int) -> list[tuple[str, dict]]:
    """cpt_examples' blocks, each with the document its first token comes from: what a sample spreads over.
    Each document opens with BOS where the tokenizer adds one (`chat.adds_bos`), as the model's pretraining
    documents did."""
    ids: list[int] = []
    starts: list[int] = []  # where each document's tokens begin in `ids`
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    bos = [tokenizer.bos_token_id] if adds_bos(tokenizer) else []
    for d in docs:
        starts.append(len(ids))
        # An imported document's page markers are bookkeeping, not text to learn.
        text = without_markers(d.text) if d.source else d.text
        ids += bos + tokenizer(text, add_special_tokens=False).input_ids + eos
    block_tokens = max(16, min(block_tokens, len(ids) // MIN_BLOCKS))
    return [(docs[bisect.bisect_right(starts, i) - 1].path, {"input_ids": b, "labels": list(b)})
            for i in range(0, len(ids), block_tokens) if len(b := ids[i:i + block_tokens]) > 1]


def sample_cpt(blocks: list[tuple[str, dict]], share: float, seed: int) -> tuple[list[dict], dict | None]:
    """A share of cpt's blocks spread over every document (harness/sampling.py), and its record: blocks and
    tokens kept of how many, and the seed. With the whole share, every block and no record."""
    rows = [row for _, row in blocks]
    if share >= 1:
        return rows, None
    kept = spread(blocks, lambda b: b[0], kept_count(share, len(blocks), MIN_ROWS), seed)
    tokens = lambda bs: sum(len(row["input_ids"]) for _, row in bs)  # noqa: E731
    return [row for _, row in kept], {"share": share, "blocks": len(kept), "of_blocks": len(blocks),
                                      "tokens": tokens(kept), "of_tokens": tokens(blocks), "seed": seed}


def sample_raft(pairs: Sequence[QAPair], most: int, full: int, seed: int) -> tuple[list[QAPair], dict]:
    """At most `most` of RAFT's pairs, spread over their documents (harness/sampling.py), and its record: how
    many examples of the `full` plan's (raft.max_examples of these pairs), and the seed."""
    kept = spread(list(pairs), lambda p: p.doc or "", most, seed)
    return kept, {"examples": len(kept), "of": min(full, len(pairs)), "seed": seed}


def all_chunks(docs: Sequence[Document], words: int, overlap: int) -> list[Passage]:
    return [c for d in docs for c in chunk_document(d, words, overlap)]
