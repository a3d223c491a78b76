"""One float32 LoRA step, eager against `torch.compile` (inductor): the seconds the first step takes (compiling
included) and the mean of 3 steps after a warm-up. Rows as in bench/dropout.py: 8 random rows of --length tokens,
the last 8 labelled, the task-default LoRA without dropout, AdamW. Each mode loads the model in its own process.

    .venv/bin/python bench/compile_step.py --length 300
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
MODES = ("eager", "compiled")


def one(mode: str, length: int) -> dict:
    import peft
    import torch

    from harness.arms.finetune import labelled_loss
    from harness.config import FinetuneConfig
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    cfg = FinetuneConfig()
    model, _ = load_generator(resolve_model(DEFAULT_MODEL), dtype="float32")
    model = peft.get_peft_model(model, peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                                       target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    model.train()
    forward = torch.compile(model, dynamic=False) if mode == "compiled" else model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, 40000, (8, length), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :-8] = -100

    def step() -> None:
        total, count, _ = labelled_loss(forward, ids, torch.ones_like(ids), labels)
        (total / count).backward()
        opt.step()
        opt.zero_grad()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    start = time.perf_counter()
    for _ in range(3):
        step()
    return {"mode": mode, "first_s": first, "s_per_step": (time.perf_counter() - start) / 3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=300, help="tokens per row")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.length)))
        return
    print(f"float32, 8 rows of {args.length} tokens\n\n| mode | first step s | s/step | vs eager |\n|---|---:|---:|---:|")
    eager = None
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--length", str(args.length), "--one", mode],
                             capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        r = json.loads(out)
        eager = eager or r["s_per_step"]
        print(f"| {mode} | {r['first_s']:.1f} | {r['s_per_step']:.2f} | {eager / r['s_per_step']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
