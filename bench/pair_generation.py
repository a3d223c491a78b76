"""Training pairs written from coffee's documents, as a task with no train.jsonl gets them: the time to write
the questions on this machine, and how many candidates each filter keeps, for each candidate rule.

    .venv/bin/python bench/pair_generation.py [--task coffee] [--out kept.jsonl]

No question cache is used (every question is written and timed); the retrieval index is cached as in a run.
The kept pairs of the default rule are written to --out, for reading by hand."""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

from harness.config import PairGenerationConfig
from harness.retrieval.registry import build_retriever
from harness.inference.models import load_embedder, load_generator, resolve_model
from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL
from harness.pairs.writer import QuestionWriter
from harness.task.registry import find_task
from harness.task.types import Knowledge
from harness.pairs.source import make_pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    task = find_task(args.task, Path("tasks").resolve())
    # As if the task came with documents and test questions only.
    task = dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs), update=Knowledge(task.update.docs))
    source = resolve_model(DEFAULT_MODEL)
    model, tok = load_generator(source)
    embedder = load_embedder(DEFAULT_EMBEDDER)
    cache = Path(tempfile.mkdtemp())
    print(f"cpu: {platform.processor() or platform.machine()}")
    for rule in ("numbers-names", "numbers-names-terms"):
        config = task.config.model_copy(update={"pair_generation": task.config.pair_generation.model_copy(
            update={"candidates": rule})})
        r = config.retrieval
        writer = QuestionWriter(model, tok, source.fingerprint(), [], config.seed, None)
        t = time.perf_counter()
        gen = make_pairs(task, config, writer, DEFAULT_MODEL, lambda docs: build_retriever(
            r.method, embedder, DEFAULT_EMBEDDER, docs, r.chunk_words, r.chunk_overlap, cache))
        total = time.perf_counter() - t
        for part in gen.parts:
            left = part.left
            shares = ", ".join(f"{k} {v} ({v / max(1, left['written']):.0%})" for k, v in left.items())
            print(f"{rule} {part.name}: {part.counts['candidates']} candidates from {part.counts['chunks']} chunks; "
                  f"writing {part.seconds:.1f} s; left after: {shares}")
        print(f"{rule}: {total:.1f} s in all (index and filters included)")
        if args.out and rule == PairGenerationConfig.model_fields["candidates"].default:
            with open(args.out, "w") as f:
                for part in gen.parts:
                    for w in part.kept:
                        f.write(json.dumps({"question": w.question, "answer": w.candidate.answer,
                                            "sentence": w.candidate.sentence, "part": part.name}) + "\n")


if __name__ == "__main__":
    main()
