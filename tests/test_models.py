"""Model sources, the plain prompt format for base models, memory estimates and the GPU-only refusals."""
import pytest
import torch
from jinja2 import Template

from harness.errors import HarnessError
from harness.run.memory import estimate, model_shape, run_estimate, training_row_tokens
from harness.inference.models import (GEMMA_MODEL, PLAIN_TEMPLATE, ModelSource, conversion_folder, pick_dtype,
                            prune_conversions, quantization_config, resolve_model)
from harness.inference.vllm_engine import check_available

# SmolLM2-135M's parameter count, from its model card's config (tied embeddings counted once): 49152 x 576
# embeddings + 30 layers of attention (576 x 576 x 2 + 576 x 192 x 2) and MLP (576 x 1536 x 3) + 61 norms x 576.
SMOLLM2_PARAMS = 134_515_008


def test_plain_template_writes_a_question_answer_transcript():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1?"},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2?"}]
    text = Template(PLAIN_TEMPLATE).render(messages=msgs, add_generation_prompt=True)
    assert text == "Be brief.\n\nQuestion: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer:"
    rag = [{"role": "user", "content": "Context:\n[1] x\n\nQuestion: Q?"}]
    assert Template(PLAIN_TEMPLATE).render(messages=rag, add_generation_prompt=True) == \
        "Context:\n[1] x\n\nQuestion: Q?\nAnswer:"


def test_both_embedded_models_resolve_and_their_shapes_read_from_the_gguf_header():
    small, gemma = resolve_model("smollm2-135m"), resolve_model(GEMMA_MODEL)
    assert small.gguf_file.endswith(".gguf") and gemma.gguf_file.endswith(".gguf")
    s, g = model_shape(small), model_shape(gemma)
    assert s.params == SMOLLM2_PARAMS and s.layers == 30 and s.hidden == 576 and s.vocab == 49152
    assert round(g.params / 1e6) == 268 and g.vocab == 262144


def test_one_gguf_file_converts_once_wherever_it_is_installed(tmp_path):
    """A fresh virtual environment holds the same file at a new path with a new mtime: it must find the conversion
    made from another one, and a file with other content must not."""
    import os
    import shutil
    from pathlib import Path

    small = resolve_model("smollm2-135m")
    copy = tmp_path / "venv2" / small.gguf_file
    copy.parent.mkdir()
    shutil.copyfile(Path(small.location) / small.gguf_file, copy)
    os.utime(copy, (1, 1))
    moved = ModelSource(small.label, str(copy.parent), small.gguf_file)
    assert conversion_folder(moved) == conversion_folder(small)
    with open(copy, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    assert conversion_folder(moved) != conversion_folder(small)


def test_a_new_conversion_removes_the_stale_ones_of_that_file_only(tmp_path):
    names = ["m.Q4-0123456789abcdef", "m.Q4-fedcba9876543210", "m.Q4-finetuned-0123456789abcdef",
             "other-0123456789abcdef", ".m.Q4-fedcba9876543210.77.partial"]
    for n in names:
        (tmp_path / n).mkdir()
    prune_conversions(tmp_path / "m.Q4-0123456789abcdef")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n in names if n != "m.Q4-fedcba9876543210")


def test_memory_estimate_counts_weights_copy_and_training():
    shape = model_shape(resolve_model("smollm2-135m"))
    train = estimate(shape, torch.float32, "cpu", 16, 7, 8, 80, finetunes=True)
    answer_only = estimate(shape, torch.float32, "cpu", 16, 7, 8, 80, finetunes=False)
    assert answer_only.total_gb == pytest.approx(0.538, abs=0.001)  # 134.5M float32 weights, nothing else
    assert train.total_gb > 2 * answer_only.total_gb  # a merged copy plus activations on top
    # The merged copy shares the 49,152 x 576 embeddings with the base (finetune.load_merged): 0.43 GB, not 0.54.
    assert train.merged_copy_gb == pytest.approx(0.538 - 49152 * 576 * 4 / 1e9, abs=0.001)
    assert train.fits and "memory estimate" in train.line()
    assert not estimate(shape, torch.float32, "cpu", 16, 7, 4096, 4096, True).fits


def test_memory_estimate_sizes_rows_by_the_arms_that_train_and_counts_the_bf16_copy():
    from harness.config import TaskConfig

    config = TaskConfig(name="t", description="d")
    qa = training_row_tokens(config, 30, {"qa-lora"})
    raft = training_row_tokens(config, 30, {"qa-lora", "raft-lora"})
    # a RAFT prompt carries top_k passages of chunk_words each: 3 x 120 words more than the pair alone, at 1.6
    # tokens a word, plus 24 for the chat template: 30 words -> 48 + 24 tokens, 390 -> 624 + 24
    assert (qa, raft) == (72, 648)
    assert training_row_tokens(config, 30, {"cpt-lora"}) == config.cpt.block_tokens
    shape = model_shape(resolve_model("smollm2-135m"))
    plain = estimate(shape, torch.float32, "cpu", 16, 7, 8, qa, finetunes=True)
    copied = estimate(shape, torch.float32, "cpu", 16, 7, 8, qa, finetunes=True, bf16_training_copy=True)
    assert copied.total_gb - plain.total_gb == pytest.approx(0.269, abs=0.001)  # 134.5M weights again in 2 bytes
    assert "bf16 training copy" in copied.line() and "bf16" not in plain.line()
    assert estimate(shape, torch.float32, "cpu", 16, 7, 8, raft, True).activations_gb > 5 * plain.activations_gb


def test_run_estimate_is_the_most_demanding_training_with_its_own_lora_layers():
    from harness.config import TaskConfig

    config = TaskConfig(name="t")
    top = config.model_copy(update={"raft": config.raft.model_copy(update={"lora_layers": 0.5})})
    shape = model_shape(resolve_model("smollm2-135m"))
    est = lambda c, w: run_estimate(shape, c, w, 30, torch.float32, "cpu")  # noqa: E731
    # RAFT's long rows set the run's peak, not the short Q&A rows trained beside them.
    assert est(config, {"base", "qa-lora", "raft-lora"}).total_gb == est(config, {"raft-lora"}).total_gb
    assert est(config, {"raft-lora"}).total_gb > est(config, {"qa-lora"}).total_gb
    # raft.lora_layers halves only RAFT's kept activations (less the logits' share); the fine-tune's are its own.
    logits = 648 * shape.vocab * 3 * 4 / 1e9
    assert est(top, {"raft-lora"}).activations_gb - logits == pytest.approx(
        (est(config, {"raft-lora"}).activations_gb - logits) / 2)
    assert est(top, {"qa-lora"}).total_gb == est(config, {"qa-lora"}).total_gb
    # Answering only: no merged copy, no training.
    assert est(config, {"base"}).activations_gb == 0 and est(config, {"base"}).merged_copy_gb == 0


def test_gpu_only_options_are_refused_on_cpu_with_the_fix():
    with pytest.raises(HarnessError, match="needs a CUDA GPU"):
        quantization_config(4, "cpu", ModelSource("x", "x"))
    with pytest.raises(HarnessError, match="GGUF"):
        quantization_config(4, "cuda", resolve_model("smollm2-135m"))
    with pytest.raises(HarnessError, match="needs a CUDA GPU"):
        check_available("cpu")
    assert quantization_config(None, "cpu", ModelSource("x", "x")) is None
    assert pick_dtype("auto", "cpu") == torch.float32 and pick_dtype("bfloat16", "cpu") == torch.bfloat16
