"""Fine-tuning step time and peak memory for the default LoRA recipe, and the CPU knobs that move them.

Each variant trains the task's LoRA (same rank, targets, batch, learning rate as `harness/arms/finetune.py`) for a
fixed number of optimiser steps in its own process, so peak memory is that variant's alone:

  padded-to-max   every example padded to --max-length (what a tutorial's tokenizer(padding="max_length") does)
  dynamic         padded to the longest example in each batch (the harness: DataCollatorForSeq2Seq)
  dynamic+grouped dynamic, plus Trainer's train_sampling_strategy="group_by_length" (similar lengths together)
  dynamic, 1 thread   the harness's collator with torch limited to one thread
  dynamic, OMP passive  OMP_WAIT_POLICY=PASSIVE: idle threads sleep instead of spinning
  full logits, spin 300000   the Trainer's own loss (logits at every position), libgomp's default spin
  labelled logits, spin 300000   `LabelledOnlyTrainer` (logits only where labels are), default spin
  labelled logits, spin 10000    labelled logits and `GOMP_SPINCOUNT=10000` (the harness's default spin count)
  labelled logits, threads follow free cores   the harness as it runs: before each step torch's threads are set to
                 the cores other processes leave free (harness/inference/cpu_share.py)
  labelled logits, OMP passive   labelled logits with OMP_WAIT_POLICY=PASSIVE (threads sleep at once)
  labelled logits, bf16 weights  the same with the base weights in bfloat16 (AMX / AVX512-BF16 kernels),
                 the Trainer's bf16 autocast on, as harness/arms/finetune.py trains a bf16 base
  plain pairs, padded   the finetune arm as it trains now (plain Question/Answer lines, no instruction,
                 threads follow free cores), each batch padded to its longest pair
  plain pairs, flattened   the same, each batch laid end to end in one row (harness/arms/batches.py: padding-free,
                 the same loss)
  plain pairs, padded / flattened, bf16 weights   the two above on a bfloat16 base: what `--dtype auto` trains
                 on where precision.py finds bf16 fast and faithful
  ..., sparse dropout   the same with LoRA dropout drawn sparsely (harness/arms/dropout.py: one random number per
                 dropped element, not per element), what the harness trains with on a CPU

Every row also prints the achieved FLOP/s as a share of this CPU's measured matmul peak (a large `torch.mm`
in the variant's dtype): LoRA training costs 4 x params x tokens (forward, plus the backward pass to the
activations; the frozen weights get no gradient). The LM head's share is counted only at positions that get
logits, so labelled-logits variants are not credited with work they skip.

`--busy` starts one competing single-threaded busy process for the whole measurement (a shared machine).
`--only "a;b"` runs the named variants only.

    .venv/bin/python bench/finetune_step.py --task coffee --steps 12
    .venv/bin/python bench/finetune_step.py --steps 12 --only "full logits, spin 300000;labelled logits, spin 10000"
    .venv/bin/python bench/finetune_step.py --steps 40 --only "plain pairs, padded;plain pairs, flattened"
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
    "labelled logits, threads follow free cores": {"padding": True, "sampling": "random", "threads": None,
                                                   "labelled": True, "follow": True,
                                                   "env": {"GOMP_SPINCOUNT": "10000"}},
    "labelled logits, OMP passive": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                                     "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "labelled logits, bf16 weights": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                                      "dtype": "bfloat16", "env": {"GOMP_SPINCOUNT": "10000"}},
    "plain pairs, padded": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                            "follow": True, "plain": True, "env": {"GOMP_SPINCOUNT": "10000"}},
    "plain pairs, flattened": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                               "follow": True, "plain": True, "flatten": True, "env": {"GOMP_SPINCOUNT": "10000"}},
    "plain pairs, padded, bf16 weights": {"padding": True, "sampling": "random", "threads": None, "labelled": True,
                                          "follow": True, "plain": True, "dtype": "bfloat16",
                                          "env": {"GOMP_SPINCOUNT": "10000"}},
    "plain pairs, flattened, bf16 weights": {"padding": True, "sampling": "random", "threads": None,
                                             "labelled": True, "follow": True, "plain": True, "flatten": True,
                                             "dtype": "bfloat16", "env": {"GOMP_SPINCOUNT": "10000"}},
}
for _name in ("plain pairs, padded", "plain pairs, flattened", "plain pairs, padded, bf16 weights"):
    VARIANTS[_name + ", sparse dropout"] = {**VARIANTS[_name], "sparse": True}
# Older variants ran before the harness set a spin count; they keep libgomp's default for comparability.
# A variant with OMP_WAIT_POLICY sets no spin count: an explicit GOMP_SPINCOUNT would override PASSIVE.
for _v in VARIANTS.values():
    if "OMP_WAIT_POLICY" not in _v.setdefault("env", {}):
        _v["env"].setdefault("GOMP_SPINCOUNT", "300000")


def one(task_name: str, variant: str, steps: int, max_length: int) -> dict:
    import peft
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from harness.arms.batches import CheapestBatches
    from harness.arms.finetune import LabelledOnlyTrainer
    from harness.prompts import chat_template
    from harness.arms.training_data import qa_examples
    from harness.measure import Measured
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
    from harness.task.registry import find_task, tasks_dir

    v = VARIANTS[variant]
    if v["threads"]:
        torch.set_num_threads(v["threads"])
    dtype = getattr(torch, v.get("dtype", "float32"))
    if dtype != torch.float32:
        # Without AMX / AVX512-BF16 kernels a bf16 matmul falls back to a slow path (0.7 GFLOP/s against
        # 118 in float32 on an AVX2-only CPU): training would take hours. Measure the kernels, not that.
        ours, fp32 = matmul_peak(dtype, 512, 2), matmul_peak(torch.float32, 512, 2)
        if ours < fp32:
            return {"variant": variant, "skipped": f"{str(dtype).split('.')[-1]} matmul runs at "
                    f"{ours / 1e9:.1f} GFLOP/s against {fp32 / 1e9:.0f} in float32 on this CPU"}
    task = find_task(task_name, tasks_dir())
    cfg = task.config.finetune
    model, tok = load_generator(resolve_model(DEFAULT_MODEL), dtype=v.get("dtype", "auto"))
    head = model.get_output_embeddings().weight.numel()
    body = body_params(model)
    if v.get("plain"):
        rows = qa_examples(tok, task.knowledge.pairs, None, chat_template(tok, "plain"))
    else:
        rows = qa_examples(tok, task.knowledge.pairs, task.config.prompt.system)
    data = Dataset.from_list(rows)
    tok.padding_side = "right"
    collator = DataCollatorForSeq2Seq(tok, padding=v["padding"], max_length=max_length if v["padding"] ==
                                      "max_length" else None, label_pad_token_id=-100)
    if v.get("flatten"):
        collator = CheapestBatches(tok, model, flatten=True)
    model = peft.get_peft_model(model, peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                                       lora_dropout=cfg.lora_dropout,
                                                       target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    if v.get("sparse"):
        from harness.arms.dropout import use_sparse_dropout
        use_sparse_dropout(model)
    times: list[float] = []
    seen = {"real": 0, "padded": 0, "logits": 0}

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    def counting(features):
        batch = collator(features)
        seen["real"] += sum(len(f["input_ids"]) for f in features)
        seen["padded"] += int(batch["input_ids"].numel())  # tokens computed: padding included, if any
        rows, length = batch["labels"].shape
        kept = int((batch["labels"][:, 1:] != -100).any(0).sum()) if v.get("labelled") else length
        seen["logits"] += rows * kept
        return batch

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=cfg.batch_size,
                                 learning_rate=cfg.learning_rate, save_strategy="no", report_to="none",
                                 logging_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
                                 train_sampling_strategy=v["sampling"],
                                 bf16=dtype == torch.bfloat16)  # as harness/arms/finetune.py sets it
        with Measured() as m:
            trainer_cls = LabelledOnlyTrainer if v.get("labelled") else Trainer
            from harness.inference.cpu_share import training_callback
            trainer_cls(model=model, args=args, train_dataset=data, data_collator=counting,
                        callbacks=[Clock()] + ([training_callback()] if v.get("follow") else [])).train()
    warm = times[2:] or times  # the first steps pay for allocation and thread start-up
    per_step = sum(warm) / len(warm)
    flops = 4 * (body * seen["padded"] + head * seen["logits"])
    peak = matmul_peak(model.dtype)
    return {"variant": variant, "s_per_step": per_step, "real_tokens_per_s": seen["real"] / sum(times),
            "gflops": flops / sum(times) / 1e9, "peak_gflops": peak / 1e9, "dtype": str(model.dtype).split(".")[-1],
            "padding_share": 1 - seen["real"] / seen["padded"], "peak_rss_mb": m.peak_mb,
            "threads": torch.get_num_threads(), "batch": cfg.batch_size, "steps": steps}


def body_params(model) -> int:
    """Parameters every position runs through: all but the input embeddings and the LM head (the head runs only
    where logits are kept, so FLOP counts add it separately)."""
    body = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        body -= model.get_output_embeddings().weight.numel()  # an untied head was counted in the body
    return body


def matmul_peak(dtype, n: int = 2048, reps: int = 8) -> float:
    """This CPU's FLOP/s on a large square matmul in `dtype`, with torch's threads: the ceiling to compare with."""
    import torch
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


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
    print(f"\n{args.task}, {args.steps} steps per variant (first 2 not timed)"
          + (", one competing busy process" if args.busy else ", quiet machine") + "\n", flush=True)
    print(f"| variant | threads | s/step | vs {chosen[0]} | real tokens/s | padding share | peak RSS MB "
          "| GFLOP/s | share of matmul peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    base = None
    try:
        for variant in chosen:  # a row as soon as its variant ends: long benches are read while they run
            out = subprocess.run([sys.executable, __file__, "--task", args.task, "--steps", str(args.steps),
                                  "--max-length", str(args.max_length), "--one", variant],
                                 capture_output=True, text=True,
                                 env={**{k: v for k, v in os.environ.items()
                                         if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
                                      **VARIANTS[variant].get("env", {})})
            if out.returncode:
                print(f"| {variant} | failed: {out.stderr.strip().splitlines()[-1][:200]} |", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if "skipped" in r:
                print(f"| {variant} | skipped: {r['skipped']} |", flush=True)
                continue
            base = base or r["s_per_step"]
            print(f"| {r['variant']} | {r['threads']} | {r['s_per_step']:.2f} | {base / r['s_per_step']:.2f}x | "
                  f"{r['real_tokens_per_s']:.0f} | {r['padding_share']:.0%} | {r['peak_rss_mb']:.0f} | "
                  f"{r['gflops']:.1f} | {r['gflops'] / r['peak_gflops']:.0%} of {r['peak_gflops']:.0f} "
                  f"({r['dtype']}) |", flush=True)
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
