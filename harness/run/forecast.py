"""How long a run will take, said before the first model loads.

The same demo takes 16 minutes on one 2-core CPU and an hour on another, so a fixed figure in the README helps
nobody. The forecast counts the tokens each arm will train on and answer (from the task's files and config;
words x TOKENS_PER_WORD, since the tokenizer is not loaded yet), turns them into FLOPs (answering 2 x params a
token, LoRA training 4 x params: forward plus the backward pass to the activations, less where
the lower layers carry no LoRA), and divides by this CPU's
own matrix-product speed (precision.py's probe, 0.1 s) times an efficiency measured on whole runs.

The efficiencies (achieved FLOP/s over the probe's) come from the coffee demo on three CPU kinds (bench/README.md):
bf16 LoRA training on an AVX512-BF16 EPYC ran at 0.19-0.29 of its bf16 probe, float32 training on an AVX2-only
EPYC at 0.36-0.50 of its float32 probe and on a Xeon with AMX at 0.32-0.40 of its; float32 answering at 0.9-1.2
(AVX512-BF16), 0.55 (AVX2) and about 0.6 (AMX) of the float32 probe. One constant each keeps the forecast within
about 1.4x on all three. A bf16 probe says little about bf16 training where the products are AMX's: 6x float32's
there, and the training no faster, which is why such a CPU trains in float32 (machine.bf16_training_pays)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.arms.catalog import (TRAINS_ON_DOCUMENTS, TRAINS_ON_PAIRS, TRAINS_WITH_PASSAGES, continue_cap,
                                   demonstrations, format_candidates, training_settings)
from harness.config import ArmConfig, TaskConfig
from harness.pairs.source import POOL_MARGIN
from harness.task.taught import all_built
from harness.task.types import Knowledge, QAPair, Task

TOKENS_PER_WORD = 1.4  # SmolLM2's tokenizer on coffee's English text
CHAT_OVERHEAD = 20  # tokens of chat-template preamble and role markers around a prompt
TRAIN_EFFICIENCY = {"bf16": 0.25, "float32": 0.35}
ANSWER_EFFICIENCY = 0.75
# On a GPU, shares of the bf16 matmul probe (gpu.matmul_tflops) a big model's run should achieve: LoRA training at
# a typical fine-tuning MFU, answering far below it, as decoding reads every weight per token for a few rows.
# Not measured: the only GPU runs so far (bench/README.md, one H200) used models too small to be FLOP-bound.
GPU_TRAIN_EFFICIENCY = 0.3
GPU_ANSWER_EFFICIENCY = 0.05
# What a small model costs on a GPU whatever its FLOPs, where kernel launches and Python steps set the pace:
# measured on one H200 with the transformers engine on coffee (bench/gpu_forecast.sh, bench/README.md), a SmolLM2
# shape (30 layers) and a Llama-3.1-8B shape cut to 4 layers. Training: seconds a trained token, a fixed part plus a
# part per layer (1.6 and 0.7 ms a token measured); answering: seconds a decoding step of a batch (60-115 ms
# measured at 200 rows), a batch being up to gpu.MAX_ANSWER_ROWS rows.
GPU_TRAIN_TOKEN_S = 0.55e-3
GPU_TRAIN_TOKEN_LAYER_S = 0.034e-3
GPU_DECODE_STEP_S = 0.09
NEW_TOKEN_SHARE = 0.75  # answers stop at a line break or end of turn: coffee's used 15-95% of max_new_tokens
LOAD_SECONDS = 20.0  # model and embedder load, the precision check, writing the report
# Pairs written from the documents: the share of candidate answers the filters keep (about 0.31 on coffee,
# bench/README.md), and each question writer's prompt: its demonstrations' sentences, answers and questions.
KEPT_SHARE = 0.31
# Pairs built from the parse: the share the filters keep, and what building takes on 2 cores (bench/README.md).
BUILT_KEPT_SHARE = 0.9
PARSER_LOAD_S = 6.0
ROUND_TRIP_S = 0.01
WRITER_PROMPT_WORDS = 200


@dataclass(frozen=True)
class ArmForecast:
    name: str
    train_tokens: int  # every epoch of the build and of the update's continuation
    answer_tokens: int  # prompt + generated, every phase and the demonstration choice
    seconds: float
    weights: str = "base"  # the arm's kind of weights, which says which training material its time grows with
    train_seconds: float = 0.0  # the part of `seconds` spent training: what a budget can shrink
    update_train_tokens: int = 0  # the part of `train_tokens` in the update's continuation, sampled apart


def _words(texts) -> float:
    texts = list(texts)
    return sum(len(t.split()) for t in texts) / max(1, len(texts))


def _overhead(arm: ArmConfig) -> int:
    return CHAT_OVERHEAD if arm.format == "chat" else 4


def _passage_words(task, cfg: TaskConfig) -> float:
    """A passage's mean words: a document shorter than a chunk is one short passage."""
    lengths = [len(d.text.split()) for d in task.knowledge.docs]
    return sum(min(n, cfg.retrieval.chunk_words) for n in lengths) / max(1, len(lengths))


