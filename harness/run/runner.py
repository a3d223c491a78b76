"""One evaluation run: build each arm, answer the held-out questions, run the freshness experiment.

Per arm, in order:
  1. build on the original knowledge (docs/, train.jsonl) and answer every test question;
  2. the update's documents arrive: `add_documents` (no rebuild), answer the fresh questions again;
  3. rebuild on original + update (re-index; retrain when there is something new to train on) and answer
     every question again.
"""
from __future__ import annotations

import dataclasses
import logging
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.task.demo_pool import demo_pool
from harness.inference.gpu import peak_allocated_mb, reset_peak
from harness.measure import Measured, release_freed_memory
from harness.metrics import score, semantic_scores
from harness.names import PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT
from harness.arms.pipeline import Answer, Pipeline, Shared, make_pipeline
from harness.task.taught import knowledge_labels
from harness.task.types import Task, TestQuestion

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    name: str
    predictions: list[dict] = field(default_factory=list)
    cost: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def _records(pipeline: str, phase: str, questions: list[TestQuestion], answers: list[Answer], embedder,
             labels: dict[str, str]) -> list[dict]:
    sem = semantic_scores(embedder, [a.text for a in answers], [q.answers for q in questions])
    rows = []
    for q, a, s in zip(questions, answers, sem):
        retrieved = [p.doc for p in a.passages]
        rows.append({
            "phase": phase, "pipeline": pipeline, "id": q.id, "question": q.question, "fresh": q.fresh,
            "knowledge": labels[q.id], "topic": q.topic, "doc": q.doc, "answer": a.text,
            "references": list(q.answers), **score(a.text, q.answers), "semantic": s,
            # Scored here, after answering: the gold document never reaches the pipeline.
            "gold_retrieved": (q.doc in retrieved) if a.passages and q.doc else None,
            # "cite" only where the document was imported: "manual.pdf p. 12" (harness/task/provenance.py).
            "passages": [{"doc": p.doc, "score": round(p.score, 4), "text": p.text, **({"cite": p.cite} if p.cite
                                                                                      else {})} for p in a.passages],
            "prompt_tokens": a.prompt_tokens, "new_tokens": a.new_tokens, "seconds": a.seconds,
        })
    return rows


def rebuilds(task: Task, freshness: bool) -> bool:
    """Whether each arm is rebuilt on original + update knowledge (the freshness experiment's third phase):
    `harness train` asks too, to train the update's adapters exactly when a run would."""
    return bool(freshness and task.fresh and task.update.docs)


def seeded(name: str, shared: Shared, i: int) -> Pipeline:
    """Arm `name` on the run's i-th training seed (seed, seed + 1, ...): what `--seeds N` trains, in `harness run`
    and `harness train` alike."""
    cfg = shared.config.model_copy(update={"seed": shared.config.seed + i})
    return make_pipeline(name, dataclasses.replace(shared, config=cfg))


