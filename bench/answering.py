"""Answering throughput: the harness's batched path vs the naive one-question-at-a-time loop.

Same model, same prompts, greedy; checks the outputs are identical and prints the speed ratio.
    .venv/bin/python bench/answering.py --task coffee --questions 48

The questions are cut into the batches `generate` forms (sorted by prompt length, `--batch-size` each) and every
batch is timed on both sides back to back, alternating which side goes first, so that load from other jobs on a
shared machine falls on both sides alike. Each batch is one `generate` call, as a pipeline answering that many
questions makes: it pays for its own shared-prefix pass.
"""
from __future__ import annotations

import argparse
import time

import torch

import harness.generate as hgen
from harness.generate import generate, render
from harness.models import DEFAULT_MODEL, load_generator, resolve_model
from harness.pipelines import PromptPipeline, Shared
from harness.registry import find_task, tasks_dir


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
    own = hgen._own_loop_ok
    hgen._own_loop_ok = lambda model: False
    try:
        return generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    finally:
        hgen._own_loop_ok = own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the task's generation.batch_size")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--plain-batched", action="store_true",
                    help="also time the previous harness path (model.generate on left-padded batches)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = find_task(args.task, tasks_dir())
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    shared = Shared(model, tok, None, task.config, DEFAULT_MODEL, None)
    pipe = PromptPipeline(shared)
    pipe.build(task.knowledge)
    questions = [q.question for q in task.test][: args.questions]
    prompts = [pipe.messages(q, []) for q in questions]
    gen = task.config.generation
    bs = args.batch_size or gen.batch_size

    lengths = [len(tok(render(tok, m), add_special_tokens=False).input_ids) for m in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # the order `generate` batches in
    batches = [[prompts[i] for i in order[s:s + bs]] for s in range(0, len(order), bs)]
    naive(model, tok, prompts[:1], 2)  # warm-up, untimed: first-call costs belong to neither side

    sides = {"naive": naive, "harness": lambda m, t, p, n: generate(m, t, p, n, bs)}
    if args.plain_batched:
        sides["plain"] = lambda m, t, p, n: plain_batched(m, t, p, n, bs)
    seconds = dict.fromkeys(sides, 0.0)
    answers: dict[str, list] = {name: [] for name in sides}
    for k, batch in enumerate(batches):
        names = list(sides)[k % len(sides):] + list(sides)[:k % len(sides)]  # rotate who goes first
        for name in names:
            t = time.perf_counter()
            answers[name] += sides[name](model, tok, batch, gen.max_new_tokens)
            seconds[name] += time.perf_counter() - t

    fast, slow = answers["harness"], answers["naive"]
    same = sum(f.text == s for f, s in zip(fast, slow))
    new_tokens = sum(f.new_tokens for f in fast)
    print(f"questions: {len(prompts)}, max_new_tokens {gen.max_new_tokens}, batch {bs}, "
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
