"""Issue 45's GPU sizing and vLLM answering, proven where a CPU can: the pure sizing rules from given free-memory
numbers, the engine choice, GPU-hour pricing, and vLLM's answers going through the one answer log.

vLLM cannot run here (no CUDA, no vllm package), so the answer-log test drives VllmEngine with its one vLLM call
(`complete`) answered by the tiny real model's greedy `generate` instead: everything around that call (rendering,
token ids, stop tokens, decoding, the log) is the engine's own code. bench/gpu_check.sh runs the real thing."""
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig

from harness.inference.answerlog import AnswerLog
from harness.inference.generate import generate, render
from harness.inference.gpu import (VLLM_HEADROOM_BYTES, answer_batch, kv_bytes_per_token, tensor_parallel,
                                   training_token_budget, vllm_memory_share)
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model, stop_token_ids
from harness.inference.vllm_engine import VllmEngine, VllmSettings, choose_engine, llm_arguments, lora_rank_slot
from harness.run.experiment import answer_namespace
from harness.run.forecast import (ANSWER_EFFICIENCY, GPU_ANSWER_EFFICIENCY, GPU_TRAIN_EFFICIENCY, TRAIN_EFFICIENCY,
                                  gpu_speeds)
from harness.run.memory import Estimate
from harness.run.record import Prices

GB = 10**9


def test_auto_engine_is_vllm_only_on_cuda_with_vllm_installed():
    assert choose_engine("auto", "cuda", installed=True) == "vllm"
    assert choose_engine("auto", "cuda:0", installed=False) == "transformers"
    assert choose_engine("auto", "cpu", installed=True) == "transformers"
    assert choose_engine("auto", "cuda", gguf=True, installed=True) == "transformers"
    assert choose_engine("transformers", "cuda", installed=True) == "transformers"  # an explicit choice stands
    assert choose_engine("vllm", "cpu", installed=False) == "vllm"  # refused later, by check_available


def test_tensor_parallel_takes_every_gpu_the_heads_split_over():
    assert tensor_parallel(8, 32, 8) == 8  # Llama-3.1-8B on 8 GPUs
    assert tensor_parallel(8, 64, 8) == 8  # 70B
    assert tensor_parallel(3, 32, 8) == 2
    assert tensor_parallel(8, 12, 4) == 4
    assert tensor_parallel(8, 14, 2) == 2  # Qwen2.5-0.5B: 14 query heads, 2 key/value heads
    assert tensor_parallel(1, 32, 8) == 1 and tensor_parallel(0, 32, 8) == 1


def test_vllm_arguments_sized_from_the_gpus_and_overridable():
    config = LlamaConfig(num_attention_heads=32, num_key_value_heads=8, hidden_size=4096,
                         max_position_embeddings=131072)
    free, total = [70 * GB] * 7 + [60 * GB], [80 * GB] * 8
    args = llm_arguments(config, VllmSettings(max_loras=6), 8, free, total)
    # The fullest GPU decides: vLLM refuses to start where a GPU has less free than the share asks.
    assert args["tensor_parallel_size"] == 8
    assert args["gpu_memory_utilization"] == round((60 * GB - VLLM_HEADROOM_BYTES) / (80 * GB), 3)
    assert args["max_model_len"] == 8192 and args["max_loras"] == 6
    assert vllm_memory_share([79 * GB], [80 * GB]) == 0.92  # never the whole GPU
    assert [lora_rank_slot(r) for r in (4, 8, 12, 16, 64)] == [8, 8, 16, 16, 64]
    given = llm_arguments(config, VllmSettings(2, 0.5, 4096), 8, free, total)
    assert (given["tensor_parallel_size"], given["gpu_memory_utilization"], given["max_model_len"]) == (2, 0.5, 4096)


