"""Training step time with torch's SDPA attention against transformers' eager attention, on this CPU.

The default LoRA recipe (rank 16, every projection, sparse dropout, logits only at labelled positions) trains
on random token rows of the given lengths, batch 8, half of each batch right-padded by an eighth, as a padded
batch is. Both implementations run in one process on one model and alternate step by step, so load from other
jobs falls on both alike; the first step of each is untimed. Eager won here in bf16, yet the harness keeps SDPA:
in a whole Trainer-driven RAFT training the gain did not show (bench/README.md).

    .venv/bin/python bench/attention.py --lengths 32,256,340 --dtype bfloat16
    .venv/bin/python bench/attention.py --lengths 256 --dtype float32
"""
from __future__ import annotations

import argparse
import statistics
import time

import harness  # noqa: F401  (first: it sets the OpenMP spin count before torch loads, as the harness runs)
import peft
import torch

from harness.config import FinetuneConfig
from harness.arms.dropout import use_sparse_dropout
from harness.arms.finetune import labelled_loss
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="32,256,340", help="tokens per row, comma-separated")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per implementation and length")
    args = ap.parse_args()
    cfg = FinetuneConfig()
    model, _ = load_generator(resolve_model(DEFAULT_MODEL), dtype=args.dtype)
    model = peft.get_peft_model(model, peft.LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                                       lora_dropout=cfg.lora_dropout,
                                                       target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    use_sparse_dropout(model)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    bf16 = model.dtype == torch.bfloat16
    for length in (int(x) for x in args.lengths.split(",")):
        pad = max(1, length // 8)
        ids = torch.randint(100, 40000, (8, length), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(ids)
        mask[4:, -pad:] = 0
        labels = torch.full_like(ids, -100)
        labels[:, -pad - 6:-pad] = ids[:, -pad - 6:-pad]

        def step() -> float:
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                total, count, _ = labelled_loss(model, ids, mask, labels)
            (total / count).backward()
            opt.step()
            opt.zero_grad()
            return time.perf_counter() - t

        times: dict[str, list[float]] = {"sdpa": [], "eager": []}
        for impl in times:  # untimed: first-call costs belong to neither side
            model.base_model.model.set_attn_implementation(impl)
            step()
        for i in range(2 * args.steps):
            impl = list(times)[i % 2]
            model.base_model.model.set_attn_implementation(impl)
            times[impl].append(step())
        sdpa, eager = statistics.median(times["sdpa"]), statistics.median(times["eager"])
        print(f"{args.dtype}, 8 x {length} tokens: sdpa {sdpa:.2f} s/step, eager {eager:.2f} s/step "
              f"(median of {args.steps}; eager {sdpa / eager:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
