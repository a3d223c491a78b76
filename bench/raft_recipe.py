"""A trained arm's recipe, chosen on held-out training pairs: training time, peak memory and held-out accuracy per
variant. RAFT's by default; `--arm cpt` or `--arm finetune` (their section's epochs and learning rate; the
max_examples field is ignored), `--arm rag` (nothing trained; with `--chunking`, the index's chunk size).
`--top-k` sets how many passages every retrieving prompt holds, in training and in asking alike.

Each variant trains the arm on the task's real recipe with some of its settings overridden, in its own process (so
the peak RSS is that variant's alone) and a throwaway adapter cache. It then asks the trained arm, exactly as a
run asks it, training pairs that no variant's RAFT sample holds: never test. So variants that train on different
samples are scored on the same questions. cpt's demonstrations come from the pairs outside the held-out ones;
finetune trains on every pair outside its eval split, the held-out ones included, so only its eval loss compares.

    .venv/bin/python bench/raft_recipe.py --variants "128,2,5e-4,1.0;64,2,1e-3,0.5" --held-out 48
    .venv/bin/python bench/raft_recipe.py --arm cpt --variants "0,4,1e-3,1.0;0,2,2e-3,1.0" --sizes 64,128
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out(pairs: list, sizes: list[int], seed: int, n: int) -> list:
    """Pairs outside every sample `_raft_examples` would draw for these max_examples values."""
    used = set()
    for k in sizes:
        used |= set(random.Random(seed).sample(pairs, k) if len(pairs) > k else pairs)
    rest = [p for p in pairs if p not in used]
    return random.Random(seed + 7).sample(rest, min(n, len(rest)))


def one(task_name: str, arm: str, variant: str, sizes: list[int], n_held: int, chunking: str, top_k: int) -> None:
    from harness.arms.pipeline import make_pipeline
    from trained_arm import load_shared
    from harness.measure import Measured
    from harness.metrics import score
    from harness.task.demo_pool import demo_pool
    from harness.task.folder import load_task
    from harness.task.registry import tasks_dir

    examples, epochs, lr, layers = variant.split(",")
    task = load_task(tasks_dir(None) / task_name)
    c = task.config
    own = {"epochs": int(epochs), "learning_rate": float(lr)}
    cfg = c.model_copy(update={
        "raft": c.raft.model_copy(update={"max_examples": int(examples), **own}) if arm == "raft" else c.raft,
        "cpt": c.cpt.model_copy(update=own) if arm == "cpt" else c.cpt,
        "finetune": c.finetune.model_copy(update={"lora_layers": float(layers),
                                                  **(own if arm == "finetune" else {})})})
    if chunking:
        words, overlap = map(int, chunking.split(","))
        cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(
            update={"chunk_words": words, "chunk_overlap": overlap})})
    if top_k:
        cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"top_k": top_k})})
    shared, precision = load_shared(task, cfg)
    pipe = make_pipeline(arm, shared)
    held = held_out(list(task.knowledge.pairs), sizes, cfg.seed, n_held)
    shown = [p for p in task.knowledge.pairs if p not in set(held)]
    with Measured() as m:
        pipe.build(task.knowledge, demo_pool(shown, task.test))
    a = pipe.adapter or argparse.Namespace(train_seconds=0.0, train_tokens=0, best_eval_loss=float("nan"))
    t = time.perf_counter()
    answers = pipe.answer([p.question for p in held], desc="held-out pairs")
    answer_s = time.perf_counter() - t
    acc = sum(score(x.text, (p.answer,))[cfg.metric] for x, p in zip(answers, held)) / len(held)
    prompt = sum(x.prompt_tokens for x in answers) / len(answers)
    print(f"RESULT arm={arm} chunking={cfg.retrieval.chunk_words},{cfg.retrieval.chunk_overlap} "
          f"top_k={cfg.retrieval.top_k} "
          f"examples={examples} epochs={epochs} lr={lr} lora_layers={layers} training={precision.dtype} "
          f"train_s={a.train_seconds:.1f} train_tokens={a.train_tokens} peak_mb={m.peak_mb:.0f} "
          f"best_eval={a.best_eval_loss:.4f} held_out={len(held)} {cfg.metric}={acc:.3f} answer_s={answer_s:.1f} "
          f"prompt_tokens={prompt:.0f} demo_format={pipe.demo_format}",
          flush=True)


def main() -> None:
    from trained_arm import each_variant, variant_parser

    ap = variant_parser(__doc__, ["raft", "cpt", "rag", "finetune"], "raft")
    ap.add_argument("--chunking", default="", help="'words,overlap': retrieval.chunk_words and chunk_overlap for "
                    "every variant (default: the task's; rag varies only this)")
    ap.add_argument("--top-k", type=int, default=0, help="retrieval.top_k for every variant: the passages a RAFT "
                    "example trains on and every retrieving prompt holds (default: the task's)")
    ap.add_argument("--variants", default="128,2,5e-4,1.0;128,2,5e-4,0.5;64,2,1e-3,0.5",
                    help="';'-separated max_examples,epochs,learning_rate,lora_layers")
    ap.add_argument("--held-out", type=int, default=48, help="training pairs outside every variant's sample")
    ap.add_argument("--sizes", default="", help="comma-separated max_examples whose samples the held-out pairs "
                    "avoid (default: the variants'); keep it fixed to compare across invocations")
    a = ap.parse_args()
    variants = a.variants.split(";")
    sizes = sorted({int(x) for x in a.sizes.split(",")} if a.sizes else {int(v.split(",")[0]) for v in variants})
    if a.one:
        return one(a.task, a.arm, a.one, sizes, a.held_out, a.chunking, a.top_k)
    each_variant(__file__, ["--task", a.task, "--arm", a.arm, "--variants", a.variants, "--held-out",
                            str(a.held_out), "--chunking", a.chunking, "--top-k", str(a.top_k),
                            "--sizes", ",".join(map(str, sizes))], variants)

if __name__ == "__main__":
    main()
