"""How much memory a run will need, estimated before any weights load, so a model that cannot fit is
reported in seconds rather than after minutes of loading and an out-of-memory kill."""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from harness.arms.batches import ACTIVATION_FLOATS, labelled_token_weight, micro_batch_rows
from harness.arms.recompute import recomputed_share
from harness.arms.catalog import TRAINS_ON_DOCUMENTS, TRAINS_WITH_PASSAGES, training_settings
from harness.config import TaskConfig
from harness.inference.devices import free_gpu_bytes, meta_parameters
from harness.inference.gpu import kv_width
from harness.inference.models import ModelSource

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class Shape:
    params: int
    hidden: int
    layers: int
    vocab: int
    kv_width: int = 0  # key/value heads x head size (less than hidden under grouped-query attention); 0: hidden


def read_gguf_header(path: Path) -> tuple[dict, list[tuple[str, list[int]]]]:
    """The GGUF header only: metadata (arrays summarised by their length) and each tensor's name and
    dimensions. gguf.GGUFReader parses every token string (25 s for Gemma's 262k vocabulary); here
    strings are skipped by length, so the header takes well under a second."""
    with path.open("rb") as f:
        def num(code: int):
            fmt = "<" + _SCALAR[code]
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(num(10)).decode("utf-8", "replace")

        def value(code: int):
            if code == _STRING:
                return string()
            if code != _ARRAY:
                return num(code)
            item, count = num(4), num(10)
            if item == _STRING:
                for _ in range(count):
                    f.seek(num(10), 1)
            else:
                f.seek(count * struct.calcsize(_SCALAR[item]), 1)
            return count  # arrays are summarised by their length (the vocabulary size for token lists)

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        num(4)  # version
        n_tensors, n_kv = num(10), num(10)
        meta = {}
        for _ in range(n_kv):
            key = string()
            meta[key] = value(num(4))
        tensors = []
        for _ in range(n_tensors):
            name = string()
            dims = [num(10) for _ in range(num(4))]
            num(4), num(10)  # type, offset
            tensors.append((name, dims))
    return meta, tensors


def _gguf_shape(path: Path) -> Shape:
    meta, tensors = read_gguf_header(path)
    arch = meta.get("general.architecture", "")
    return Shape(sum(math.prod(dims) for _, dims in tensors), int(meta.get(f"{arch}.embedding_length", 0)),
                 int(meta.get(f"{arch}.block_count", 0)), int(meta.get("tokenizer.ggml.tokens", 0)))


def _hf_shape(source: ModelSource, trust_remote_code: bool) -> Shape:
    """Counts parameters on the meta device: only config.json is read, no weights."""
    cfg, params = meta_parameters(source.location, trust_remote_code)
    text = cfg.get_text_config()
    return Shape(params, text.hidden_size, text.num_hidden_layers, text.vocab_size, kv_width(text))


def model_shape(source: ModelSource, trust_remote_code: bool = False) -> Shape | None:
    try:
        if source.gguf_file:
            return _gguf_shape(Path(source.location) / source.gguf_file)
        return _hf_shape(source, trust_remote_code)
    except Exception:  # an estimate must never stop a run that the loader itself might manage
        return None


def training_row_tokens(config: TaskConfig, pair_words: int, weights: set[str]) -> int:
    """The longest training row the selected arms' adapters will see, in tokens (about 1.6 per word): a Q&A
    pair; a RAFT prompt carries retrieval.top_k passages beside it; a cpt block is block_tokens long."""
    words = pair_words
    if not TRAINS_WITH_PASSAGES.isdisjoint(weights):
        words += config.retrieval.top_k * config.retrieval.chunk_words
    rows = [int(words * 1.6) + 24]
    if not TRAINS_ON_DOCUMENTS.isdisjoint(weights):
        rows.append(config.cpt.block_tokens)
    return max(rows)


@dataclass(frozen=True)
class Estimate:
    weights_gb: float
    merged_copy_gb: float
    lora_gb: float
    activations_gb: float
    available_gb: float
    device: str
    training_copy_gb: float = 0.0  # a bf16 copy of the base that LoRA may train on (precision.py)
    kv_cache_gb: float = 0.0  # answering's key/value cache, on CUDA: a batch (transformers) or a full context (vLLM)
    engine_gb: float = 0.0  # vLLM's own weights and runtime; 0 without vLLM
    gpus: int = 1  # the GPUs the figures are summed over

    @property
    def total_gb(self) -> float:
        training = self.weights_gb + self.merged_copy_gb + self.lora_gb + self.activations_gb + self.training_copy_gb
        if not self.engine_gb:
            return training + self.kv_cache_gb
        # Training and vLLM take the GPUs in turns (vllm_engine.py): the peak is the larger of the two.
        return max(training, self.engine_gb + self.kv_cache_gb)

    @property
    def fits(self) -> bool:
        return self.total_gb < self.available_gb

    def line(self) -> str:
        return (f"memory estimate: ~{self.total_gb:.1f} GB on {self.device} (weights {self.weights_gb:.1f} + "
                f"merged fine-tune copy {self.merged_copy_gb:.1f} + "
                + (f"bf16 training copy {self.training_copy_gb:.1f} + " if self.training_copy_gb else "")
                + f"LoRA and optimizer {self.lora_gb:.2f} + training activations {self.activations_gb:.1f}"
                + (f"; answering KV cache {self.kv_cache_gb:.1f}" if self.kv_cache_gb else "")
                + (f"; vLLM, in turn with training, {self.engine_gb:.1f} + its cache" if self.engine_gb else "")
                + f"); available {self.available_gb:.1f} GB"
                + (f" across {self.gpus} GPUs" if self.gpus > 1 else ""))