def run_pipeline(pipeline: Pipeline, task: Task, embedder, freshness: bool = True) -> PipelineResult:
    res = PipelineResult(pipeline.name)
    questions = list(task.test)
    labels = knowledge_labels(task.test, task.knowledge.pairs)
    # The demonstration pools are cleared of every test reference here, where the references are known.
    pool = demo_pool(task.knowledge.pairs, task.test)
    ask = lambda qs: pipeline.answer([q.question for q in qs])  # noqa: E731  (question text only)
    reused = pipeline.shared.log.reused
    reset_peak()  # so the arm's peak GPU memory is its own
    with Measured() as whole:
        t = time.perf_counter()
        pipeline.build(task.knowledge, pool)
        res.timings["build_s"] = time.perf_counter() - t
        res.cost = pipeline.costs()
        res.predictions += _records(pipeline.name, PHASE_MAIN, questions, ask(questions), embedder, labels)
        if rebuilds(task, freshness):
            t = time.perf_counter()
            pipeline.add_documents(task.update.docs)
            res.timings["add_documents_s"] = time.perf_counter() - t
            res.predictions += _records(pipeline.name, PHASE_NO_REBUILD, task.fresh, ask(task.fresh), embedder,
                                        labels)
            everything = task.knowledge + task.update
            t = time.perf_counter()
            res.timings["rebuild_note"] = pipeline.rebuild(everything, demo_pool(everything.pairs, task.test),
                                                           task.update)
            res.timings["rebuild_wall_s"] = time.perf_counter() - t
            res.timings["rebuild_cost"] = pipeline.costs()
            # What a rebuild really costs: index, demonstrations and the training it depends on.
            res.timings["rebuild_s"] = res.timings["rebuild_cost"]["build_total_s"]
            res.predictions += _records(pipeline.name, PHASE_REBUILT, questions, ask(questions), embedder, labels)
    res.cost["peak_rss_mb"] = whole.peak_mb
    res.cost["peak_gpu_mb"] = peak_allocated_mb()  # None on a CPU; torch's allocations only, not vLLM's
    # The arm's whole time, and whether the answer cache spared it work: the forecast's calibration reads both.
    res.timings.update(wall_s=whole.seconds, answers_reused=pipeline.shared.log.reused - reused)
    main = [r for r in res.predictions if r["phase"] == PHASE_MAIN]
    lat = np.array([r["seconds"] for r in main])
    res.cost.update({
        "build_s": res.timings["build_s"],
        "latency_mean_s": float(lat.mean()), "latency_p95_s": float(np.percentile(lat, 95)),
        "prompt_tokens_mean": float(np.mean([r["prompt_tokens"] for r in main])),
        "new_tokens_mean": float(np.mean([r["new_tokens"] for r in main])),
    })
    return res


def run_task(task: Task, shared: Shared, pipelines: list[str], freshness: bool = True, seeds: int = 1,
             on_arm: Callable[[list[PipelineResult]], None] | None = None) -> list[PipelineResult]:
    """Each arm in turn, those that train nothing first, so a partial report (`on_arm`, called with the results so
    far after each arm) shows them within minutes. With `seeds` > 1, arms with trained weights are trained once
    per seed (seed, seed+1, ...) and every answer carries its training seed, so the report can show training's
    own randomness. Results come back in the order of `pipelines`."""
    trained = {n: make_pipeline(n, shared).arm.weights != "base" for n in pipelines}
    release_freed_memory()  # what loading and the precision check freed, so the first arm's peak is its own
    # The loaded models and libraries (450k objects) live through the run: frozen, the collections after each
    # training and arm, and Python's own, skip them (0.26-0.35 s each otherwise, measured with SmolLM2 loaded).
    gc.freeze()
    try:
        return _each_arm(task, shared, pipelines, trained, freshness, seeds, on_arm)
    finally:
        gc.unfreeze()


def _each_arm(task: Task, shared: Shared, pipelines: list[str], trained: dict[str, bool], freshness: bool,
              seeds: int, on_arm: Callable[[list[PipelineResult]], None] | None) -> list[PipelineResult]:
    results = []
    for name in sorted(pipelines, key=trained.get):
        runs = []
        for i in range(seeds if trained[name] else 1):
            pipe = seeded(name, shared, i)
            log.info(f"\n== {name}" + (f" (training seed {pipe.cfg.seed})" if trained[name] and seeds > 1 else ""))
            run = run_pipeline(pipe, task, shared.embedder, freshness)
            for row in run.predictions:
                row["seed"] = pipe.cfg.seed
            runs.append(run)
        first = runs[0]
        first.predictions = [row for r in runs for row in r.predictions]
        first.cost["seeds"] = len(runs)
        if len(runs) > 1:
            first.cost["train_seconds_per_seed"] = [r.cost.get("train_seconds") for r in runs]
        results.append(first)
        release_freed_memory()  # so the next arm's peak is its own, not every arm's before it
        if on_arm is not None:
            on_arm(results)
    return sorted(results, key=lambda r: pipelines.index(r.name))
