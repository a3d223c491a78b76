"""Answering through vLLM: the default engine on CUDA machines that have it installed (`--engine auto`).

Same rendered prompts, tokenized as `generate.generate` tokenizes them (the rendered chat already carries the BOS
its template puts there, so the ids go to vLLM as they are: no second BOS), greedy decoding, the same stop tokens
and the same answer log. Fine-tuned arms are served by vLLM's LoRA support from the cached adapter folders, so no
merged copy is needed; training stays with the Trainer.

GPU memory is taken in turns. The LLM is built at the first answer, once the pipeline has moved what only
training used off the GPU (pipeline.Shared.engine_turn), with its reservation sized from the memory then free;
before a later arm trains, it is put to sleep (weights to host memory, KV cache dropped: vLLM's sleep mode) and
woken at that arm's first answer.

Answers are keyed in the one answer cache by an answer namespace that names the engine (experiment.answer_namespace):
vLLM's kernels are not transformers', and greedy answers of the two may differ in a last token, so each engine
resumes and reuses its own answers, through the same code (answerlog.answer_through).

Only `VllmEngine.llm` and `VllmEngine.complete` call vLLM; everything else here runs, and is tested, without it.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.inference.answerlog import AnswerLog, answer_through
from harness.inference.chat import encode
from harness.inference.devices import visible_gpus
from harness.inference.generate import Generation, Messages, render
from harness.inference.gpu import empty_gpu_cache, tensor_parallel, vllm_memory_share
from harness.inference.models import ModelSource

log = logging.getLogger(__name__)
LONGEST_CONTEXT = 8192  # max_model_len's default ceiling: this harness's prompts are a few passages long


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(requested: str, device: str, gguf: bool = False, installed: bool | None = None) -> str:
    """`--engine auto`: vLLM on CUDA where it is installed, else transformers; an explicit choice stands. A GGUF
    model stays with transformers under auto: vLLM's GGUF loading is experimental and serves no LoRA on it."""
    if requested != "auto":
        return requested
    installed = vllm_installed() if installed is None else installed
    return "vllm" if device.startswith("cuda") and installed and not gguf else "transformers"


def check_available(device: str) -> None:
    if not device.startswith("cuda"):
        raise HarnessError(f"--engine vllm needs a CUDA GPU; this run is on {device}. "
                           "Drop --engine (the transformers path runs everywhere)")
    if not vllm_installed():
        raise HarnessError("--engine vllm needs the vllm package: pip install '.[vllm]' "
                           "(or drop --engine to answer through transformers)")


@dataclass(frozen=True)
class VllmSettings:
    """What `harness run` may override (--tensor-parallel-size, --gpu-memory-utilization, --max-model-len); None
    sizes it at build time: every visible GPU that splits the model's heads, the memory free then, and the model's
    own context up to LONGEST_CONTEXT. `max_loras`: adapters held at once, one per trained arm, seed and rebuild."""

    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    max_loras: int = 1


def llm_arguments(config, settings: VllmSettings, gpus: int, free: list[int], total: list[int]) -> dict:
    """vLLM's sizing arguments for a model with this (HF) config, from the visible GPUs and their free and total
    bytes: a pure function, so the defaults are tested without a GPU."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    tp = settings.tensor_parallel_size or tensor_parallel(gpus, text.num_attention_heads,
                                                         getattr(text, "num_key_value_heads", None))
    share = settings.gpu_memory_utilization or vllm_memory_share(free[:tp], total[:tp])
    longest = getattr(text, "max_position_embeddings", None) or LONGEST_CONTEXT
    return {"tensor_parallel_size": tp, "gpu_memory_utilization": share,
            "max_model_len": settings.max_model_len or min(longest, LONGEST_CONTEXT),
            "max_loras": max(1, settings.max_loras), "max_cpu_loras": max(1, settings.max_loras)}


def lora_rank_slot(rank: int) -> int:
    """vLLM's max_lora_rank for adapters of `rank`: it takes powers of two from 8 up."""
    return max(8, 1 << (max(1, rank) - 1).bit_length())


