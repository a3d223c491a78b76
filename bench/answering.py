"""Answering throughput: the harness's batched path vs the naive one-question-at-a-time loop.

Same model, same prompts, greedy; checks the outputs are identical and prints the speed ratio.
    .venv/bin/python bench/answering.py --task coffee --questions 64
"""
from __future__ import annotations

import argparse
import time

import torch

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the task's generation.batch_size")
    args = ap.parse_args()
    task = find_task(args.task, tasks_dir())
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    shared = Shared(model, tok, None, task.config, DEFAULT_MODEL, None)
    pipe = PromptPipeline(shared)
    pipe.build(task.knowledge)
    questions = [q.question for q in task.test][: args.questions]
    prompts = [pipe.messages(q, []) for q in questions]
    gen = task.config.generation
    bs = args.batch_size or gen.batch_size

    t = time.perf_counter()
    fast = generate(model, tok, prompts, gen.max_new_tokens, bs)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = naive(model, tok, prompts, gen.max_new_tokens)
    t_slow = time.perf_counter() - t

    same = sum(f.text == s for f, s in zip(fast, slow))
    new_tokens = sum(f.new_tokens for f in fast)
    print(f"questions: {len(prompts)}, max_new_tokens {gen.max_new_tokens}, batch {bs}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"naive loop:   {t_slow:7.1f} s  {new_tokens / t_slow:6.1f} generated tokens/s")
    print(f"harness path: {t_fast:7.1f} s  {new_tokens / t_fast:6.1f} generated tokens/s")
    print(f"speed-up: {t_slow / t_fast:.2f}x; identical answers: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