def _prompt_tokens(arm: ArmConfig, cfg: TaskConfig, chunk: float, question_words: float, answer_words: float,
                   demos: int, passages_each: int, question_passages: int) -> float:
    words = question_words + (question_passages * chunk if arm.context == "retrieved" else 0)
    words += demos * (question_words + answer_words + passages_each * chunk)
    if arm.instruction:
        words += len((cfg.prompt.rag_instruction if arm.context == "retrieved" else cfg.prompt.system).split())
    return words * TOKENS_PER_WORD + _overhead(arm)


def _train_tokens(arm: ArmConfig, cfg: TaskConfig, task, chunk: float, pair_words: float) -> tuple[float, float]:
    """Tokens the optimiser sees, training examples x epochs: the build's and the update's continuation's."""
    k, u = task.knowledge, task.update
    epochs = training_settings(arm.weights, cfg, all_built(k.pairs)).epochs
    if arm.weights in TRAINS_ON_DOCUMENTS:
        doc = sum(len(d.text.split()) for d in k.docs) * TOKENS_PER_WORD
        new = sum(len(d.text.split()) for d in u.docs) * TOKENS_PER_WORD
        return doc * epochs, new * (1 + cfg.update.replay) * epochs
    if arm.weights not in TRAINS_ON_PAIRS or not k.pairs:
        return 0.0, 0.0
    row = pair_words * TOKENS_PER_WORD + _overhead(arm)
    n = len(k.pairs)
    if arm.weights in TRAINS_WITH_PASSAGES:
        row += cfg.retrieval.top_k * chunk * TOKENS_PER_WORD
        n = min(n, cfg.raft.max_examples)
    new = len(u.pairs)
    if arm.weights == "raft-lora":  # the update's RAFT examples are capped like the build's (pipeline.py)
        new = min(new, cfg.raft.max_examples)
    new *= 1 + cfg.update.replay  # a continuation on the update's pairs plus replay
    cap = continue_cap(arm.weights, cfg)
    new = new if cap is None else min(new, cap)
    return row * (n * (1 - cfg.finetune.eval_fraction)) * epochs, row * new * epochs


def pair_writing(task, cfg: TaskConfig, params: int, body_params: int, fp32: float,
                 pool: int | None = None) -> tuple[ArmForecast, Task]:
    """The pair writer's share of a run whose training pairs are generated, and the task with as many
    placeholder pairs as the filters should keep, so the trained arms' tokens are counted too. `pool`: only
    demonstrations read pairs, so only a pool of the original documents' is made (pairs/source.py)."""
    if cfg.pair_generation.writer == "parse":
        return _pairs_built(task, cfg, pool)
    from harness.pairs.candidates import candidates

    r, g = cfg.retrieval, cfg.pair_generation
    made = {}
    for part, docs in (("knowledge", task.knowledge.docs), ("update", task.update.docs if pool is None else ())):
        found = candidates(docs, r.chunk_words, r.chunk_overlap, g.candidates, g.per_chunk)[0] if docs else []
        found = found if pool is None else found[:POOL_MARGIN * pool]
        pairs = tuple(QAPair(f"What is {c.sentence.split()[0]} {c.answer}?", c.answer, c.doc, "generated")
                      for c in found[:round(len(found) * KEPT_SHARE)])
        made[part] = (len(found), Knowledge(getattr(task, part).docs, getattr(task, part).pairs + pairs))
    asked = made["knowledge"][0] + made["update"][0]
    prompt = WRITER_PROMPT_WORDS * TOKENS_PER_WORD
    new = cfg.generation.max_new_tokens * NEW_TOKEN_SHARE
    seconds = asked * (prompt * body_params + new * params) * 2 / (fp32 * ANSWER_EFFICIENCY * 1e9)
    planned = dataclasses.replace(task, knowledge=made["knowledge"][1], update=made["update"][1])
    return ArmForecast("pair writing", 0, int(asked * (prompt + new)), seconds), planned