def test_answer_batches_from_free_memory_on_a_gpu_and_as_configured_on_a_cpu():
    assert answer_batch(16, 5120, None, 123) == (16, 5120)  # a CPU: the task's figures, unchanged
    config = LlamaConfig(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=4096)
    kv = kv_bytes_per_token(config, 2)
    assert kv == 2 * 32 * 8 * 128 * 2  # 128 KiB a token for Llama-3.1-8B in bf16
    rows, tokens = answer_batch(16, 5120, 40 * GB, kv)
    assert tokens == int(40 * GB * 0.4) // kv  # ~122k tokens of cache
    assert rows == min(256, tokens // 2048) and rows > 16
    assert answer_batch(16, 5120, 10**6, kv)[0] == 1  # nearly full: one row at a time, never none


def test_training_budget_from_free_memory_turns_micro_batching_off():
    assert training_token_budget(512, None, 10**6) == 512  # a CPU keeps finetune.micro_batch_tokens
    assert training_token_budget(512, 40 * GB, 10**6) == 20_000
    from harness.arms.batches import micro_batch_rows

    # Coffee's RAFT rows (8 x 652 tokens) for SmolLM2 split on a CPU, and are computed whole with 60 GB free;
    # an 8B model's (32 layers x 4096, bf16) take half the batch at a time there.
    assert micro_batch_rows([652] * 8, 8, 384) == 1
    assert micro_batch_rows([652] * 8, 8, training_token_budget(384, 60 * GB, 30 * 576 * 34 * 2)) == 8
    assert micro_batch_rows([652] * 8, 8, training_token_budget(384, 60 * GB, 32 * 4096 * 34 * 2)) == 4


def test_gpu_hours_price_every_gpu_the_run_holds():
    p = Prices(cpu_hour_usd=0.1, gpu_hour_usd=2.0, hour_usd=None, per_million_tokens_usd=0.0)
    assert p.on("cuda", 8) == {"hour_usd": 16.0, "per_million_tokens_usd": 0.0, "gpus": 8}
    assert p.on("cuda:0")["hour_usd"] == 2.0
    assert p.on("cpu", 8) == {"hour_usd": 0.1, "per_million_tokens_usd": 0.0}  # CPU runs as before
    assert Prices(0.1, 2.0, 30.0, 0.0).on("cuda", 8)["hour_usd"] == 30.0  # --hour-usd prices whatever ran


def test_gpu_time_forecast_speeds():
    train, answer = gpu_speeds(900.0, 8)  # H100 dense bf16 probe ~900 TFLOP/s
    assert train * TRAIN_EFFICIENCY["bf16"] == pytest.approx(900e3 * GPU_TRAIN_EFFICIENCY)  # one GPU trains
    assert answer * ANSWER_EFFICIENCY == pytest.approx(8 * 900e3 * GPU_ANSWER_EFFICIENCY)  # all eight answer


def test_memory_estimate_counts_vllm_in_turn_with_training():
    hf = Estimate(16, 0, 0.5, 10, 8 * 75, "cuda", kv_cache_gb=1)
    assert hf.total_gb == pytest.approx(27.5)
    with_vllm = Estimate(16, 0, 0.5, 10, 8 * 75, "cuda", kv_cache_gb=1, engine_gb=24, gpus=8)
    assert with_vllm.total_gb == pytest.approx(26.5)  # training's 26.5 against vLLM's 25: the larger
    assert "vLLM" in with_vllm.line() and "across 8 GPUs" in with_vllm.line()


class GreedyBackedEngine(VllmEngine):
    """VllmEngine with its one vLLM call answered by a real model's greedy generate (no vLLM here)."""

    def __init__(self, model, tokenizer, **kw):
        super().__init__(resolve_model(DEFAULT_MODEL), "float32", 8, stop_token_ids(model, tokenizer), **kw)
        self.model, self.sent = model, []

    def complete(self, prompts, max_new_tokens, stops, adapter_path):
        self.sent += prompts
        out = []
        for ids in prompts:
            seq = self.model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False,
                                      eos_token_id=sorted(stops))
            out.append(seq[0, len(ids):].tolist())
        return out


@pytest.fixture(scope="module")
def smol():
    return load_generator(resolve_model(DEFAULT_MODEL))


def test_vllm_answers_go_through_the_answer_log(smol, tmp_path: Path):
    model, tok = smol
    prompts = [[{"role": "user", "content": q}] for q in ("What is 2 + 2?", "Name a colour.", "Who wrote Hamlet?")]
    engine, cache = GreedyBackedEngine(model, tok), tmp_path / "answers.jsonl"
    vllm_ns, tf_ns = answer_namespace(engine.source, model, "vllm"), answer_namespace(engine.source, model)
    assert vllm_ns != tf_ns  # each engine keeps its own answers

    first = engine.generate(tok, prompts, 8, log=AnswerLog(tmp_path / "run.log", cache, vllm_ns), model_tag="base")
    # Token ids exactly as the transformers path tokenizes the rendered chat: no BOS added on top of the template's.
    assert engine.sent == [tok(render(tok, m), add_special_tokens=False).input_ids for m in prompts]
    # --resume: the run's own log answers every prompt; nothing reaches the engine.
    resumed = engine.generate(tok, prompts, 8, log=AnswerLog(tmp_path / "run.log", None, vllm_ns), model_tag="base")
    assert resumed == first and len(engine.sent) == len(prompts)
    # A later run reuses the shared cache the same way.
    later = AnswerLog(tmp_path / "run2.log", cache, vllm_ns)
    assert engine.generate(tok, prompts, 8, log=later, model_tag="base") == first and later.reused == len(prompts)

    # The transformers engine answers through the same cache file, under its own namespace: greedy both, the same
    # words here, but not taken from vLLM's entries.
    tf_log = AnswerLog(tmp_path / "run3.log", cache, tf_ns)
    ours = generate(model, tok, prompts, 8, 4, log=tf_log, model_tag="base")
    assert [g.text for g in ours] == [g.text for g in first] and tf_log.reused == 0
    assert len(cache.read_text().splitlines()) == 2 * len(prompts)


def test_a_pipeline_answers_through_the_engine_and_its_log(smol, tmp_path: Path):
    from harness.arms.pipeline import Shared, make_pipeline
    from harness.task.folder import load_task

    model, tok = smol
    task = load_task(Path(__file__).parent / "fixtures" / "tiny")
    engine = GreedyBackedEngine(model, tok)
    log = AnswerLog(tmp_path / "run.log", None, "ns")
    pipe = make_pipeline("base", Shared(model, tok, None, task.config, DEFAULT_MODEL, tmp_path, log, engine=engine))
    questions = [q.question for q in task.test][:3]
    answers = pipe.answer(questions)
    assert len(engine.sent) == 3 and len(log.done) == 3  # answered by the engine, logged by the pipeline's log
    assert [a.text for a in pipe.answer(questions)] == [a.text for a in answers] and len(engine.sent) == 3
