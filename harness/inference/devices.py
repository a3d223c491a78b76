"""How many GPUs this process sees: the one place the count is read, so a test can fake it and every sizing
(vLLM's tensor parallelism, the memory forecast, GPU-hours) agrees on it."""
from __future__ import annotations

import torch


def visible_gpus() -> int:
    """CUDA devices visible to this process (CUDA_VISIBLE_DEVICES applied); 0 without CUDA."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