def _pairs_built(task, cfg: TaskConfig, pool: int | None) -> tuple[ArmForecast, Task]:
    """Pairs built from the parse: built here for real (seconds, and cached for the run), the filters' share
    kept. The time is the parser's load and the round trip's embedding of every question."""
    from harness.pairs.construct import build, facts_of, per_fact

    r, g = cfg.retrieval, cfg.pair_generation
    made, asked = {}, 0
    for part in ("knowledge", "update"):
        k = getattr(task, part)
        docs = k.docs if pool is None or part == "knowledge" else ()
        items = per_fact(build(tuple(docs), r.chunk_words, r.chunk_overlap, g.facts_per_sentence).items,
                         g.phrasings) if docs else []
        if pool is not None:  # a pool's share of the facts, each with its phrasings
            items = items[:round(len(items) * min(1.0, POOL_MARGIN * pool / max(1, len(facts_of(items)))))]
        asked += len(items)
        pairs = tuple(QAPair(w.question, w.candidate.answer, w.candidate.doc, "generated")
                      for w in items[:round(len(items) * BUILT_KEPT_SHARE)])
        made[part] = Knowledge(k.docs, k.pairs + pairs)
    seconds = PARSER_LOAD_S + asked * ROUND_TRIP_S
    return ArmForecast("pair writing", 0, 0, seconds), dataclasses.replace(task, knowledge=made["knowledge"],
                                                                          update=made["update"])


