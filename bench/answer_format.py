"""The fine-tune arm's format: the model's chat template against plain "Question: ...\\nAnswer: ..." lines.

Trains (or finds in the cache) the qa adapter for each format on the task's training pairs, with the task's
recipe and any `--set finetune.KEY=VALUE` overrides per format, and prints per format: tokens per example,
training seconds per epoch, epochs run, the Trainer's best eval loss, and a loss the formats share. The Trainer's
eval loss is not comparable across formats: it averages over every labelled token, and the chat format labels
two near-certain end tokens (`<|im_end|>` and a line break) where plain labels one. So the held-out pairs (the
same ones for both: same seed, same count) are also scored on the answer's own tokens only.

    .venv/bin/python bench/answer_format.py --task coffee
    .venv/bin/python bench/answer_format.py --task coffee --set plain:finetune.learning_rate=2e-3 \\
        --set plain:finetune.epochs=3
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.config import ArmConfig, TaskConfig  # noqa: E402
from harness.arms.finetune import eval_split, labelled_loss, load_merged, train_adapter  # noqa: E402
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model, stop_token_ids  # noqa: E402
from harness.arms.pipeline import arm_qa_examples  # noqa: E402
from harness.run.sweep import sweep_points  # noqa: E402
from harness.task.folder import load_task  # noqa: E402
from harness.arms.training_data import IGNORE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {"chat": ArmConfig(weights="qa-lora"),
           "plain": ArmConfig(weights="qa-lora", format="plain", instruction=False)}


def recipe(config: TaskConfig, fmt: str, sets: list[str]) -> TaskConfig:
    """The task's config with this format's overrides, checked as `--sweep` checks them."""
    mine = [spec.rpartition(":")[2] for spec in sets if spec.rpartition(":")[0] in ("", fmt)]
    return sweep_points(config, mine)[0][1] if mine else config


@torch.no_grad()
def answer_token_loss(model, examples: list[dict], ends: set[int]) -> float:
    """Mean cross-entropy over the answers' own tokens: labelled, and not an end-of-answer token."""
    total, count = 0.0, 0
    for e in examples:
        labels = torch.tensor([[x if x not in ends else IGNORE for x in e["labels"]]])
        ids = torch.tensor([e["input_ids"]])
        t, n, _ = labelled_loss(model, ids, torch.ones_like(ids), labels)
        total, count = total + t.item(), count + int(n)
    return total / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--set", action="append", default=[], metavar="[FORMAT:]SECTION.KEY=VALUE",
                    help="a recipe override, for one format (plain:...) or both")
    ap.add_argument("--cache-dir", default=str(ROOT / ".harness-cache"),
                    help="adapter cache (default: the project's, so adapters a run trained are reused)")
    args = ap.parse_args()
    task = load_task(ROOT / "tasks" / args.task)
    source = resolve_model(DEFAULT_MODEL)
    model, tok = load_generator(source)
    ends = stop_token_ids(model, tok, line_breaks=True)
    print(f"| format | recipe | tokens / example | train s / epoch | epochs | train s | Trainer eval loss | "
          f"answer-token loss, {round(task.config.finetune.eval_fraction * len(task.knowledge.pairs))} held-out pairs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for fmt, arm in FORMATS.items():
        cfg = recipe(task.config, fmt, args.set)
        examples = arm_qa_examples(arm, cfg, tok, task.knowledge.pairs)
        a = train_adapter(model, tok, examples, cfg.finetune, cfg.seed, Path(args.cache_dir), source.fingerprint(),
                          "qa")
        # The Trainer's own split: same seed and size, so both formats hold out the same pairs.
        held = eval_split(examples, cfg.finetune, cfg.seed)
        merged = load_merged(model, a)
        loss = answer_token_loss(merged, list(held["test"]), ends)
        f = cfg.finetune
        print(f"| {fmt} | lr {f.learning_rate:g}, {f.epochs} epochs | "
              f"{statistics.mean(len(e['input_ids']) for e in examples):.1f} | {a.train_seconds / a.epochs_run:.1f} | "
              f"{a.epochs_run:g} | {a.train_seconds:.0f} | {a.best_eval_loss:.3f} | {loss:.3f} |", flush=True)


if __name__ == "__main__":
    main()
