"""One LoRA training step on rows of a given length: torch's dropout, sparse dropout (harness/arms/dropout.py), none.

Rows are random token ids with the last 8 positions labelled (a RAFT example's shape: a long prompt of passages,
a short answer), 8 rows a batch, the task-default LoRA (rank 16 on every projection), AdamW, autocast as the
Trainer sets it for a bf16 base. Each variant loads the model in its own process; 2 warm-up steps, then the mean
of --steps. `--profile` prints the operators that took the most time in one step of `--profile-variant`
(torch dropout unless named). `--compile` runs each variant's model through `torch.compile` (inductor) and also
reports the first step's seconds, compiling included.

    .venv/bin/python bench/dropout.py --dtype bfloat16 --length 300
    .venv/bin/python bench/dropout.py --dtype float32 --length 24 --steps 10
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
VARIANTS = ("torch dropout", "sparse dropout", "no dropout")


def one(variant: str, dtype: str, length: int, steps: int, profile: bool, compile_: bool = False) -> dict:
    import peft
    import torch

    from harness.config import FinetuneConfig
    from harness.arms.dropout import use_sparse_dropout
    from harness.arms.finetune import labelled_loss
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    cfg = FinetuneConfig()  # the task-default recipe
    model, _ = load_generator(resolve_model(DEFAULT_MODEL), dtype=dtype)
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0 if variant == "no dropout" else cfg.lora_dropout,
        target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    if variant == "sparse dropout":
        use_sparse_dropout(model)
    model.train()
    forward = torch.compile(model, dynamic=False) if compile_ else model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (8, length), generator=gen)
    labels = ids.clone()
    labels[:, :-8] = -100

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            total, count, _ = labelled_loss(forward, ids, torch.ones_like(ids), labels)
        (total / count).backward()
        opt.step()
        opt.zero_grad()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    out = {"variant": variant, "s_per_step": (time.perf_counter() - start) / steps, "first_s": first}
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        with prof(activities=[ProfilerActivity.CPU]) as p:
            step()
        out["profile"] = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--length", type=int, default=300, help="tokens per row")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-variant", default=VARIANTS[0], choices=VARIANTS, help="the variant --profile times")
    ap.add_argument("--compile", action="store_true", help="torch.compile each variant's model")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.dtype, args.length, args.steps, args.profile, args.compile)))
        return
    mode = ", compiled" if args.compile else ""
    print(f"{args.dtype} base{mode}, 8 rows of {args.length} tokens, mean of {args.steps} steps after 2\n")
    print("| LoRA dropout | first step s | s/step | vs torch dropout |\n|---|---:|---:|---:|", flush=True)
    first, table = None, None
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--dtype", args.dtype, "--length", str(args.length),
               "--steps", str(args.steps), "--one", variant] + (["--compile"] if args.compile else [])
        if args.profile and variant == args.profile_variant:
            cmd.append("--profile")
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        first = first or r["s_per_step"]
        table = table or r.get("profile")
        print(f"| {variant} | {r['first_s']:.1f} | {r['s_per_step']:.2f} | {first / r['s_per_step']:.2f}x |",
              flush=True)
    if table:
        print(f"\nOne step ({args.profile_variant}), by operator:\n" + table)


if __name__ == "__main__":
    main()
