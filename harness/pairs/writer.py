"""The question writer: a generator model writes one question for each candidate answer (harness/pairs/candidates.py).

Zero-shot, SmolLM2-135M wrote 0 usable questions of 8; shown four demonstrations in the same format (the
sentence that holds the answer, the answer, the question) it wrote about half usable ones (measured on
single sentences; after the filters, 8 of 30 kept coffee pairs were right: bench/README.md). So every prompt is
a short plain transcript: an instruction, the demonstrations, then the target sentence and answer, and the
model continues with the question on one line. The demonstrations come from the task's own training pairs
when it has any (each shown with the sentence of its document that holds its answer), otherwise from the
generic ones below. They are the same for every candidate, so the batched answering path computes them once
(generate.py's shared prefix).

Questions are cached by content under CACHE/pairs/: the generator, the prompt (template, instruction and
demonstrations), every candidate's sentence and answer, the token budget and the seed. A second generation on
the same documents reads the file and loads no model output anew.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
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
    """The questions of one `QuestionWriter.write`, and what writing them took. Token counts are None for a
    cache entry written before they were recorded."""

    questions: list[str]
    seconds: float
    cached: bool
    prompt_tokens: int | None
    new_tokens: int | None


@dataclass
class QuestionWriter:
    """A loaded generator and the demonstrations it is shown. `calls` counts model calls (0 on a cache hit)."""

    model: object
    tokenizer: object
    generator_id: str  # the generator's fingerprint, part of the cache key
    demos: list[Demo]
    seed: int = 0
    cache_dir: Path | None = None
    calls: int = 0

    def key(self, cands: Sequence[Candidate]) -> str:
        blob = json.dumps([self.generator_id, str(next(self.model.parameters()).dtype), QUESTION_TEMPLATE,
                           INSTRUCTION, [vars(d) for d in self.demos], MAX_NEW_TOKENS, self.seed,
                           [(c.doc, c.sentence, c.answer) for c in cands]])
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def write(self, cands: Sequence[Candidate]) -> Writing:
        """One question per candidate, with what writing them took (a cached result keeps the first run's)."""
        path = self.cache_dir / "pairs" / f"{self.key(cands)}.json" if self.cache_dir else None
        if path is not None and path.is_file():
            saved = json.loads(path.read_text())
            return Writing(saved["questions"], saved["seconds"], True, saved.get("prompt_tokens"),
                           saved.get("new_tokens"))
        from harness.inference.generate import generate  # here: `harness validate` plans generation without importing torch

        t = time.perf_counter()
        outs = generate(self.model, self.tokenizer, [prompt(self.demos, c) for c in cands], MAX_NEW_TOKENS,
                        BATCH_SIZE, desc="writing questions", template=QUESTION_TEMPLATE) if cands else []
        self.calls += 1
        done = Writing([o.text for o in outs], time.perf_counter() - t, False,
                       sum(o.prompt_tokens for o in outs), sum(o.new_tokens for o in outs))
        if path is not None:
            _write_atomic(path, {"seconds": done.seconds, "questions": done.questions,
                                 "prompt_tokens": done.prompt_tokens, "new_tokens": done.new_tokens})
        return done


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pairs-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
