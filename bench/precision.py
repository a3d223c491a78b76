"""bfloat16 against float32 for the fine-tune arm: training time, eval loss, and the loss it answers with.

Trains (or finds in the cache) the task's default finetune adapter once per precision, with the same recipe,
seed and split, and prints per precision: seconds per epoch, epochs run, the Trainer's best eval loss, and the
answer-token loss on the held-out training pairs three ways: the adapter merged into weights of its own precision,
the adapter kept beside them (peft's unmerged forward), and the adapter merged into float32 weights (how the
harness answers: `--dtype auto` trains on a bf16 copy where precision.py finds it fast and faithful, and answers
in float32). Merging a float32 LoRA delta into bf16 weights rounds it to bf16's 8-bit mantissa, so the first two
numbers differ if the rounding loses what was learned.

    .venv/bin/python bench/precision.py --task coffee
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import peft

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.answer_format import answer_token_loss  # noqa: E402
from harness.arms import arms  # noqa: E402
from harness.finetune import eval_split, load_merged, train_adapter  # noqa: E402
from harness.models import DEFAULT_MODEL, load_generator, resolve_model, stop_token_ids  # noqa: E402
from harness.pipelines import arm_qa_examples  # noqa: E402
from harness.precision import matmul_speeds  # noqa: E402
from harness.task import load_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--cache-dir", default=str(ROOT / ".harness-cache"),
                    help="adapter cache (default: the project's, so adapters a run trained are reused)")
    args = ap.parse_args()
    task = load_task(ROOT / "tasks" / args.task)
    config = task.config
    source = resolve_model(DEFAULT_MODEL)
    fast, slow = matmul_speeds()
    print(f"matrix products on this CPU: bf16 {fast:.0f} GFLOP/s, float32 {slow:.0f} GFLOP/s ({fast / slow:.1f}x)\n")
    print("| precision | train s / epoch | epochs | train s | Trainer eval loss | answer-token loss, held-out: "
          "merged | unmerged | merged into float32 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    full, _ = load_generator(source, dtype="float32")
    for dtype in ("float32", "bfloat16"):
        model, tok = load_generator(source, dtype=dtype)
        ends = stop_token_ids(model, tok, line_breaks=True)
        examples = arm_qa_examples(arms(config)["finetune"], config, tok, task.knowledge.pairs)
        a = train_adapter(model, tok, examples, config.finetune, config.seed, Path(args.cache_dir),
                          source.fingerprint(), "qa")
        held = list(eval_split(examples, config.finetune, config.seed)["test"])
        merged = answer_token_loss(load_merged(model, a), held, ends)
        beside = peft.PeftModel.from_pretrained(copy.deepcopy(model), str(a.path)).eval()
        unmerged = answer_token_loss(beside, held, ends)
        into32 = answer_token_loss(load_merged(full, a), held, ends)
        print(f"| {dtype} | {a.train_seconds / a.epochs_run:.1f} | {a.epochs_run:g} | {a.train_seconds:.0f} | "
              f"{a.best_eval_loss:.4f} | {merged:.4f} | {unmerged:.4f} | {into32:.4f} |", flush=True)
        del model, beside  # one bf16 or float32 copy at a time beside `full`


if __name__ == "__main__":
    main()
