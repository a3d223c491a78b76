"""Peak memory, time and held-out loss of one trained arm's adapter on a task, by micro-batch budget and LoRA layers.

Each variant runs in its own process (this script calls itself), so the peak resident memory is that variant's
alone: the model load, the bf16 training copy where precision.py takes one, the retriever for RAFT, and training.
It trains the arm's real recipe from the task's config (finetune, raft or cpt), in a throwaway cache, with
`finetune.micro_batch_tokens` and `finetune.lora_layers` overridden, optionally on the first N examples and for
fewer epochs, and prints one line per variant: rows computed at once, seconds, peak MB, the eval losses per epoch.

    .venv/bin/python bench/training_memory.py --arm raft --examples 48 --epochs 1 --micro 0,1024,512
    .venv/bin/python bench/training_memory.py --arm finetune --layers 1.0,0.5
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(task_name: str, arm: str, micro: int, layers: float, examples: int, epochs: int) -> None:
    from harness.arms.finetune import train_adapter
    from harness.measure import Measured
    from harness.arms.pipeline import make_pipeline
    from trained_arm import load_shared
    from harness.task.registry import tasks_dir
    from harness.task.folder import load_task

    task = load_task(tasks_dir(None) / task_name)
    ft = task.config.finetune.model_copy(update={"micro_batch_tokens": micro, "lora_layers": layers})
    cfg = task.config.model_copy(update={"finetune": ft})
    shared, precision = load_shared(task, cfg)
    tok, src_id = shared.tokenizer, shared.model_id
    pipe = make_pipeline(arm, shared)
    # The pipeline's own rows and settings (RAFT's from its own retriever), so the bench trains what the arm trains.
    training, rows = pipe.training_set(task.knowledge)
    recipe = training.settings(cfg)
    rows = rows[:examples] if examples else rows
    recipe = recipe.model_copy(update={"epochs": epochs}) if epochs else recipe
    with Measured() as m:
        a = train_adapter(shared.training_base, tok, rows, recipe, cfg.seed, shared.cache_dir, src_id,
                          training.kind)
    evals = [round(h["eval_loss"], 4) for h in a.log_history if "eval_loss" in h]
    print(f"RESULT arm={arm} micro_batch_tokens={micro} lora_layers={layers} training={precision.dtype} "
          f"examples={len(rows)} rows_at_once={a.micro_batch} seconds={a.train_seconds:.1f} peak_mb={m.peak_mb:.0f} "
          f"best_eval={a.best_eval_loss:.4f} evals={evals}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--arm", default="raft")
    ap.add_argument("--micro", default="512", help="comma-separated finetune.micro_batch_tokens values")
    ap.add_argument("--layers", default="1.0", help="comma-separated finetune.lora_layers values")
    ap.add_argument("--examples", type=int, default=0, help="first N training rows only (0: all)")
    ap.add_argument("--epochs", type=int, default=0, help="epochs (0: the recipe's)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return one(a.task, a.arm, int(a.micro), float(a.layers), a.examples, a.epochs)
    for micro in a.micro.split(","):
        for layers in a.layers.split(","):
            cmd = [sys.executable, __file__, "--one", "--task", a.task, "--arm", a.arm, "--micro", micro,
                   "--layers", layers, "--examples", str(a.examples), "--epochs", str(a.epochs)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            print(next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), out.stderr[-800:]), flush=True)


if __name__ == "__main__":
    main()
