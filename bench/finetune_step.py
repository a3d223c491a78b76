"""Fine-tuning step time and peak memory for the default LoRA recipe, and the CPU knobs that move them.

Each variant trains the task's LoRA (same rank, targets, batch, learning rate as `harness/finetune.py`) for a
fixed number of optimiser steps in its own process, so peak memory is that variant's alone:

  padded-to-max   every example padded to --max-length (what a tutorial's tokenizer(padding="max_length") does)
  dynamic         padded to the longest example in each batch (the harness: DataCollatorForSeq2Seq)
  dynamic+grouped dynamic, plus Trainer's train_sampling_strategy="group_by_length" (similar lengths together)
  dynamic, 1 thread   the harness's collator with torch limited to one thread
  dynamic, OMP passive  OMP_WAIT_POLICY=PASSIVE: idle threads sleep instead of spinning
  full logits, spin 300000   the Trainer's own loss (logits at every position), libgomp's default spin
  labelled logits, spin 300000   `LabelledOnlyTrainer` (logits only where labels are), default spin
  labelled logits, spin 10000    the harness as it runs: labelled logits and `GOMP_SPINCOUNT=10000`

`--busy` starts one competing single-threaded busy process for the whole measurement (a shared machine).
`--only "a;b"` runs the named variants only.

    .venv/bin/python bench/finetune_step.py --task coffee --steps 12
    .venv/bin/python bench/finetune_step.py --steps 12 --only "full logits, spin 300000;labelled logits, spin 10000"
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

VARIANTS = {
    "padded-to-max": {"padding": "max_length", "sampling": "random", "threads": None},
    "dynamic": {"padding": True, "sampling": "random", "threads": None},
    "dynamic+grouped": {"padding": True, "sampling": "group_by_length", "threads": None},
    "dynamic, 1 thread": {"padding": True, "sampling": "random", "threads": 1},
    "dynamic, OMP passive": {"padding": True, "sampling": "random", "threads": None,
                             "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "full logits, spin 300000": {"padding": True, "sampling": "random", "threads": None,
                                 "env": {"GOMP_SPINCOUNT": "300000"}},
    "labelled logits, spin 300000": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                                     "env": {"GOMP_SPINCOUNT": "300000"}},
    "labelled logits, spin 10000": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                                    "env": {"GOMP_SPINCOUNT": "10000"}},
}
# Older variants ran before the harness set a spin count; they keep libgomp's default for comparability.
for _v in VARIANTS.values():
    _v.setdefault("env", {}).setdefault("GOMP_SPINCOUNT", "300000")


def one(task_name: str, variant: str, steps: int, max_length: int) -> dict:
    import peft
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from harness.finetune import LabelledOnlyTrainer
    from harness.training_data import qa_examples
    from harness.measure import Measured
    from harness.models import DEFAULT_MODEL, load_generator, resolve_model
    from harness.registry import find_task, tasks_dir

    v = VARIANTS[variant]
    if v["threads"]:
        torch.set_num_threads(v["threads"])
    task = find_task(task_name, tasks_dir())
    cfg = task.config.finetune
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    rows = qa_examples(tok, task.knowledge.pairs, task.config.prompt.system)
    data = Dataset.from_list(rows)
    tok.padding_side = "right"
    collator = DataCollatorForSeq2Seq(tok, padding=v["padding"], max_length=max_length if v["padding"] ==
                                      "max_length" else None, label_pad_token_id=-100)
    model = peft.get_peft_model(model, peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                                       lora_dropout=cfg.lora_dropout,
                                                       target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    times: list[float] = []
    seen = {"real": 0, "padded": 0}

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    def counting(features):
        batch = collator(features)
        seen["real"] += int(batch["attention_mask"].sum())
        seen["padded"] += int(batch["attention_mask"].numel())
        return batch

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=cfg.batch_size,
                                 learning_rate=cfg.learning_rate, save_strategy="no", report_to="none",
                                 logging_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
                                 train_sampling_strategy=v["sampling"])
        with Measured() as m:
            trainer_cls = LabelledOnlyTrainer if v.get("labelled") else Trainer
            trainer_cls(model=model, args=args, train_dataset=data, data_collator=counting,
                        callbacks=[Clock()]).train()
    warm = times[2:] or times  # the first steps pay for allocation and thread start-up
    per_step = sum(warm) / len(warm)
    return {"variant": variant, "s_per_step": per_step, "real_tokens_per_s": seen["real"] / sum(times),
            "padding_share": 1 - seen["real"] / seen["padded"], "peak_rss_mb": m.peak_mb,
            "threads": torch.get_num_threads(), "batch": cfg.batch_size, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--max-length", type=int, default=256, help="the padded-to-max variant's length")
    ap.add_argument("--only", default=None, help="semicolon-separated variant names (default: all)")
    ap.add_argument("--busy", action="store_true", help="run beside one competing busy process")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process runs one variant
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.task, args.one, args.steps, args.max_length)))
        return
    chosen = [v.strip() for v in args.only.split(";")] if args.only else list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from: {'; '.join(VARIANTS)}")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    results = []
    for variant in chosen:
        out = subprocess.run([sys.executable, __file__, "--task", args.task, "--steps", str(args.steps),
                              "--max-length", str(args.max_length), "--one", variant],
                             capture_output=True, text=True, check=True,
                             env={**{k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"},
                                  **VARIANTS[variant].get("env", {})})
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{variant}: done", file=sys.stderr, flush=True)
    if busy is not None:
        busy.kill()
    base = results[0]["s_per_step"]
    print(f"\n{args.task}, batch {results[0]['batch']}, {args.steps} steps per variant (first 2 not timed)"
          + (", one competing busy process" if args.busy else ", quiet machine") + "\n")
    print(f"| variant | threads | s/step | vs {results[0]['variant']} | real tokens/s | padding share | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['variant']} | {r['threads']} | {r['s_per_step']:.2f} | {base / r['s_per_step']:.2f}x | "
              f"{r['real_tokens_per_s']:.0f} | {r['padding_share']:.0%} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