def available_gb(device: str, gpus: int = 1) -> float:
    """Free memory on `device`: on CUDA summed over the first `gpus` visible GPUs (those the run spreads over)."""
    if device.startswith("cuda"):
        return sum(free_gpu_bytes()[:max(1, gpus)]) / 1e9
    return psutil.virtual_memory().available / 1e9


def answer_cache_gb(shape: Shape, dtype: torch.dtype, tokens: int) -> float:
    """Key/value cache of `tokens` answering tokens, every layer, at the answering dtype."""
    return 2 * shape.layers * (shape.kv_width or shape.hidden) * tokens * torch.finfo(dtype).bits / 8 / 1e9


def vllm_gb(shape: Shape, gpus: int) -> float:
    """vLLM's own copy of the weights (bf16) and its runtime (CUDA graphs, activations: about 1 GB a GPU)."""
    return shape.params * 2 / 1e9 + 1.0 * gpus


def estimate(shape: Shape, dtype: torch.dtype, device: str, lora_rank: int, n_targets: int, batch: int,
             seq_len: int, finetunes: bool, quant_bits: int | None = None,
             bf16_training_copy: bool = False, lora_layers: float = 1.0, answer_tokens: int = 0,
             engine: str = "transformers", gpus: int = 1) -> Estimate:
    """Rough on purpose (within about 2x): weights at their dtype, a second merged copy for the fine-tuned
    pipelines, LoRA weights with grads and two Adam moments in float32, and the training activations
    that dominate small models: ~34 floats per token per layer per hidden unit plus the logits, kept
    three times over (logits, softmax, grad); `batch` is the rows computed at once (a micro-batch, batches.py).
    `bf16_training_copy`: `--dtype auto` on a CPU may train on one. On CUDA, also the answering KV cache of
    `answer_tokens` and, with `engine` vllm, vLLM's copy (no merged copy then: it serves the adapters itself), with
    activations at the run's dtype and the free memory summed over `gpus`.
    Measured on coffee (2026-11-27): 16.7 GB estimated for RAFT rows of 8 x 652 tokens; the run peaked at 12.8 GB."""
    bytes_per = quant_bits / 8 if quant_bits else torch.finfo(dtype).bits / 8
    weights = shape.params * bytes_per / 1e9
    lora = activ = merged = 0.0
    cuda, vllm = device.startswith("cuda"), engine == "vllm"
    # CPU runs keep float32 activations whatever the weights (and their estimates stay as measured).
    act_bytes = torch.finfo(dtype).bits / 8 if cuda else 4
    if finetunes:
        # The merged copy shares the embeddings (and a tied head) with the base (finetune.load_merged).
        merged = 0.0 if vllm else (shape.params - shape.vocab * shape.hidden) * torch.finfo(dtype).bits / 8 / 1e9
        lora = shape.layers * n_targets * lora_rank * 2 * shape.hidden * 16 / 1e9
        tokens = batch * seq_len
        # Only the layers that carry LoRA keep activations for the backward pass (finetune.lora_layers).
        kept = tokens * shape.layers * lora_layers * shape.hidden * ACTIVATION_FLOATS
        activ = (kept + tokens * shape.vocab * 3) * act_bytes / 1e9
    copy = shape.params * 2 / 1e9 if finetunes and bf16_training_copy else 0.0
    kv = answer_cache_gb(shape, dtype, answer_tokens) if cuda else 0.0
    return Estimate(weights, merged, lora, activ, available_gb(device, gpus), device, copy, kv,
                    vllm_gb(shape, gpus) if cuda and vllm else 0.0, gpus)


def run_estimate(shape: Shape, config: TaskConfig, weights: set[str], pair_words: int, dtype: torch.dtype,
                 device: str, quant_bits: int | None = None, bf16_training_copy: bool = False,
                 engine: str = "transformers", gpus: int = 1) -> Estimate:
    """The estimate for a run whose arms use these kinds of `weights`: the most demanding training among them
    (its own rows, micro-batches and LoRA layers, from training_settings), or answering alone if none trains.
    On CUDA no micro-batching is assumed (batches.token_budget sizes it from free memory, usually to none)."""
    from harness.inference.vllm_engine import LONGEST_CONTEXT

    gen = config.generation
    out = []
    for w in (weights - {"base"}) or {"base"}:
        trains = w != "base"
        row = training_row_tokens(config, pair_words, {w} if trains else set())
        ft = training_settings(w, config)
        # A cpt block labels every token (its logits count too); a Q&A or RAFT row only its short answer.
        labelled = row if w in TRAINS_ON_DOCUMENTS else 0
        weight = labelled_token_weight(shape.vocab, shape.hidden, shape.layers)
        budget = ft.micro_batch_tokens if device == "cpu" else 0
        micro = micro_batch_rows([row], ft.batch_size, budget, [labelled], weight)
        # A row over the budget recomputes part of its layers' activations instead of keeping them (recompute.py).
        kept = 1 - recomputed_share(micro * row, micro * labelled, budget, weight)
        # vLLM's cache holds at least one full context; transformers' one batch at the configured budget.
        answering = LONGEST_CONTEXT if engine == "vllm" else max(gen.batch_tokens, gen.batch_size * row)
        out.append(estimate(shape, dtype, device, ft.lora_rank, len(ft.target_modules), micro, row, trains, quant_bits,
                            bf16_training_copy=bf16_training_copy, lora_layers=ft.lora_layers * kept,
                            answer_tokens=answering, engine=engine, gpus=gpus))
    return max(out, key=lambda e: e.total_gb)
