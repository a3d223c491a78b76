"""Optional answering through vLLM (`--engine vllm`) on CUDA machines that have it installed.

Same rendered prompts and greedy decoding as `generate.generate`; fine-tuned pipelines are served by vLLM's
LoRA support from the same cached adapter folder, so no merged copy is needed. Training stays with the Trainer.
"""
from __future__ import annotations

import time

from harness.errors import HarnessError
from harness.inference.generate import Generation, Messages, render
from harness.inference.models import ModelSource


def check_available(device: str) -> None:
    if not device.startswith("cuda"):
        raise HarnessError(f"--engine vllm needs a CUDA GPU; this run is on {device}. "
                           "Drop --engine (the transformers path runs everywhere)")
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise HarnessError("--engine vllm needs the vllm package: pip install '.[vllm]' "
                           "(or drop --engine to answer through transformers)") from None


class VllmEngine:
    def __init__(self, source: ModelSource, dtype: str, max_lora_rank: int, stop_ids: set[int],
                 plain_stop_ids: set[int] = frozenset()):
        from vllm import LLM

        model = f"{source.location}/{source.gguf_file}" if source.gguf_file else source.location
        self.llm = LLM(model=model, tokenizer=source.location if not source.gguf_file else None,
                       dtype=dtype, enable_lora=True,
                       max_lora_rank=max(8, max_lora_rank), seed=0)
        self.stop_ids, self.plain_stop_ids = sorted(stop_ids), sorted(plain_stop_ids | stop_ids)
        self._lora_ids: dict[str, int] = {}

    def generate(self, tokenizer, prompts: list[Messages], max_new_tokens: int,
                 adapter_path: str | None = None, template: str | None = None) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        texts = [render(tokenizer, m, template) for m in prompts]
        stops = self.plain_stop_ids if template is not None else self.stop_ids  # as generate.generate
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=stops)
        lora = None
        if adapter_path:
            lora_id = self._lora_ids.setdefault(adapter_path, len(self._lora_ids) + 1)
            lora = LoRARequest(f"adapter-{lora_id}", lora_id, adapter_path)
        t0 = time.perf_counter()
        outs = self.llm.generate(texts, params, lora_request=lora, use_tqdm=True)
        share = (time.perf_counter() - t0) / max(1, len(texts))
        return [Generation(o.outputs[0].text.strip(), len(o.prompt_token_ids), len(o.outputs[0].token_ids), share)
                for o in outs]
