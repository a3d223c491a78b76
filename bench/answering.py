"""Answering throughput: the harness's batched path vs the naive one-question-at-a-time loop.

Same model, same prompts, greedy; checks the outputs are identical and prints the speed ratio.
    .venv/bin/python bench/answering.py --task coffee --questions 48
    .venv/bin/python bench/answering.py --task coffee --questions 48 --arm rag   # passages in every prompt

`--phases` times a retrieving arm over a whole run's three phases instead (runner.py: every test question; the
fresh ones after the update's documents arrive; every question after the rebuild), the harness through the
pipeline's own `answer` (a prompt the run already asked keeps its first answer) and the naive loop on every
prompt of every phase:
    .venv/bin/python bench/answering.py --task coffee --arm rag --phases

The questions are cut into the batches `generate` forms (sorted by prompt length, `--batch-size` each, or more
for short prompts up to `--batch-tokens`) and every batch is timed on both sides back to back, alternating which
side goes first, so that load from other jobs on a shared machine falls on both sides alike. Each batch is one
`generate` call, as a pipeline answering that many questions makes: it pays for its own shared-prefix pass.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # noqa: F401  (first: it sets the OpenMP spin count before torch loads, as the harness runs)
import torch

import harness.inference.generate as hgen
from harness.inference.generate import generate, render
from harness.task.demo_pool import demo_pool
from harness.inference.models import (DEFAULT_EMBEDDER, DEFAULT_MODEL, load_embedder, load_generator, resolve_embedder,
                            resolve_model)
from harness.arms.catalog import full_format
from harness.arms.pipeline import Shared, make_pipeline
from harness.task.registry import find_task, tasks_dir


def naive(model, tokenizer, prompts, max_new_tokens: int) -> list[str]:
    """What a tutorial writes: one generate call per question, no batching."""
    out = []
    for messages in prompts:
        enc = tokenizer(render(tokenizer, messages), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        out.append(tokenizer.decode(seq[0, enc.input_ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def plain_batched(model, tokenizer, prompts, max_new_tokens: int, batch_size: int):
    """The harness path before the shared-prefix loop: `model.generate` on left-padded batches."""
    return generate(model, tokenizer, prompts, max_new_tokens, batch_size, own_loop=False)


def phases(pipe, task, model, tok, max_new_tokens: int) -> None:
    """The run's three phases for one retrieving arm, each timed on both sides (alternating which goes first)."""
    everything = task.knowledge + task.update
    steps = [("main", task.test, None),
             ("no rebuild", task.fresh, lambda: pipe.add_documents(task.update.docs)),
             ("rebuilt", task.test,
              lambda: pipe.rebuild(everything, demo_pool(everything.pairs, task.test), task.update))]
    total = {"naive": 0.0, "harness": 0.0}
    same = count = computed = 0
    for k, (name, qs, before) in enumerate(steps):
        if before:
            before()
        questions = [q.question for q in qs]
        found = pipe.index.search(questions, task.config.retrieval.top_k)
        prompts = [pipe.prompt(q, p) for q, p in zip(questions, found)]
        sides = {"naive": lambda: naive(model, tok, prompts, max_new_tokens),
                 "harness": lambda: [a.text for a in pipe.answer(questions)]}
        known = len(pipe.shared.log.answered)
        seconds, answers = {}, {}
        for side in (list(sides) if k % 2 == 0 else list(sides)[::-1]):
            t = time.perf_counter()
            answers[side] = sides[side]()
            seconds[side] = time.perf_counter() - t
            total[side] += seconds[side]
        new = len(pipe.shared.log.answered) - known
        equal = sum(a == b for a, b in zip(answers["naive"], answers["harness"]))
        same, count, computed = same + equal, count + len(prompts), computed + new
        print(f"{name:10s} {len(prompts):4d} prompts, {new:4d} computed by the harness: "
              f"naive {seconds['naive']:6.1f} s, harness {seconds['harness']:6.1f} s "
              f"({seconds['naive'] / seconds['harness']:.2f}x); identical {equal}/{len(prompts)}", flush=True)
    print(f"whole run  {count:4d} prompts, {computed:4d} computed by the harness: naive {total['naive']:6.1f} s, "
          f"harness {total['harness']:6.1f} s, speed-up {total['naive'] / total['harness']:.2f}x; identical "
          f"answers {same}/{count}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the task's generation.batch_size")
    ap.add_argument("--batch-tokens", type=int, default=None,
                    help="default: the task's generation.batch_tokens (0: every batch --batch-size questions)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--arm", default="prompt", help="which arm's prompts: prompt (few-shot) or rag (passages)")
    ap.add_argument("--demo-format", default="2x1",
                    help="for a rag arm: demonstrations x passages each [x passages for the question], fixed "
                         "instead of chosen on training pairs (2x1 is what the coffee run chose)")
    ap.add_argument("--plain-batched", action="store_true",
                    help="also time the previous harness path (model.generate on left-padded batches)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="weights' precision, the same on both sides (default float32)")
    ap.add_argument("--phases", action="store_true",
                    help="a retrieving arm over a run's three phases, every test question (--questions ignored)")
    ap.add_argument("--busy", action="store_true", help="run beside one competing busy process (a shared machine)")
    ap.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the naive loop (--no-naive: the harness path alone, e.g. quiet vs --busy)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = find_task(args.task, tasks_dir())
    model, tok = load_generator(resolve_model(DEFAULT_MODEL), dtype=args.dtype)
    embedder = load_embedder(resolve_embedder(DEFAULT_EMBEDDER))
    shared = Shared(model, tok, embedder, task.config, DEFAULT_MODEL, Path(tempfile.mkdtemp()),
                    embedder_id=DEFAULT_EMBEDDER)
    pipe = make_pipeline(args.arm, shared)
    if pipe.retrieves:
        # fixed, skipping the choice (minutes)
        pipe.demo_format = full_format([int(x) for x in args.demo_format.split("x")], task.config.retrieval.top_k)
    pipe.build(task.knowledge, demo_pool(task.knowledge.pairs, task.test))
    gen = task.config.generation
    if args.phases:
        naive(model, tok, [pipe.prompt("warm-up?", [])], 2)  # first-call costs belong to neither side
        return phases(pipe, task, model, tok, gen.max_new_tokens)
    questions = [q.question for q in task.test][: args.questions]
    found = pipe.index.search(questions, task.config.retrieval.top_k) if pipe.retrieves else [[]] * len(questions)
    prompts = [pipe.prompt(q, p) for q, p in zip(questions, found)]
    bs = args.batch_size or gen.batch_size
    bt = gen.batch_tokens if args.batch_tokens is None else args.batch_tokens

    ids = [tok(render(tok, m), add_special_tokens=False).input_ids for m in prompts]
    lengths = [len(i) for i in ids]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # the order `generate` batches in
    shared_len = hgen.common_prefix(ids)
    cuts = hgen.batch_ranges([lengths[i] - shared_len for i in order], bs, gen.max_new_tokens, bt)
    batches = [[prompts[i] for i in order[r.start:r.stop]] for r in cuts]
    naive(model, tok, prompts[:1], 2)  # warm-up, untimed: first-call costs belong to neither side

    sides = {"naive": naive} if args.naive else {}
    sides["harness"] = lambda m, t, p, n: generate(m, t, p, n, bs, batch_tokens=bt)
    if args.plain_batched:
        sides["plain"] = lambda m, t, p, n: plain_batched(m, t, p, n, bs)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    seconds = dict.fromkeys(sides, 0.0)
    answers: dict[str, list] = {name: [] for name in sides}
    for k, batch in enumerate(batches):
        names = list(sides)[k % len(sides):] + list(sides)[:k % len(sides)]  # rotate who goes first
        for name in names:
            t = time.perf_counter()
            answers[name] += sides[name](model, tok, batch, gen.max_new_tokens)
            seconds[name] += time.perf_counter() - t

    if busy is not None:
        busy.kill()
    if not args.naive:
        n = sum(g.new_tokens for g in answers["harness"])
        print(f"arm {args.arm}, {len(prompts)} questions, batches of {[len(b) for b in batches]}, "
              f"torch threads {torch.get_num_threads()}"
              + (", one competing busy process" if args.busy else ", quiet") +
              f": harness path {seconds['harness']:.1f} s ({n / seconds['harness']:.1f} generated tokens/s)")
        return
    fast, slow = answers["harness"], answers["naive"]
    same = sum(f.text == s for f, s in zip(fast, slow))
    new_tokens = sum(f.new_tokens for f in fast)
    print(f"arm {args.arm}, questions: {len(prompts)}, mean prompt {sum(lengths) / len(lengths):.0f} tokens, "
          f"shared prefix {shared_len} tokens, max_new_tokens {gen.max_new_tokens}, "
          f"batches of {[len(b) for b in batches]}, "
          f"torch threads {torch.get_num_threads()}, {new_tokens} generated tokens")
    print(f"naive loop:   {seconds['naive']:7.1f} s  {new_tokens / seconds['naive']:6.1f} generated tokens/s")
    if args.plain_batched:
        plain_same = sum(p.text == s for p, s in zip(answers["plain"], slow))
        print(f"plain batched:{seconds['plain']:7.1f} s  {new_tokens / seconds['plain']:6.1f} generated tokens/s"
              f"  ({seconds['naive'] / seconds['plain']:.2f}x; identical {plain_same}/{len(prompts)})")
    print(f"harness path: {seconds['harness']:7.1f} s  {new_tokens / seconds['harness']:6.1f} generated tokens/s")
    print(f"speed-up: {seconds['naive'] / seconds['harness']:.2f}x; identical answers: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
