"""The fine-tune arm's training precision and batch layout: time per epoch against held-out loss, over seeds.

Trains (or finds in the cache) the task's default finetune adapter for each of float32 / bfloat16 weights,
padded / flattened batches (harness/arms/batches.py) and LoRA dropout drawn sparsely (harness/arms/dropout.py) or by torch,
with the same recipe, for each seed, and prints per variant the
mean and spread over seeds of: seconds per epoch, epochs run, the Trainer's best eval loss, and the answer-token
loss on the held-out training pairs with the adapter merged into float32 weights (how the harness answers:
`--dtype auto` trains on a bf16 copy where precision.py finds it fast and faithful, and answers in float32).

One seed cannot settle a loss difference of a few percent here: the eval split is 31 pairs, and a different
batch layout draws different LoRA dropout masks, so trajectories part after the first step. Hence seeds.

    .venv/bin/python bench/precision.py --task coffee --seeds 3
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.answer_format import answer_token_loss  # noqa: E402
from harness.arms.catalog import arms  # noqa: E402
from harness.arms.finetune import eval_split, load_merged, train_adapter  # noqa: E402
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model, stop_token_ids  # noqa: E402
from harness.arms.pipeline import arm_qa_examples  # noqa: E402
from harness.arms.precision import matmul_speeds  # noqa: E402
from harness.task.folder import load_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (weights, flattened batches, LoRA dropout drawn sparsely: harness/arms/dropout.py, the default on a CPU)
VARIANTS = {"float32, padded": (torch.float32, False, True), "float32, flattened": (torch.float32, True, True),
            "bfloat16, padded": (torch.bfloat16, False, True), "bfloat16, flattened": (torch.bfloat16, True, True),
            "float32, padded, torch dropout": (torch.float32, False, False),
            "float32, flattened, torch dropout": (torch.float32, True, False),
            "bfloat16, padded, torch dropout": (torch.bfloat16, False, False),
            "bfloat16, flattened, torch dropout": (torch.bfloat16, True, False)}


def _spread(xs: list[float], fmt: str) -> str:
    return f"{statistics.mean(xs):{fmt}}" + (f" ± {statistics.stdev(xs):{fmt}}" if len(xs) > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", default=None, help="semicolon-separated variant names (default: all)")
    ap.add_argument("--cache-dir", default=str(ROOT / ".harness-cache"),
                    help="adapter cache (default: the project's; forced layouts have keys of their own)")
    args = ap.parse_args()
    task = load_task(ROOT / "tasks" / args.task)
    config = task.config
    source = resolve_model(DEFAULT_MODEL)
    fast, slow = matmul_speeds()
    print(f"matrix products on this CPU: bf16 {fast:.0f} GFLOP/s, float32 {slow:.0f} GFLOP/s ({fast / slow:.1f}x); "
          f"seeds {', '.join(str(config.seed + i) for i in range(args.seeds))}; mean ± sd over seeds\n")
    print("| variant | train s / epoch | epochs | Trainer eval loss | answer-token loss, held-out, merged into float32 |")
    print("|---|---:|---:|---:|---:|", flush=True)
    full, tok = load_generator(source, dtype="float32")
    ends = stop_token_ids(full, tok, line_breaks=True)
    examples = arm_qa_examples(arms(config)["finetune"], config, tok, task.knowledge.pairs)
    chosen = [v.strip() for v in args.only.split(";")] if args.only else list(VARIANTS)
    for name in chosen:
        dtype, flatten, sparse = VARIANTS[name]
        base = full if dtype == torch.float32 else copy.deepcopy(full).to(dtype)
        rows = []
        for seed in range(config.seed, config.seed + args.seeds):
            a = train_adapter(base, tok, examples, config.finetune, seed, Path(args.cache_dir), source.fingerprint(),
                              "qa", flatten=flatten, sparse_dropout=sparse)
            held = list(eval_split(examples, config.finetune, seed)["test"])
            rows.append((a.train_seconds / a.epochs_run, a.epochs_run, a.best_eval_loss,
                         answer_token_loss(load_merged(full, a), held, ends)))
        per_epoch, epochs, evals, held_loss = zip(*rows)
        print(f"| {name} | {_spread(per_epoch, '.1f')} | {_spread(epochs, '.1f')} | {_spread(evals, '.3f')} | "
              f"{_spread(held_loss, '.3f')} |", flush=True)
        del base


if __name__ == "__main__":
    main()