class VllmEngine:
    name = "vllm"

    def __init__(self, source: ModelSource, dtype: str, max_lora_rank: int, stop_ids: set[int],
                 plain_stop_ids: set[int] = frozenset(), settings: VllmSettings = VllmSettings()):
        self.source, self.dtype, self.max_lora_rank, self.settings = source, dtype, max_lora_rank, settings
        self.stop_ids, self.plain_stop_ids = set(stop_ids), set(plain_stop_ids) | set(stop_ids)
        self._llm = None
        self._asleep = False
        self._lora_ids: dict[str, int] = {}
        self.arguments: dict = {}  # what the LLM was built with, for run.json

    def generate(self, tokenizer, prompts: list[Messages], max_new_tokens: int, adapter_path: str | None = None,
                 template: str | None = None, log: AnswerLog | None = None, model_tag: str = "") -> list[Generation]:
        """Answers in prompt order, through the answer log as generate.generate's are (keyed by the same rendered
        text, model tag and token budget)."""
        texts = [render(tokenizer, m, template) for m in prompts]
        ids = [encode(tokenizer, t) for t in texts]
        stops = self.plain_stop_ids if template is not None else self.stop_ids  # as generate.generate
        keys = [log.key(model_tag, t, max_new_tokens) if log else "" for t in texts]

        def produce(todo: list[int]) -> list[Generation]:
            t0 = time.perf_counter()
            outs = self.complete([ids[i] for i in todo], max_new_tokens, stops, adapter_path)
            share = (time.perf_counter() - t0) / max(1, len(todo))
            return [decoded(tokenizer, seq, stops, len(ids[i]), share) for i, seq in zip(todo, outs)]
        return answer_through(log, keys, produce)

    def llm(self):
        """The LLM, built on first use (or woken from sleep), sized from the GPUs' memory free at that moment."""
        if self._llm is None:
            import os

            import torch
            from transformers import AutoConfig
            # CUDA is already initialised in this process (training, the embedder): tensor-parallel workers
            # must start fresh rather than fork it.
            os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
            from vllm import LLM

            empty_gpu_cache()
            config = AutoConfig.from_pretrained(self.source.location, gguf_file=self.source.gguf_file)
            n = visible_gpus()
            free_total = [torch.cuda.mem_get_info(i) for i in range(n)]
            self.arguments = llm_arguments(config, self.settings, n, [f for f, _ in free_total],
                                           [t for _, t in free_total])
            log.info("building the vLLM engine: %s", self.arguments)
            model = f"{self.source.location}/{self.source.gguf_file}" if self.source.gguf_file else self.source.location
            self._llm = LLM(model=model, tokenizer=self.source.location if not self.source.gguf_file else None,
                            dtype=self.dtype, enable_lora=True, max_lora_rank=lora_rank_slot(self.max_lora_rank),
                            seed=0, enable_sleep_mode=True, **self.arguments)
        elif self._asleep:
            empty_gpu_cache()
            self._llm.wake_up()
        self._asleep = False
        return self._llm

    def sleep(self) -> None:
        """Give the GPU memory back before a training: weights to host memory, the KV cache dropped."""
        if self._llm is not None and not self._asleep:
            self._llm.sleep(level=1)
            self._asleep = True

    def complete(self, prompts: list[list[int]], max_new_tokens: int, stops: set[int],
                 adapter_path: str | None) -> list[list[int]]:
        """Each prompt's greedy continuation, in token ids: the one call into vLLM."""
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=sorted(stops),
                                skip_special_tokens=True)
        lora = None
        if adapter_path:
            lora_id = self._lora_ids.setdefault(adapter_path, len(self._lora_ids) + 1)
            lora = LoRARequest(f"adapter-{lora_id}", lora_id, adapter_path)
        outs = self.llm().generate([{"prompt_token_ids": p} for p in prompts], params, lora_request=lora,
                                   use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]


def decoded(tokenizer, seq: list[int], stops: set[int], prompt_tokens: int, seconds: float) -> Generation:
    """The answer up to its first stop token, decoded as generate.generate decodes its own."""
    n = next((k for k, t in enumerate(seq) if t in stops), len(seq))
    return Generation(tokenizer.decode(seq[:n], skip_special_tokens=True).strip(), prompt_tokens, n, seconds)
