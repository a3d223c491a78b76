"""Append-only logs of generated answers, so work already done is not done again.

Two files, one format: the run's own log inside its unfinished folder (what `--resume` reads), and the answer
cache under `--cache-dir/answers/` shared by every run on the same model, so a re-run whose prompts did not
change answers from it (a warm `make demo`). Keys are (answering code, model state, exact prompt, token
budget): greedy decoding gives the same key the same answer, and `Generation.seconds` keeps the time measured
when it was generated. Whole batches are skipped only when every prompt in them is logged, so batch
composition, and with it every answer, is the same as in an uninterrupted run.

Both engines answer through it: transformers batch by batch (generate.generate), vLLM through `answer_through`.
The namespace names the engine where it is not transformers (run/experiment.answer_namespace), so each engine
resumes and reuses its own answers: greedy answers of the two may differ in a last token.

Within a run, a prompt asked again (a rag question whose passages the rebuild left alone, a fresh question asked
again after the update) keeps its first answer without joining a batch: `answered` holds what this run's
earlier calls returned, which a resumed run rebuilds call by call in the same order.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from harness.inference.generate import Generation


def _read(path: Path | None) -> dict[str, Generation]:
    done: dict[str, Generation] = {}
    if path is not None and path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                done[row["key"]] = Generation(**row["gen"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut off by a kill, or half of two runs' appends: skip it, keep the rest
    return done


def _append(path: Path, items: list[tuple[str, Generation]]) -> None:
    with open(path, "a") as f:  # one write per batch: appends from concurrent runs stay whole lines
        f.write("".join(json.dumps({"key": k, "gen": asdict(g)}) + "\n" for k, g in items))
        f.flush()
        os.fsync(f.fileno())


def answering_code_hash() -> str:
    """The code that turns a prompt into an answer: a change to it must not be answered from the cache."""
    from harness.inference import generate
    from harness.inference import models

    return hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (generate, models))).hexdigest()[:16]


class AnswerLog:
    def __init__(self, path: Path | None = None, cache: Path | None = None, namespace: str = ""):
        self.path, self.cache, self.namespace = path, cache, namespace
        self.cached = _read(cache)
        self.done: dict[str, Generation] = _read(path)
        self.reused = 0  # answers taken from the shared cache rather than generated in this run
        self.answered: dict[str, Generation] = {}  # what this run's answering calls returned so far, by key

    def key(self, model_tag: str, prompt: str, max_new_tokens: int) -> str:
        return hashlib.sha256(f"{self.namespace}\0{model_tag}\0{max_new_tokens}\0{prompt}".encode()).hexdigest()

    def get(self, key: str) -> Generation | None:
        return self.done.get(key) or self.cached.get(key)

    def put(self, items: list[tuple[str, Generation]]) -> None:
        new = [(k, g) for k, g in items if k not in self.done]
        self.reused += sum(k in self.cached for k, _ in new)
        self.done.update(new)
        if self.path is not None and new:
            _append(self.path, new)
        fresh = [(k, g) for k, g in new if k not in self.cached]
        if self.cache is not None and fresh:
            self.cached.update(fresh)
            _append(self.cache, fresh)


def answer_through(log: AnswerLog | None, keys: list[str], produce) -> list[Generation]:
    """Answers in `keys`' order for an engine that batches on its own (vLLM's continuous batching): this run's
    earlier answers first, then logged or cached ones, and `produce(indices)` (a list of Generation, one per
    index) for the rest, logged at once. The transformers path keeps its own batch-by-batch use of the same log
    (generate.generate), since there a batch's composition can move an answer's last digits."""
    if log is None:
        return produce(list(range(len(keys))))
    results: list[Generation | None] = [log.answered.get(k) or log.get(k) for k in keys]
    todo = [i for i, g in enumerate(results) if g is None]
    if todo:
        for i, g in zip(todo, produce(todo)):
            results[i] = g
    log.put(list(zip(keys, results)))
    log.answered.update(zip(keys, results))
    return results  # type: ignore[return-value]
