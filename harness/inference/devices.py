"""The GPUs this process sees, and where a model's weights go on them.

The CUDA device count is read here and nowhere else in the harness (tests fake it here). A single process loads a
model onto one GPU when it fits there, and shards it over every visible GPU with `device_map="auto"` when not."""
from __future__ import annotations

import logging

import torch

from harness.errors import HarnessError

log = logging.getLogger(__name__)

# The share of a GPU's free memory the weights may take: the rest is for training activations, LoRA and its
# optimizer, the KV cache of batched answering and the embedder.
WEIGHTS_SHARE = 0.8


def visible_gpus() -> int:
    """CUDA devices this process sees (CUDA_VISIBLE_DEVICES applied); 0 without CUDA."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_gpu_bytes() -> list[int]:
    """Free memory on each visible GPU, in bytes, in device order."""
    return [torch.cuda.mem_get_info(i)[0] for i in range(visible_gpus())]


def gpu_budget(weights_bytes: int, free: list[int], share: float = WEIGHTS_SHARE) -> dict[int, int] | None:
    """Where a single process puts weights of `weights_bytes` given each GPU's `free` bytes: None when they fit
    the first GPU within `share` of its free memory (loaded there whole, as always); else the `max_memory` per
    GPU for `device_map="auto"`, which spreads the layers over all of them. Raises when even all of them together
    cannot hold the weights with room left to run."""
    if not free or weights_bytes <= free[0] * share:
        return None
    budget = {i: int(f * share) for i, f in enumerate(free)}
    if weights_bytes > sum(budget.values()):
        raise HarnessError(f"the model's weights ({weights_bytes / 1e9:.1f} GB) do not fit the {len(free)} visible "
                           f"GPU(s) ({sum(free) / 1e9:.1f} GB free, {share:.0%} of it for weights): load it in 4 bits "
                           "(--quantize 4), or run on a machine with more GPU memory")
    return budget


def meta_parameters(location: str, trust_remote_code: bool = False) -> tuple[object, int]:
    """(config, parameter count) of the model at `location`, built on the meta device: config.json only, no
    weights read."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(cfg, trust_remote_code=trust_remote_code)
    return cfg, sum(p.numel() for p in model.parameters())


def weights_bytes(location: str, dtype: torch.dtype, quant_bits: int | None = None,
                  trust_remote_code: bool = False) -> int:
    """The weights' size once loaded: their parameters (`meta_parameters`) times the bytes each takes in `dtype`,
    or in `quant_bits` when quantized."""
    _, params = meta_parameters(location, trust_remote_code)
    return int(params * (quant_bits / 8 if quant_bits else torch.finfo(dtype).bits / 8))


def placement(location: str, device: str, dtype: torch.dtype, quant_bits: int | None,
              trust_remote_code: bool) -> dict[int, int] | None:
    """`max_memory` for `device_map="auto"` when a single process on `device` ("cuda": every visible GPU) needs
    more than one GPU for the weights; None where they go whole onto one device (CPU, a process's own GPU under
    torchrun, or a model that fits)."""
    if device != "cuda" or visible_gpus() == 0:
        return None
    try:
        size = weights_bytes(location, dtype, quant_bits, trust_remote_code)
    except Exception as e:  # a model whose size cannot be read before loading is loaded whole, as before
        log.debug("weights' size not known before loading (%s): one GPU", e)
        return None
    budget = gpu_budget(size, free_gpu_bytes())
    if budget is not None:
        log.info("the weights (%.1f GB) exceed one GPU: spread over %d GPUs (device_map auto, up to %s GB each)",
                 size / 1e9, len(budget), ", ".join(f"{b / 1e9:.0f}" for b in budget.values()))
    return budget


def quantized(model) -> bool:
    """Whether the model's weights were loaded quantized (bitsandbytes' 4 or 8 bits)."""
    return getattr(model, "hf_quantizer", None) is not None or \
        getattr(model.config, "quantization_config", None) is not None


def sharded(model) -> bool:
    """Whether the model's layers sit on more than one device (loaded with a device_map that split them)."""
    return len(set((getattr(model, "hf_device_map", None) or {}).values())) > 1
