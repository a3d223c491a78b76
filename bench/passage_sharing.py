"""How much prefill sharing retrieved passages between questions could save: a token count, no timing.

`generate` already runs the prefix every prompt shares (instruction, demonstrations) once. What each RAG row
still computes is its own passages and question. Questions that retrieved the same first passage share more:
this counts the prefill tokens (rows x padded width, what a batch computes) of three layouts.
    .venv/bin/python bench/passage_sharing.py --task coffee --questions 48

* now: sorted by length, batches of `generation.batch_size`, each row's whole suffix;
* grouped: prompts sharing a stretch of at least 16 tokens past the common prefix (a first passage) compute it
  once per group, then each row its rest, batched by that rest's length;
* ideal: every distinct token prefix once (a trie), with no padding at all: a bound no batching reaches.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import harness  # noqa: F401  (sets the OpenMP spin count before torch loads)

from harness.task.demo_pool import demo_pool
from harness.inference.generate import common_prefix, render
from harness.inference.models import (DEFAULT_EMBEDDER, DEFAULT_MODEL, load_embedder, load_generator, resolve_embedder,
                            resolve_model)
from harness.arms.catalog import full_format
from harness.arms.pipeline import Shared, make_pipeline
from harness.task.registry import find_task, tasks_dir

MIN_SHARED = 16


def padded(widths: list[int], batch: int) -> int:
    widths = sorted(widths)
    return sum(len(widths[s:s + batch]) * max(widths[s:s + batch]) for s in range(0, len(widths), batch))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--questions", type=int, default=48)
    ap.add_argument("--demo-format", default="2x1",
                    help="demonstrations x passages each [x passages for the question]")
    args = ap.parse_args()
    task = find_task(args.task, tasks_dir())
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    shared = Shared(model, tok, load_embedder(resolve_embedder(DEFAULT_EMBEDDER)), task.config, DEFAULT_MODEL,
                    Path(tempfile.mkdtemp()), embedder_id=DEFAULT_EMBEDDER)
    pipe = make_pipeline("rag", shared)
    pipe.demo_format = full_format([int(x) for x in args.demo_format.split("x")], task.config.retrieval.top_k)
    pipe.build(task.knowledge, demo_pool(task.knowledge.pairs, task.test))
    questions = [q.question for q in task.test][: args.questions]
    found = pipe.index.search(questions, pipe.top_k)
    ids = [tok(render(tok, pipe.prompt(q, p)), add_special_tokens=False).input_ids for q, p in zip(questions, found)]
    shared_len = common_prefix(ids)
    suffixes = sorted(s[shared_len:] for s in ids)
    batch = task.config.generation.batch_size

    now = padded([len(s) for s in suffixes], batch)
    groups = [[suffixes[0]]]
    for s in suffixes[1:]:
        if common_prefix([groups[-1][-1], s]) >= MIN_SHARED:
            groups[-1].append(s)
        else:
            groups.append([s])
    group_lens, rests = [], []
    for g in groups:
        n = common_prefix(g) if len(g) > 1 else 0
        group_lens += [n] if n else []
        rests += [len(s) - n for s in g]
    grouped = padded(group_lens, batch) + padded(rests, batch)
    ideal = len({tuple(s[:k]) for s in suffixes for k in range(1, len(s) + 1)})
    print(f"{len(ids)} rag prompts, {shared_len} tokens shared by all, {sum(map(len, suffixes))} suffix tokens; "
          f"{len(group_lens)} groups share a first passage")
    for name, n in (("now", now), ("grouped", grouped), ("ideal (trie)", ideal)):
        print(f"{name:13s} {n:7d} prefill tokens  ({now / n:.2f}x fewer than now)")


if __name__ == "__main__":
    main()
