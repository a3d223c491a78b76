"""Where a RAG answer batch's time goes: one float32 prefill of 16 question suffixes on a shared prefix.

The shape of coffee's rag batches (bench/answering.py --arm rag): a 271-token shared prefix (instruction and
demonstrations with their passages) computed once, then 16 rows of 250-300 tokens of each question's own passages
and question, one greedy step. Random token ids: the arithmetic does not depend on which tokens they are. Prints
the step's time, the achieved FLOP/s of its matrix products against this CPU's float32 `torch.mm` peak, and the
operators that took the time.

    .venv/bin/python bench/prefill.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness  # noqa: E402,F401  (first: it sets the OpenMP spin count before torch loads, as the harness runs)
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import harness.inference.generate as hgen  # noqa: E402
from bench.finetune_step import body_params, matmul_peak  # noqa: E402
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model  # noqa: E402


def main() -> None:
    model, _ = load_generator(resolve_model(DEFAULT_MODEL), dtype="float32")
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(100, 40000, (271,), generator=gen).tolist()
    lengths = torch.randint(250, 300, (16,), generator=gen).tolist()
    suffixes = [torch.randint(100, 40000, (n,), generator=gen).tolist() for n in lengths]
    with torch.inference_mode():
        kv = hgen.prefix_cache(model, prefix)
        step = lambda: hgen.greedy(model, kv, len(prefix), suffixes, 1, {0}, 0)  # noqa: E731
        step()
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
    mm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm")) / 1e6
    body = body_params(model)
    # padded width: every row computes max(lengths) positions
    flops = 2 * body * len(suffixes) * max(lengths)
    print(f"prefill of 16 x {min(lengths)}-{max(lengths)} tokens on a {len(prefix)}-token prefix: {seconds:.2f} s; "
          f"matrix products {mm:.2f} s at {flops / mm / 1e9:.0f} GFLOP/s, this CPU's float32 peak "
          f"{matmul_peak(torch.float32) / 1e9:.0f} GFLOP/s\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=6))


if __name__ == "__main__":
    main()
