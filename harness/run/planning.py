"""Before any model loads: the time forecast, calibrated on this machine, and the plan a budget fits the run to;
after the run: what the plan really sampled (run.json's `budget`) and the measured time (calibration.py).

The plan reaches the run as the config's `sampling` section, so the pair generation and the arms sample where
they make their material, the adapters are cached by what they trained on, and run.json's config repeats it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from harness.arms.catalog import TRAINS_ON_PAIRS, TRAINS_WITH_PASSAGES, arms, demonstration_pool, pair_users
from harness.arms.training_data import MIN_BLOCKS
from harness.config import SamplingConfig, TaskConfig
from harness.errors import HarnessError
from harness.pairs.construct import build, fact, per_fact
from harness.pairs.source import PARSE, generates
from harness.run import budget as planner, calibration
from harness.run.forecast import BUILT_KEPT_SHARE, TOKENS_PER_WORD, ArmForecast, forecast, forecast_line, pair_writing
from harness.run.files import unfinished_budget_plan
from harness.task.types import Task
from harness.task.taught import GENERATED

QA_WEIGHTS = TRAINS_ON_PAIRS - TRAINS_WITH_PASSAGES  # the fine-tune's pairs, without RAFT's passages
NO_FORECAST = ("the budget is not planned: the time forecast it needs runs only on a CPU or CUDA, for a model whose "
               "shape can be read before loading; every arm trains on all of its material")


@dataclass(frozen=True)
class Ahead:
    """What the forecast says before loading: the line to print, the config the run follows (the task's, with the
    plan's `sampling`), the plan, and run.json's record of both."""

    line: str
    config: TaskConfig
    plan: planner.Plan
    record: dict


def material(task: Task, config: TaskConfig) -> planner.Material:
    """The full plan's training material, as the forecast counts it: cpt's blocks from the words, and the
    generated pairs (the forecast's placeholders for the ones the writer will keep) with the facts they ask."""
    tokens = int(sum(len(d.text.split()) for d in task.knowledge.docs) * TOKENS_PER_WORD)
    block = max(16, min(config.cpt.block_tokens, tokens // MIN_BLOCKS))
    made = [p for p in task.knowledge.pairs if p.origin == GENERATED]
    facts = len(made)  # the model writer asks one question a fact
    if made and config.pair_generation.writer == PARSE:
        r, g = config.retrieval, config.pair_generation
        items = per_fact(build(tuple(task.knowledge.docs), r.chunk_words, r.chunk_overlap, g.facts_per_sentence)
                         .items, g.phrasings)
        facts = round(len({fact(w) for w in items}) * BUILT_KEPT_SHARE)
    update = sum(p.origin == GENERATED for p in task.update.pairs)
    return planner.Material(math.ceil(tokens / block) if tokens else 0, tokens, len(task.knowledge.pairs) - len(made),
                            len(made), facts, config.raft.max_examples, len(task.update.pairs) - update, update)


def _scaled(part: ArmForecast, ratio: float) -> ArmForecast:
    return dataclasses.replace(part, seconds=part.seconds * ratio, train_seconds=part.train_seconds * ratio)


def _plan(parts: list[ArmForecast], m: planner.Material, config: TaskConfig, budget: float | None,
          recorded: planner.Plan | None) -> planner.Plan:
    """A resumed run's recorded plan, else the budget's, else the config's own `sampling` (set by hand)."""
    if recorded is not None:
        return recorded
    if budget is not None:
        if not (math.isfinite(budget) and budget > 0):
            raise HarnessError(f"--budget {budget:g}: give the minutes the run may take, a number above 0")
        return planner.fit(parts, m, budget)
    s = config.sampling
    return planner.Plan(s.cpt_tokens, s.facts, s.raft_examples)


def forecast_parts(task: Task, config: TaskConfig, names: list[str], shape, speeds: tuple[float, float],
                   train_bf16: bool, freshness: bool, on_gpu: bool = False) -> tuple[list[ArmForecast], planner.Material]:
    """Every part's forecast (forecast.py: the pair writing when pairs are made, then each arm) for a model of
    `shape` (memory.py's), and the full plan's material. `on_gpu`: with the GPU's per-step floor."""
    # A prompt token passes through every parameter but the LM head's, which runs at the last position only.
    body = max(shape.params - shape.vocab * shape.hidden, shape.params // 2)
    writing = []
    if generates(task, config) and pair_users(config, names):
        ahead, task = pair_writing(task, config, shape.params, body, speeds[1], demonstration_pool([config], names))
        writing = [ahead]
    arms_ahead = forecast(task, config, arms(config), names, shape.params, body, speeds, train_bf16, freshness,
                          shape.layers if on_gpu else 0)
    return writing + arms_ahead, material(task, config)


def plan_run(task: Task, config: TaskConfig, names: list[str], shape, speeds: tuple[float, float],
             train_bf16: bool, freshness: bool, budget: float | None, machine: str, cache_dir: Path,
             recorded: planner.Plan | None = None, on_gpu: bool = False) -> Ahead:
    """The forecast of every part, each scaled by this machine's calibration, and the plan that fits `budget`
    minutes (None: no budget). `machine` names the CPU or GPUs; `recorded` is a resumed run's plan, kept."""
    raw, m = forecast_parts(task, config, names, shape, speeds, train_bf16, freshness, on_gpu)
    ratios = {k: v for k, v in calibration.ratios(cache_dir, machine).items() if any(p.name == k for p in raw)}
    parts = [_scaled(p, ratios.get(p.name, 1.0)) for p in raw]
    plan = _plan(parts, m, config, budget, recorded)
    planned = planner.seconds(parts, m, plan)
    line = forecast_line(parts, machine, None if plan.whole else planned, planner.scales(parts, m, plan), budget)
    if ratios:
        line += f"; scaled by this machine's earlier runs ({', '.join(f'{k} x{v:.2f}' for k, v in ratios.items())})"
    if not plan.whole:
        line += (f"\nbudget plan: {planner.describe(plan, m)}, sampled with seed {config.seed}, spread over every "
                 "document; every arm, phase and test question kept")
    minutes = {"full": planner.total(parts, m, planner.Plan()) / 60, "planned": planner.total(parts, m, plan) / 60,
               "least": planner.least_budget(parts, m)}
    record = {"forecast": {"machine": machine, "calibration": ratios,
                           "minutes": {k: round(v, 2) for k, v in minutes.items()},
                           "seconds": {k: round(v, 2) for k, v in planner.seconds(raw, m, plan).items()}}}
    if not plan.whole or budget is not None:
        record["budget"] = {"minutes": budget, "seed": config.seed,
                            "plan": {"cpt_tokens": plan.cpt, "facts": plan.facts, "raft_examples": plan.raft},
                            "forecast_minutes": dict(record["forecast"]["minutes"]), "material": dataclasses.asdict(m)}
    sampling = SamplingConfig(cpt_tokens=plan.cpt, facts=plan.facts, raft_examples=plan.raft)
    return Ahead(line, config.model_copy(update={"sampling": sampling}), plan, record)


def unfinished_plan(results_dir: Path, task_name: str, key: str) -> planner.Plan | None:
    """The plan of the newest unfinished run of these inputs (what `--resume` continues); None when there is none
    to read: a resumed run keeps the sample its finished arms trained on."""
    p = unfinished_budget_plan(results_dir, task_name, key)
    if p is None:
        return None
    return planner.Plan(p["cpt_tokens"], p["facts"], p["raft_examples"]) if p else planner.Plan()


def after_run(ahead: Ahead | None, results: list, info: dict, cache_dir: Path, resumed: bool) -> dict:
    """run.json's `budget` with what each sample really kept (how many of how many, the seed), and the measured
    time recorded for the next forecast (not after `--resume`: its arms did only part of their work)."""
    if ahead is None:
        return {}
    gen = info.get("pair_generation") or {}
    if not resumed:
        calibration.record(cache_dir, ahead.record["forecast"]["machine"],
                           calibration.measured(results, gen, ahead.record["forecast"]["seconds"]))
    if "budget" not in ahead.record:
        return {}
    sampled = {}
    for r in results:
        for kind, s in (r.cost.get("sampled") or {}).items():
            sampled.setdefault(kind, {**s, "arms": []})["arms"].append(r.name)
    pairs = ((gen.get("parts") or {}).get("original") or {}).get("sample")
    if pairs:
        users = [r.name for r in results if r.cost.get("weights") in QA_WEIGHTS and r.cost.get("training_pairs")]
        sampled["pairs"] = {**pairs, "arms": users}
    return {"budget": {**ahead.record["budget"], "sampled": sampled}}
