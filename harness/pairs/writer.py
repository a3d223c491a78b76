"""The question writer: a generator model writes one question for each candidate answer (harness/pairs/candidates.py).

Zero-shot, SmolLM2-135M wrote 0 usable questions of 8; shown four demonstrations in the same format (the
sentence that holds the answer, the answer, the question) it wrote about half usable ones (measured on
single sentences; after the filters, 8 of 30 kept coffee pairs were right: bench/README.md). So every prompt is
a short plain transcript: an instruction, the demonstrations, then the target sentence and answer, and the
model continues with the question on one line. The demonstrations come from the task's own training pairs
when it has any (each shown with the sentence of its document that holds its answer), otherwise from the
generic ones below. They are the same for every candidate, so the batched answering path computes them once
(generate.py's shared prefix).

Questions are cached one candidate at a time, by content, under CACHE/pairs/<prompt>/<candidate>.json: the
prompt's key holds the generator, its precision, the template, instruction and demonstrations, the token budget
and the seed; the candidate's, its document, sentence and answer. A second generation on the same documents
reads every question back and calls no model; one over more candidates (a full run after a run that wrote only
a demonstration pool) reuses those written and asks the model for the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.pairs.candidates import Candidate, sentences
from harness.task.types import Document, QAPair
from harness.text import normalize

INSTRUCTION = "Write the question that the answer answers, using only the sentence."
# A completion transcript, for chat and base models alike: the question is the line after "Question:".
QUESTION_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\\n\\n' }}"
    "{% elif m['role'] == 'user' %}{{ m['content'] + '\\nQuestion:' }}"
    "{% else %}{{ ' ' + m['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}")
GENERIC_DEMOS = (
    ("The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair in Paris.", "1889",
     "In what year was the Eiffel Tower completed?"),
    ("Penicillin was discovered in 1928 by Alexander Fleming, a Scottish physician.", "Alexander Fleming",
     "Who discovered penicillin?"),
    ("At sea level, pure water boils at 100 °C and freezes at 0 °C.", "100 °C",
     "At what temperature does pure water boil at sea level?"),
    ("The Amazon River flows east through Peru and Brazil before it reaches the Atlantic Ocean.", "Atlantic Ocean",
     "Which ocean does the Amazon River flow into?"),
)
MAX_NEW_TOKENS = 40
BATCH_SIZE = 16


@dataclass(frozen=True)
class Demo:
    sentence: str
    answer: str
    question: str


def turn(sentence: str, answer: str) -> str:
    return f"Sentence: {sentence}\nAnswer: {answer}"


def own_demos(pairs: Sequence[QAPair], docs: Sequence[Document], k: int, seed: int) -> list[Demo]:
    """Up to k of the task's pairs as demonstrations, each with the sentence of its document that holds its
    answer (pairs whose answer no sentence holds verbatim are passed over)."""
    text = {d.path: sentences(d.text) for d in docs}
    found = []
    for p in pairs:
        hold = [s for s in text.get(p.doc or "", ()) if p.answer in s and p.answer.strip()]
        if hold and normalize(p.answer) not in normalize(p.question):
            found.append(Demo(hold[0], p.answer, p.question))
    return random.Random(seed).sample(found, min(k, len(found)))


def demos_for(pairs: Sequence[QAPair], docs: Sequence[Document], k: int, seed: int) -> tuple[list[Demo], str]:
    """The demonstrations every prompt shows, and where they came from: the task's pairs when k of them can
    be shown, else the generic ones."""
    own = own_demos(pairs, docs, k, seed)
    if len(own) == k:
        return own, "task"
    return [Demo(*d) for d in GENERIC_DEMOS[:k]], "generic"


def prompt(demos: Sequence[Demo], candidate: Candidate) -> list[dict[str, str]]:
    turns = [{"role": "system", "content": INSTRUCTION}]
    for d in demos:
        turns += [{"role": "user", "content": turn(d.sentence, d.answer)}, {"role": "assistant", "content": d.question}]
    return turns + [{"role": "user", "content": turn(candidate.sentence, candidate.answer)}]


@dataclass(frozen=True)
class Writing:
    """The questions of one `QuestionWriter.write`, and what writing them took: each question's share of its
    batch's time and its tokens, as measured when it was written (a question read from the cache keeps its first
    writing's). Token counts are None where a reused entry has none."""

    questions: list[str]
    seconds: float
    cached: bool  # every question was read from the cache
    prompt_tokens: int | None
    new_tokens: int | None
    reused: int = 0  # how many questions were read from the cache


@dataclass
class QuestionWriter:
    """A loaded generator and the demonstrations it is shown. `calls` counts model calls (0 when every question
    was cached), `written` the questions the model wrote (not read from the cache)."""

    model: object
    tokenizer: object
    generator_id: str  # the generator's fingerprint, part of the cache key
    demos: list[Demo]
    seed: int = 0
    cache_dir: Path | None = None
    calls: int = 0
    written: int = 0

    def prompt_key(self) -> str:
        """What every question's prompt and decoding share: one cache folder."""
        blob = json.dumps([self.generator_id, str(next(self.model.parameters()).dtype), QUESTION_TEMPLATE,
                           INSTRUCTION, [vars(d) for d in self.demos], MAX_NEW_TOKENS, self.seed])
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def entries(self, cands: Sequence[Candidate]) -> list[Path | None]:
        """Each candidate's cache file (None without a cache folder)."""
        if self.cache_dir is None:
            return [None] * len(cands)
        folder = self.cache_dir / "pairs" / self.prompt_key()
        return [folder / (hashlib.sha256(json.dumps([c.doc, c.sentence, c.answer]).encode()).hexdigest()[:24]
                          + ".json") for c in cands]

    def write(self, cands: Sequence[Candidate]) -> Writing:
        """One question per candidate: those in the cache read back, the rest written in one model call."""
        paths = self.entries(cands)
        saved = {i: json.loads(p.read_text()) for i, p in enumerate(paths) if p is not None and p.is_file()}
        todo = [i for i in range(len(cands)) if i not in saved]
        if todo:
            from harness.inference.generate import generate  # here: `harness validate` plans without torch

            outs = generate(self.model, self.tokenizer, [prompt(self.demos, cands[i]) for i in todo], MAX_NEW_TOKENS,
                            BATCH_SIZE, desc="writing questions", template=QUESTION_TEMPLATE)
            self.calls, self.written = self.calls + 1, self.written + len(todo)
            for i, o in zip(todo, outs):
                saved[i] = {"question": o.text, "seconds": o.seconds, "prompt_tokens": o.prompt_tokens,
                            "new_tokens": o.new_tokens}
                if paths[i] is not None:
                    _write_atomic(paths[i], saved[i])
        done = [saved[i] for i in range(len(cands))]
        return Writing([e["question"] for e in done], sum(e["seconds"] for e in done), bool(cands) and not todo,
                       _total(e.get("prompt_tokens") for e in done), _total(e.get("new_tokens") for e in done),
                       len(cands) - len(todo))


def _total(counts) -> int | None:
    counts = list(counts)
    return None if any(n is None for n in counts) else sum(counts)


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pairs-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
