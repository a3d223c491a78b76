"""Sizes on CUDA read from the GPUs' free memory, where a CPU run takes the task's fixed figures.

The figures in task.yaml (answer batches of 16, training micro-batches of 512 tokens) were tuned on 2-core CPUs,
where memory is the process's and every batch shape was measured; an H100 would idle on them. The sizing rules are
pure functions of the free bytes they are given (tested on a CPU with given numbers); the few functions that read a
GPU return None on a CPU, which leaves every CPU figure as it was.
"""
from __future__ import annotations

import gc

import torch

from harness.inference.devices import quantized, sharded, visible_gpus

# Shares of the free memory a sizing may plan for: the rest is headroom for the allocator's fragments, the CUDA
# context of other libraries, and what the estimate leaves out.
ANSWER_SHARE = 0.4  # the answering KV cache, beside the weights already resident
TRAINING_SHARE = 0.5  # a training micro-batch's kept activations
VLLM_HEADROOM_BYTES = 2 * 2**30  # left free on each GPU when vLLM sizes its reservation from free memory
VLLM_MOST = 0.92  # vLLM's reservation never above this share of a GPU
WORST_ROW_TOKENS = 2048  # the row a GPU answer batch's minimum is sized for (prompt + answer)


def free_bytes(device) -> int | None:
    """Free memory of the CUDA device `device` (a torch.device or string); None anywhere else."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.mem_get_info(device)[0]


def kv_width(text) -> int:
    """Key (or value) numbers one token holds per layer: key/value heads x head size, under grouped-query
    attention less than the hidden size. `text`: the model's text config."""
    heads = text.num_attention_heads
    return (getattr(text, "num_key_value_heads", None) or heads) * (getattr(text, "head_dim", None)
                                                                  or text.hidden_size // heads)


def kv_bytes_per_token(config, element_bytes: int) -> int:
    """Key and value cache bytes one token holds across every layer of the model whose (text) config is given."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    return 2 * text.num_hidden_layers * kv_width(text) * element_bytes


MAX_ANSWER_ROWS = 256  # an answer batch's rows on a GPU, however much memory is free


def answer_batch(batch_size: int, batch_tokens: int, free: int | None, kv_per_token: int) -> tuple[int, int]:
    """(generation.batch_size, generation.batch_tokens) for answering: as configured on a CPU (`free` None); on a
    GPU, `batch_tokens` is what ANSWER_SHARE of the free memory holds in KV cache, and the minimum batch is as many
    rows of WORST_ROW_TOKENS as that holds (at least 1, at most 256): generate.batch_ranges grows batches of short
    prompts past it while their tokens fit."""
    if free is None:
        return batch_size, batch_tokens
    tokens = max(1, int(free * ANSWER_SHARE) // max(1, kv_per_token))
    return max(1, min(MAX_ANSWER_ROWS, tokens // WORST_ROW_TOKENS)), tokens


def training_token_budget(configured: int, free: int | None, per_token_bytes: int) -> int:
    """finetune.micro_batch_tokens on a CPU (`free` None); on a GPU, the tokens whose kept activations
    (`per_token_bytes` each) fit TRAINING_SHARE of the free memory: a budget a whole step's rows usually fit, so
    micro-batching and layer recomputation (batches.py, recompute.py) stay off unless the rows are that long."""
    if free is None:
        return configured
    return max(1, int(free * TRAINING_SHARE) // max(1, per_token_bytes))


def tensor_parallel(gpus: int, heads: int, kv_heads: int | None = None) -> int:
    """The largest tensor-parallel size up to `gpus` that vLLM can split this model's attention over: it divides
    the query heads, and the key/value heads divide it or it divides them (vLLM replicates them then)."""
    kv = kv_heads or heads
    for t in range(max(1, gpus), 0, -1):
        if heads % t == 0 and (kv % t == 0 or t % kv == 0):
            return t
    return 1


def vllm_memory_share(free: list[int], total: list[int]) -> float:
    """vLLM's `gpu_memory_utilization` from each GPU's free and total bytes: vLLM refuses to start when a GPU has
    less free than that share of its total, so the share is what the fullest GPU has free, less VLLM_HEADROOM_BYTES,
    and never over VLLM_MOST."""
    share = min((f - VLLM_HEADROOM_BYTES) / t for f, t in zip(free, total))
    return round(max(0.05, min(VLLM_MOST, share)), 3)


def movable(model) -> bool:
    """Whether `model` can move between the CPU and one GPU as a whole: not a 4- or 8-bit model (bitsandbytes'
    weights do not move) and not one spread over several devices (device_map)."""
    return not quantized(model) and not sharded(model)


def empty_gpu_cache() -> None:
    """Hand what torch has freed on the GPUs back to the driver, so the next reader of free memory sees it."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def park(model) -> str | None:
    """Move a movable model off its GPU to the CPU while something else (vLLM) has the GPU's memory; returns the
    device to bring it back to, or None where it stayed (already on a CPU, or not movable)."""
    device = getattr(model, "device", torch.device("cpu"))
    if device.type != "cuda" or not movable(model):
        return None
    model.to("cpu")
    empty_gpu_cache()
    return str(device)


def peak_allocated_mb() -> float | None:
    """The most torch allocated on the visible GPUs since the last reset (summed over them), in MiB; None on a CPU.
    vLLM's own allocations are not in it: its engine runs in other processes."""
    if not visible_gpus():
        return None
    return sum(torch.cuda.max_memory_allocated(i) for i in range(visible_gpus())) / 2**20


def reset_peak() -> None:
    for i in range(visible_gpus()):
        torch.cuda.reset_peak_memory_stats(i)


def matmul_tflops(seconds: float = 0.2, n: int = 4096) -> float | None:
    """bf16 matrix-product speed of GPU 0 in TFLOP/s, best of a few timed runs; None without CUDA. What the time
    forecast divides a GPU run's FLOPs by, as matmul_speeds does for a CPU."""
    if not torch.cuda.is_available():
        return None
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    a @ b  # the kernel's first launch and autotuning are not its speed
    torch.cuda.synchronize()
    best, spent = 0.0, 0.0
    while spent < seconds:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(8):
            a @ b
        end.record()
        torch.cuda.synchronize()
        took = start.elapsed_time(end) / 1e3
        spent += took
        best = max(best, 8 * 2 * n ** 3 / took / 1e12)
    return best
