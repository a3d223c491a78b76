"""Which CPU a run ran on, in the words a speed figure needs beside it.

The same demo took 16 minutes on one 2-core EPYC and an hour on another: what decides is whether the CPU has
AVX-512, bf16 dot products (AVX512-BF16, AMX) or only AVX2. Every run.json and report names it, so a time is
never read without the machine that made it."""
from __future__ import annotations

import os
import platform
from pathlib import Path

# cpuinfo flag -> the name people use; in the order a reader compares machines by.
FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX"}


def _cpuinfo(path: Path) -> tuple[str, set[str]]:
    model, flags = "", set()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def cpu_info(threads: int | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """Model name, core count, torch's threads and the vector features that decide training and answering
    speed, plus `kind`, the one phrase reports print."""
    model, flags = _cpuinfo(cpuinfo)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    has = {name: flag in flags for flag, name in FEATURES.items()}
    present = [name for name, yes in has.items() if yes]
    kind = f"{model}, {cores} cores, " + (" + ".join(present) if present else "no AVX2")
    if not has_bf16_dot_products(has):
        kind += " (no bf16 dot products)"
    return {"model": model, "cores": cores, "threads": threads, "features": has, "kind": kind}


def has_bf16_dot_products(features: dict[str, bool] | None = None) -> bool:
    """Whether this CPU (or `features`, as cpu_info names them) has bf16 dot-product instructions (AVX512-BF16 or
    AMX): what decides training precision (harness/arms/precision.py), read from its flags rather than from a
    probe that the machine's load moves."""
    features = cpu_info()["features"] if features is None else features
    return features["AVX512-BF16"] or features["AMX"]


def bf16_training_pays(features: dict[str, bool] | None = None) -> bool:
    """Whether LoRA should train on a bf16 copy on this CPU, read from its flags rather than from a probe that the
    machine's load moves (harness/arms/precision.py): where it has AVX512-BF16 and no AMX. On a Zen 4 with
    AVX512-BF16, coffee's finetune epochs ran 1.3-1.6x faster in bf16. On a 2-core Xeon with AMX, whose bf16
    products ran 6x float32's, they ran 5% slower and RAFT's steps 7% faster (bench/README.md): the gain stays in
    large products, and there a bf16 copy would only cost memory and train adapters that differ from a float32
    machine's."""
    features = cpu_info()["features"] if features is None else features
    return features["AVX512-BF16"] and not features["AMX"]


def gpu_kind(gpus: int) -> str | None:
    """The GPUs a run uses, in the words a speed figure needs beside it ("NVIDIA H100 80GB HBM3 x 8"); None
    without CUDA."""
    import torch

    if gpus < 1 or not torch.cuda.is_available():
        return None
    return f"{torch.cuda.get_device_name(0)} x {gpus}"
