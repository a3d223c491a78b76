"""A model's parameter count from its config.json alone, for a deployment profile that names a model instead of
giving `params:`. Offline only: a local folder, or a config.json already in the local Hugging Face cache; no
weights are read and nothing heavy is imported (`harness report` must stay fast)."""
from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError
from harness.names import looks_like_hub_id

MAX_CONFIG_BYTES = 2**20
_GIVE_PARAMS = "give `params:` (the parameter count, e.g. 8.0e+9) instead"


def _cached_config(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the cache cannot even look up is not there
        return None
    return Path(found) if isinstance(found, str) else None


def decoder_params(cfg: dict) -> float | None:
    """Parameters of a dense decoder-only transformer (Llama, Qwen, Mistral, SmolLM, Gemma shapes): embeddings,
    per layer q/k/v/o projections (grouped-query heads included), a gated MLP of three matrices and two norms.
    None for shapes this does not describe (mixtures of experts, missing keys): a wrong count would be worse."""
    cfg = cfg.get("text_config", cfg) if isinstance(cfg.get("text_config"), dict) else cfg
    keys = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size")
    if any(k in cfg for k in ("num_local_experts", "num_experts", "n_routed_experts")):
        return None
    if not all(isinstance(cfg.get(k), int) and cfg[k] > 0 for k in keys):
        return None
    h, layers, inter, heads, vocab = (cfg[k] for k in keys)
    kv = cfg.get("num_key_value_heads") or heads
    head = cfg.get("head_dim") or h // heads
    attention = h * heads * head * 2 + h * kv * head * 2  # q and o, then k and v
    per_layer = attention + 3 * h * inter + 2 * h
    embeddings = vocab * h * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return float(embeddings + layers * per_layer + h)


def params_of(model: str, base: Path, inside: Path | None, where: Path, line: int | None) -> float:
    """Parameters of `model`: a folder (relative to `base`; when `inside` is given it must stay in it) holding
    config.json, or a hub id whose config.json is in the local cache."""
    folder = (base / model).resolve()
    if inside is not None and not folder.is_relative_to(inside.resolve()):
        raise HarnessError(f"model: {model!r} leaves the task folder; a profile from a task folder may name a "
                           f"folder inside it or a hub id in the local cache, or {_GIVE_PARAMS}", where, line)
    config = folder / "config.json" if (folder / "config.json").is_file() else None
    if config is None and looks_like_hub_id(model):
        config = _cached_config(model)
    if config is None:
        raise HarnessError(f"model: {model!r} is neither a folder with config.json nor a hub id in the local "
                           f"cache (nothing is downloaded); {_GIVE_PARAMS}", where, line)
    try:
        raw = config.read_bytes()[:MAX_CONFIG_BYTES + 1]
        cfg = json.loads(raw) if len(raw) <= MAX_CONFIG_BYTES else None
    except (OSError, ValueError, RecursionError):
        cfg = None
    n = decoder_params(cfg) if isinstance(cfg, dict) else None
    if n is None:
        raise HarnessError(f"model: cannot count parameters from {config} (not a dense decoder config this "
                           f"reads); {_GIVE_PARAMS}", where, line)
    return n
