"""Which precision LoRA training computes in on a CPU, when `--dtype auto` leaves it to the harness.

bfloat16 halves the bytes every weight read costs, and where the CPU has bf16 dot-product kernels (AMX, or
AVX512-BF16 as on recent Xeons and EPYCs) its matrix products run several times float32's; on a CPU without them
they fall back to a path many times slower. Faster products are not a faster training, though: on a 2-core Xeon
with AMX, products 6x float32's left LoRA epochs as long as float32's. So the choice is never assumed: training
uses a bf16 copy of the base only where the CPU's flags say it pays (`machine.bf16_training_pays`: AVX512-BF16
without AMX) and a probe finds bf16 faster (or, where the flags are unknown, at least `MIN_SPEEDUP` times
float32's), and only when that copy scores the task's own training pairs within `LOSS_TOLERANCE` of the float32
loss.

Answering stays in float32 (its LoRA merged into the float32 weights). In bf16 a batched greedy answer is no
longer the one-at-a-time answer (rounding follows the batch's shapes: 38 of 48 coffee RAG answers agreed, against
48 of 48 in float32), and a verdict must not depend on which questions shared a batch."""
from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass

import torch

MIN_SPEEDUP = 2.0  # bf16 must at least halve a product's time: less would not repay the rounding
LOSS_TOLERANCE = 0.02  # relative: the performance issue's "equal eval loss (±2%)"
CHECK_PAIRS = 32  # training pairs scored in both precisions (a second or two on 2 cores)


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    why: str  # one line, recorded in run.json and printed


def _gflops(dtype: torch.dtype, seconds: float) -> float:
    # The shape of a small model's layer over a batch of short rows (rows x hidden x 4*hidden), not a large
    # square: large squares flatter both precisions and hide a slow bf16 fallback less well.
    x, w = torch.randn(256, 576).to(dtype), torch.randn(1536, 576).to(dtype)
    torch.nn.functional.linear(x, w)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        torch.nn.functional.linear(x, w)
        n += 1
    return 2 * 256 * 576 * 1536 * n / elapsed / 1e9


@functools.cache
def matmul_speeds() -> tuple[float, float]:
    """(bf16 GFLOP/s, float32 GFLOP/s) of this CPU's matrix products, measured once per process: the best of
    three short alternating runs each, so a thread pool waking up or a neighbour's burst does not decide."""
    runs = [(_gflops(torch.bfloat16, 0.02), _gflops(torch.float32, 0.02)) for _ in range(3)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


@torch.no_grad()
def _answer_loss(model, batch: dict) -> float:
    from harness.arms.finetune import batch_loss

    total, count, _ = batch_loss(model, {k: v.to(model.device) for k, v in batch.items()})
    return (total / count).item()


def bf16_is_fast(speeds: tuple[float, float], bf16_instructions: bool | None = None) -> bool:
    """Whether bf16 is fast for training on this CPU. Where its flags are known (`bf16_instructions`:
    `machine.bf16_training_pays`), they decide, and the probe only vetoes a bf16 no faster than float32: the probe's ratio moves with the
    machine's load (a quiet Zen 4 measured 2.4x, and under 2x with other work running), and the adapters a run
    trains, and so its answers, must not depend on what else ran at that moment, nor differ between the
    processes of one distributed training. Without flags, the probe alone, at MIN_SPEEDUP."""
    fast, slow = speeds
    if bf16_instructions is None:
        return fast >= MIN_SPEEDUP * slow
    return bf16_instructions and fast >= slow


def cast_copy(model, dtype: torch.dtype):
    """`copy.deepcopy(model).to(dtype)` without the full-precision copy in between: each weight is cast as it is
    copied (the same rounding, so the same numbers), and tied weights stay tied."""
    cast = {id(p): torch.nn.Parameter(p.detach().to(dtype), requires_grad=p.requires_grad)
            for p in model.parameters()}
    return copy.deepcopy(model, cast).to(dtype)


def training_copy(model, tokenizer, examples: list[dict], speeds: tuple[float, float] | None = None,
                  tolerance: float = LOSS_TOLERANCE,
                  bf16_instructions: bool | None = None, forced: bool = False) -> tuple[object | None, Precision]:
    """A bf16 copy of the float32 `model` to train LoRA on, or None (train on `model` itself), with the reason.
    The copy is made when bf16 is both fast here (`bf16_is_fast`; `speeds`: bf16 and float32 GFLOP/s, measured
    when not given) and faithful on `examples` (token ids + labels of training pairs). `forced` skips the speed
    rule, not the faithfulness check: a user measuring what another CPU kind would train."""
    from transformers import DataCollatorForSeq2Seq

    from harness.arms.training_data import IGNORE

    fast, slow = speeds or matmul_speeds()
    if not forced and not bf16_is_fast((fast, slow), bf16_instructions):
        lacks = (", and its flags rule bf16 training out (it pays with AVX512-BF16 and no AMX)"
                 if bf16_instructions is False else "")
        need = (f" (bf16 needs {MIN_SPEEDUP:g}x)" if bf16_instructions is None
                else " (bf16 needs to be faster)" if bf16_instructions else "")
        return None, Precision(torch.float32, f"float32: bf16 products run {fast:.0f} GFLOP/s against "
                               f"{slow:.0f} in float32 on this CPU{lacks}{need}")
    rows = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples[:CHECK_PAIRS]]
    if not rows:
        return None, Precision(torch.float32, "float32: no training pairs to check bf16's loss on")
    tok = copy.copy(tokenizer)
    tok.padding_side = "right"
    batch = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE)(rows)
    exact = _answer_loss(model, batch)
    low = cast_copy(model, torch.bfloat16)
    drift = abs(_answer_loss(low, batch) - exact) / exact
    speed = f"bf16 products run {fast / slow:.1f}x float32's on this CPU" + (" (forced by --train-dtype)" if forced else "")
    if drift > tolerance:
        return None, Precision(torch.float32, f"float32: {speed}, but the model's loss on {len(rows)} training "
                               f"pairs moves {drift:.2%} in bf16 (tolerance {tolerance:.0%})")
    return low, Precision(torch.bfloat16, f"bfloat16: {speed}, and the model's loss on {len(rows)} training "
                          f"pairs is within {drift:.2%} of float32's (tolerance {tolerance:.0%})")


def training_copy_for_task(model, tokenizer, pairs, instruction: str | None,
                           bf16_instructions: bool | None = None, forced: bool = False) -> tuple[object | None, Precision]:
    """`training_copy`, checked on the task's first training pairs asked as the prompt arm asks them."""
    from harness.arms.training_data import qa_examples

    return training_copy(model, tokenizer, qa_examples(tokenizer, list(pairs)[:CHECK_PAIRS], instruction),
                         bf16_instructions=bf16_instructions, forced=forced)
