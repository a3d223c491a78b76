"""How the processes of a data-parallel training (`harness train` under torchrun) hold the weights: each a whole
copy on its own GPU (DDP), or each a 1/N shard of them (FSDP), for a model one GPU cannot hold with room to train.

The choice changes where the weights sit and how gradients are exchanged, not the adapter: the same recipe on the
same data gets the same cache key (finetune.cache_key) whether it trained on 1 process, N with DDP or N with FSDP."""
from __future__ import annotations

import logging

import torch

from harness.errors import HarnessError
from harness.inference.devices import WEIGHTS_SHARE, visible_gpus, weights_bytes
from harness.names import FSDP_MODES

log = logging.getLogger(__name__)

DDP, FSDP = "ddp", "fsdp"


def training_layout(weights: int, free: list[int], world: int, share: float = WEIGHTS_SHARE) -> str:
    """DDP when `weights` bytes fit the smallest of the GPUs' `free` bytes within `share` (each process holds a
    whole copy); else FSDP, which gives each of the `world` processes 1/world of them (plus one layer gathered at
    a time, within the rest of `share`). Raises where even a 1/world shard does not fit, or a single process
    cannot shard (one process spreads a big model over its GPUs with device_map instead: devices.placement)."""
    room = min(free) * share if free else 0
    if weights <= room:
        return DDP
    if world < 2:
        raise HarnessError(f"the model's weights ({weights / 1e9:.1f} GB) do not fit one GPU ({room / 1e9:.1f} GB "
                           "of it for weights) and one process cannot shard them: launch with torchrun "
                           "--nproc_per_node N (FSDP), or run `harness train` without torchrun (device_map auto)")
    if weights / world > room:
        raise HarnessError(f"the model's weights ({weights / 1e9:.1f} GB) do not fit {world} GPUs even sharded "
                           f"({weights / world / 1e9:.1f} GB each, {room / 1e9:.1f} GB of each for weights): "
                           "load it in 4 bits (--quantize 4), or use more or bigger GPUs")
    return FSDP


def wants_fsdp(mode: str, location: str, device: str, dtype: torch.dtype, quant_bits: int | None, world: int,
               trust_remote_code: bool = False) -> bool:
    """Whether this process trains with FSDP: `mode` "on" or "off" (--fsdp) decide; "auto" asks
    `training_layout` on CUDA with several processes, from the weights' size (read from config.json before
    loading) and the processes' GPUs' free memory (`least_free_gpu_bytes`). Never on a CPU: accelerate shards
    only GPU processes."""
    if mode not in FSDP_MODES:
        raise HarnessError(f"--fsdp {mode}: choose one of {', '.join(FSDP_MODES)}")
    on_gpu = device.startswith("cuda") and visible_gpus() > 0
    if mode == "on" and not on_gpu:
        raise HarnessError("--fsdp on needs CUDA GPUs (accelerate shards a model only over GPU processes); "
                           "drop it on this machine")
    if mode != "auto" or not on_gpu or world < 2:
        return _checked(mode == "on", quant_bits)
    try:
        size = weights_bytes(location, dtype, quant_bits, trust_remote_code)
    except Exception as e:  # a model whose size cannot be read before loading (a GGUF file) trains with DDP
        log.debug("weights' size not known before loading (%s): DDP", e)
        return False
    layout = training_layout(size, [least_free_gpu_bytes()] * world, world)
    if layout == FSDP:
        log.info("the weights (%.1f GB) exceed one GPU: FSDP shards them over the %d processes", size / 1e9, world)
    return _checked(layout == FSDP, quant_bits)


def _checked(fsdp: bool, quant_bits: int | None) -> bool:
    if fsdp and quant_bits == 8:  # bitsandbytes packs only 4-bit weights in a float dtype FSDP can shard
        raise HarnessError("FSDP cannot shard 8-bit weights: use --quantize 4 (QLoRA+FSDP), or --fsdp off")
    return fsdp


def least_free_gpu_bytes() -> int:
    """The least free memory among the GPUs of this torchrun's processes, the same number in every one so that all
    choose alike: each reads its own GPU only (reading every visible GPU from every process would leave a CUDA
    context of each process on each GPU), and they agree on the minimum. Starts the process group, as the
    Trainer would."""
    from accelerate import PartialState

    device = PartialState().device
    free = torch.tensor([torch.cuda.mem_get_info(device)[0]], device=device)
    torch.distributed.all_reduce(free, op=torch.distributed.ReduceOp.MIN)
    return int(free.item())


def layer_classes(model) -> list[str]:
    """The classes FSDP wraps one unit each: the decoder layers transformers names as never to be split."""
    return list(getattr(model, "_no_split_modules", None) or [])


def fsdp_config(layer_classes: list[str]) -> dict:
    """The Trainer's `fsdp_config` for LoRA or QLoRA on a sharded base (the recipe of the HF FSDP+QLoRA guide,
    axolotl and LlamaFactory): FSDP1 fully sharded, one unit per decoder layer (`layer_classes`, the model's
    `_no_split_modules`); original parameters kept, since a unit mixes frozen base weights and trainable LoRA
    ones; the weights read from disk by rank 0 only and sent to the others (cpu_ram_efficient_loading with
    sync_module_states); a full state dict on save, so rank 0 writes the same adapter files as without FSDP."""
    if not layer_classes:
        raise HarnessError("this model names no decoder layer class (_no_split_modules) to shard by: FSDP cannot "
                           "wrap it layer by layer; train it with --fsdp off")
    return {"version": 1, "reshard_after_forward": "full_shard", "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "transformer_layer_cls_to_wrap": list(layer_classes), "use_orig_params": True,
            "cpu_ram_efficient_loading": True, "sync_module_states": True, "state_dict_type": "FULL_STATE_DICT"}