def forecast(task, cfg: TaskConfig, table: dict[str, ArmConfig], names: list[str], params: int, body_params: int,
             speeds: tuple[float, float], train_bf16: bool, freshness: bool = True,
             gpu_layers: int = 0) -> list[ArmForecast]:
    """Per arm, the tokens it will train on and answer, and the seconds they should take here. `speeds`:
    (bf16, float32) GFLOP/s of this CPU's probe; `body_params`: parameters a prompt token passes through (the LM
    head runs at the last position only). `gpu_layers`: on a GPU, the model's layers, for the per-step floor
    (GPU_TRAIN_TOKEN_S and the others) under a small model's FLOPs."""
    bf16, fp32 = speeds
    train_speed = (bf16 if train_bf16 else fp32) * TRAIN_EFFICIENCY["bf16" if train_bf16 else "float32"] * 1e9
    answer_speed = fp32 * ANSWER_EFFICIENCY * 1e9
    pairs = list(task.knowledge.pairs)
    q_words = _words(q.question for q in task.test)
    a_words = _words(p.answer for p in pairs) if pairs else 3.0
    pair_words = _words(f"{p.question} {p.answer}" for p in pairs) if pairs else 12.0
    chunk = _passage_words(task, cfg)
    new_tokens = cfg.generation.max_new_tokens * NEW_TOKEN_SHARE
    n_test, n_fresh = len(task.test), len(task.fresh) if freshness else 0
    out = []
    for name in names:
        arm = table[name]
        want = demonstrations(arm, cfg)
        formats = format_candidates(arm, cfg)
        shown = formats[len(formats) // 2]  # "auto" picks one candidate: the middle one as a guess
        prompt = _prompt_tokens(arm, cfg, chunk, q_words, a_words, *shown)
        # Main phase, the fresh questions after the update, and the rebuilt phase: every question again for an
        # arm whose weights change; for the others only the prompts the update changed (the rest are reused).
        phases = [n_test] + ([n_fresh, n_test if arm.weights != "base" else n_fresh] if n_fresh else [])
        asked = sum(phases)
        answer = asked * (prompt * body_params + new_tokens * params) * 2
        choice = sum(cfg.demonstrations.eval_questions
                     * (_prompt_tokens(arm, cfg, chunk, q_words, a_words, *f) * body_params + new_tokens * params) * 2
                     for f in formats) if want == "auto" else 0
        build, update = _train_tokens(arm, cfg, task, chunk, pair_words)
        train = int(build + update)
        # Forward 2 x params a token; backward 2 x params through the layers that carry LoRA, and no further.
        layers = training_settings(arm.weights, cfg).lora_layers
        training = (2 + 2 * layers) * params * train / train_speed
        answering = (answer + choice) / answer_speed
        if gpu_layers:
            from harness.inference.gpu import MAX_ANSWER_ROWS  # torch: only on a GPU, where it is loaded

            training = max(training, train * (GPU_TRAIN_TOKEN_S + GPU_TRAIN_TOKEN_LAYER_S * gpu_layers))
            passes = sum(-(-n // MAX_ANSWER_ROWS) for n in phases if n)
            passes += len(formats) * -(-cfg.demonstrations.eval_questions // MAX_ANSWER_ROWS) if want == "auto" else 0
            answering = max(answering, passes * new_tokens * GPU_DECODE_STEP_S)
        out.append(ArmForecast(name, train, int(asked * (prompt + new_tokens)), answering + training, arm.weights,
                               training, int(update)))
    return out


def forecast_line(arms: list[ArmForecast], cpu_kind: str, planned: dict[str, float] | None = None,
                  scales: dict[str, float] | None = None, budget: float | None = None) -> str:
    """The estimate line; with `planned` (each part's seconds under a budget's plan, and `scales`, the share of
    its training each keeps), the full plan and the budgeted one side by side."""
    total = LOAD_SECONDS + sum(a.seconds for a in arms)

    def part(a: ArmForecast) -> str:
        if planned is None or abs(planned[a.name] - a.seconds) < 0.5:  # not cut (or by under a second)
            return f"{a.name} {a.seconds / 60:.1f}" + (f" (trains {a.train_tokens / 1e3:.0f}k tokens)"
                                                       if a.train_tokens else "")
        kept = a.train_tokens * (scales or {}).get(a.name, 1.0)
        return (f"{a.name} {a.seconds / 60:.1f} -> {planned[a.name] / 60:.1f} (trains {a.train_tokens / 1e3:.0f}k "
                f"-> {kept / 1e3:.0f}k tokens)")
    parts = ", ".join(part(a) for a in arms)
    answers = f"{sum(a.answer_tokens for a in arms) / 1e3:.0f}k answer tokens in all"
    if planned is None:
        return f"time estimate: ~{total / 60:.0f} min on this machine ({cpu_kind}); minutes per arm: {parts}; {answers}"
    fits = f"within a budget of {budget:g} min" if budget is not None else "as sampling sets it"
    mins = lambda s: f"{s / 60:.0f}" if s >= 600 else f"{s / 60:.1f}"  # noqa: E731  (a small budget's tenths)
    return (f"time estimate: ~{mins(total)} min in full, ~{mins(LOAD_SECONDS + sum(planned.values()))} min "
            f"planned {fits}, on this machine ({cpu_kind}); minutes per arm, full -> planned: {parts}; {answers}")


def gpu_speeds(tflops: float, gpus: int) -> tuple[float, float]:
    """The (bf16, float32) GFLOP/s pair `forecast` takes, for a `harness run` answering on `gpus` GPUs whose bf16
    probe measured `tflops` each: scaled so that forecast's CPU efficiencies turn them into GPU_TRAIN_EFFICIENCY of
    one GPU (`run` trains in one process; `harness train` under torchrun is not forecast) and
    GPU_ANSWER_EFFICIENCY of all `gpus` (vLLM's tensor parallelism), with training in bf16."""
    one = tflops * 1e3
    return (one * GPU_TRAIN_EFFICIENCY / TRAIN_EFFICIENCY["bf16"],
            one * max(1, gpus) * GPU_ANSWER_EFFICIENCY / ANSWER_EFFICIENCY)
