"""One experiment, from a RunOptions to finished run folders: check, forecast, load, make pairs, run every arm.

Read top to bottom: `prepare` checks everything that needs no model and says what the run will cost;
`load` loads the models and makes the training pairs; `run_point` runs every arm of one configuration into
its run folder; `experiment` strings them together, once per --sweep point. Rendering the reports is the
report layer's job, above this one: the caller hands it in as `render` (a run folder -> its verdict lines)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.arms.catalog import TRAINED, arm_names, arms, demonstration_pool, needs_pairs, pair_users
from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.run import folder
from harness.run.options import RunOptions
from harness.run.preflight import Checked, check_demonstrations, check_generated, check_model, preflight, warn, warn_all
from harness.run.record import Prices, RunRecord, resume_key
from harness.task.registry import tasks_dir

log = logging.getLogger(__name__)
Render = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Point:
    """One configuration to run: a --sweep point's overrides (none without --sweep) and its config."""
    overrides: dict
    config: TaskConfig


@dataclass(frozen=True)
class Loaded:
    """What every arm shares: the models, the task with its training pairs, and how training runs."""
    task: object
    model: object
    tokenizer: object
    embedder: object
    train_model: object
    precision: object  # precision.Precision, or None where --dtype decided
    engine: object  # a VllmEngine, or None
    generated: object  # pairs.source.Generated, or None for hand-written pairs
    device: str


@dataclass(frozen=True)
class Finished:
    overrides: dict
    folder: Path
    verdict: list[str]


def trained_arms(config: TaskConfig, names: list[str]) -> set[str]:
    """The selected arms that train LoRA weights (and so need finetune.target_modules to exist)."""
    return {n for n in names if arms(config)[n].weights in TRAINED}


def key_of(opts: RunOptions) -> Callable[..., str]:
    """The key of these options' inputs, given what preflight resolves: (task, config, arms, model source)."""
    return lambda task, config, names, source: resume_key(task, config, names, source, opts.embedder,
                                                          opts.freshness, opts.seeds, opts.generator, opts.budget)


def check_seeds(seeds: int) -> None:
    """--seeds, for `run` and `train` alike."""
    if not 1 <= seeds <= 50:
        raise HarnessError(f"--seeds {seeds}: give a number of training seeds from 1 to 50")


def check(opts: RunOptions) -> Checked:
    """Everything that can be known without a model, before torch is even imported: --resume's match on the
    inputs too, so a resume of changed inputs is refused in seconds, not after the model has loaded."""
    check_seeds(opts.seeds)
    checked = preflight(opts.task, tasks_dir(opts.tasks_dir), arm_names, needs_pairs, pipelines=opts.pipelines,
                        seed=opts.seed, freshness=opts.freshness, trains=trained_arms,
                        results_dir=Path(opts.results_dir), cache_dir=Path(opts.cache_dir),
                        resume=opts.resume and not opts.sweep, resume_key=key_of(opts), embedder=opts.embedder,
                        model=opts.model, trust_remote_code=opts.trust_remote_code, deployment=opts.deployment)
    warn_all(checked)
    return checked


def points(opts: RunOptions, checked: Checked) -> list[Point]:
    """One per --sweep point, each checked now, before loading; else the task's own config."""
    from harness.pairs.source import generates
    from harness.run.sweep import sweep_points

    if not opts.sweep:
        return [Point({}, checked.config)]
    made = [Point(o, c) for o, c in sweep_points(checked.config, list(opts.sweep))]
    if not generates(checked.task, checked.config):  # a point may show more demonstrations than the pool holds
        for p in made:
            check_demonstrations(checked.task, p.config, checked.names)
    return made


def bf16_wanted(opts: RunOptions) -> bool:
    """Whether training should go to a bf16 copy: this CPU's flags' rule (machine.bf16_training_pays), or
    --train-dtype forcing one precision, so that one machine can measure what another CPU kind would train."""
    from harness.run.machine import bf16_training_pays

    if opts.train_dtype == "auto":
        return bf16_training_pays()
    return opts.train_dtype == "bfloat16"


def may_train_in_bf16(opts: RunOptions, device: str) -> bool:
    """Whether --dtype auto may hand training a bf16 copy (precision.py decides by measuring)."""
    return opts.dtype == "auto" and device == "cpu" and not opts.quantize


def training_precision(opts: RunOptions, device: str, model, tokenizer, task, config: TaskConfig,
                       names: list[str]):
    """The base LoRA trains on, and why: with --dtype auto on a CPU, a bf16 copy where bf16 is fast and faithful
    here (precision.py: this CPU's bf16 instructions, a probe and the loss), else `model` itself; answering stays
    in float32. A run in which no selected arm trains measures nothing and copies nothing. Returns (base, reason
    or None), and says the reason."""
    if not may_train_in_bf16(opts, device) or not trained_arms(config, names):
        return model, None
    from harness.arms.precision import training_copy_for_task

    copy, precision = training_copy_for_task(model, tokenizer, task.knowledge.pairs, config.prompt.system,
                                             bf16_wanted(opts), forced=opts.train_dtype == "bfloat16")
    log.info("training precision: %s", precision.why)
    return (model if copy is None else copy), precision


def forecast(opts: RunOptions, checked: Checked, device: str):
    """Refusals first (--quantize, --engine vllm), then the memory estimate and the time forecast with the plan
    that fits a budget: all before minutes of loading. Returns the plan (planning.Ahead; None where no forecast
    can be made: neither a CPU nor CUDA, or a model whose shape cannot be read before loading)."""
    from harness.inference.devices import visible_gpus
    from harness.inference.models import pick_dtype, quantization_config
    from harness.run.estimate import estimate_memory, forecast_time
    from harness.run.memory import model_shape
    from harness.run.planning import NO_FORECAST, unfinished_plan

    quantization_config(opts.quantize, device, checked.source)
    if opts.engine == "vllm":  # asked for by name: refused here where it cannot run (auto falls back instead)
        from harness.inference.vllm_engine import check_available
        check_available(device)
    shape = model_shape(checked.source, opts.trust_remote_code)
    may, rule = may_train_in_bf16(opts, device), bf16_wanted(opts)
    engine, cuda = engine_name(opts, checked, device), device.startswith("cuda")
    # vLLM spreads over every visible GPU; the transformers path answers on one.
    gpus = (visible_gpus() if engine == "vllm" else 1) if cuda else 0
    estimate_memory(shape, checked, device, pick_dtype(opts.dtype, device), opts.quantize, may and rule, engine,
                    max(1, gpus))
    budget = opts.budget if opts.budget is not None else checked.config.budget
    if shape is None or not (device == "cpu" or cuda):
        if budget is not None:
            warn(NO_FORECAST)
        return None
    task, key = checked.task, key_of(opts)(checked.task, checked.config, checked.names, checked.source)
    kept = unfinished_plan(Path(opts.results_dir), task.name, key) if opts.resume else None
    ahead = forecast_time(shape, checked, opts.freshness, may, rule, opts.train_dtype == "bfloat16", budget,
                          Path(opts.cache_dir), kept, gpus)
    earlier = folder.finished_with(Path(opts.results_dir), task.name, key)
    if earlier is not None and not opts.reanswer and any(Path(opts.cache_dir).glob("*/*")):
        log.info("  ...but %s ran these same inputs: with its cache (%s) intact, trained adapters and answers are "
                 "reused, so expect a small fraction of that, mostly loading", earlier, opts.cache_dir)
    return ahead


def training_pairs(opts: RunOptions, checked: Checked, configs: list[TaskConfig], model, tokenizer, embedder,
                   device: str):
    """The task with the pairs `training_pairs` names, and the generation behind them (None for written pairs):
    built from the documents' parse, or written by --generator (default: the loaded --model), filtered, then
    checked as preflight checks hand-written pairs. None are made when no selected arm reads them, and only a
    demonstration pool when only demonstrations do (pairs/source.py's POOL_MARGIN)."""
    from harness.inference.models import load_generator
    from harness.pairs.parse import version as parser_version
    from harness.pairs.source import PARSE, generates, make_pairs, with_pairs
    from harness.pairs.writer import QuestionWriter
    from harness.retrieval.registry import build_retriever

    task, names, source, config = checked.task, checked.names, checked.source, configs[0]
    if not generates(task, config):
        return task, None
    if not any(pair_users(cfg, names) for cfg in configs):
        log.info("no selected arm reads training pairs: none are made from the documents")
        return task, None
    r, cache = config.retrieval, Path(opts.cache_dir)
    if config.pair_generation.writer == PARSE:
        writer, label = None, parser_version()
    else:
        gen_source, gen_model, gen_tok = source, model, tokenizer
        if opts.generator:
            gen_source = check_model(opts.generator, opts.trust_remote_code)
            if gen_source != source:
                gen_model, gen_tok = load_generator(gen_source, device, opts.trust_remote_code, opts.dtype)
        writer = QuestionWriter(gen_model, gen_tok, gen_source.fingerprint(), [], config.seed, cache)
        label = gen_source.label
    generated = make_pairs(task, config, writer, label, lambda docs: build_retriever(
        r.method, embedder, opts.embedder, docs, r.chunk_words, r.chunk_overlap, cache),
                           demonstration_pool(configs, names))
    task = with_pairs(task, config, generated)
    for cfg in configs:  # each sweep point may show another number of demonstrations
        check_generated(task, cfg, names, needs_pairs(cfg, names))
    return task, generated


def load(opts: RunOptions, checked: Checked, configs: list[TaskConfig], device: str) -> Loaded:
    """The models, then the training pairs and the precision training runs in."""
    from harness.inference.models import load_embedder, load_generator, stop_token_ids

    model, tokenizer = load_generator(checked.source, device, opts.trust_remote_code, opts.dtype, opts.quantize)
    embedder = load_embedder(opts.embedder, device)
    task, generated = training_pairs(opts, checked, configs, model, tokenizer, embedder, device)
    train_model, precision = training_precision(opts, device, model, tokenizer, task, checked.config,
                                                checked.names)
    engine = None
    if engine_name(opts, checked, device) == "vllm":
        from harness.inference.vllm_engine import VllmEngine, VllmSettings

        # One LoRA slot per adapter the run answers with: each trained arm, seed and rebuild.
        loras = len(trained_arms(checked.config, checked.names)) * opts.seeds * (2 if opts.freshness else 1)
        settings = VllmSettings(opts.tensor_parallel_size, opts.gpu_memory_utilization, opts.max_model_len, loras)
        engine = VllmEngine(checked.source, opts.dtype, checked.config.finetune.lora_rank,
                            stop_token_ids(model, tokenizer), stop_token_ids(model, tokenizer, line_breaks=True),
                            settings)
    return Loaded(task, model, tokenizer, embedder, train_model, precision, engine, generated, device)


def engine_name(opts: RunOptions, checked: Checked, device: str) -> str:
    """What answers: --engine, with auto resolved for this device and model (vllm_engine.choose_engine)."""
    from harness.inference.vllm_engine import choose_engine

    return choose_engine(opts.engine, device, gguf=bool(checked.source.gguf_file))


def answering_engine(loaded: Loaded) -> str:
    return loaded.engine.name if loaded.engine is not None else "transformers"


def answer_namespace(source, model, engine: str = "transformers") -> str:
    """Who answers: the model file, precision, device, libraries and the answering code itself. Another engine
    (vLLM) is named with its version and code: its greedy answers may differ from transformers' in a last token,
    so each engine keeps, resumes and reuses its own; transformers' namespace is the one it always had."""
    import torch
    import transformers

    from harness.inference.answerlog import answering_code_hash

    p = next(model.parameters())
    fields = [source.fingerprint(), str(p.dtype), p.device.type, torch.__version__, transformers.__version__,
              answering_code_hash()]
    if engine != "transformers":
        from importlib.metadata import PackageNotFoundError, version

        from harness.inference import vllm_engine

        try:
            release = version(engine)
        except PackageNotFoundError:  # a test's engine on a machine without it
            release = "not installed"
        fields += [engine, release, hashlib.sha256(Path(vllm_engine.__file__).read_bytes()).hexdigest()[:16]]
    blob = json.dumps(fields)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def run_record(opts: RunOptions, checked: Checked, loaded: Loaded, config: TaskConfig, pair_generation: dict) -> RunRecord:
    """run.json's fields known before any arm runs: enough to reproduce the run and to read its speeds."""
    import platform
    import sys
    import time

    import torch

    from harness.arms.catalog import describe
    from harness.inference.devices import visible_gpus
    from harness.run.machine import cpu_info
    from harness.run.record import git_commit, library_versions

    task, names, source, model = loaded.task, checked.names, checked.source, loaded.model
    prices = Prices(opts.cpu_hour_usd, opts.gpu_hour_usd, opts.hour_usd, opts.usd_per_million_tokens)
    return RunRecord(
        task=task.name, task_fingerprint=task.fingerprint(), task_dir=str(task.root), model=opts.model,
        model_location=source.location, model_file=source.gguf_file, embedder=opts.embedder, seed=config.seed,
        device=loaded.device, cpu=cpu_info(torch.get_num_threads()), dtype=str(next(model.parameters()).dtype),
        training_dtype=str(next(loaded.train_model.parameters()).dtype),
        dtype_choice=loaded.precision.why if loaded.precision else f"--dtype {opts.dtype}",
        quantize_bits=opts.quantize, engine=answering_engine(loaded), torch_threads=torch.get_num_threads(),
        pipelines=names,
        arms={n: describe(arms(config)[n], config) for n in names}, updates_per_year=opts.updates_per_year,
        seeds=opts.seeds, freshness=opts.freshness, config=config.model_dump(), sizes=task.sizes,
        train_answer_coverage=task.answer_coverage(), versions=library_versions(),
        prices=prices.on(loaded.device, visible_gpus()),
        deployment=checked.deployment.record() if checked.deployment is not None else None,
        git_commit=git_commit(), platform=platform.platform(), argv=sys.argv,
        started=time.strftime("%Y-%m-%dT%H:%M:%S"), pair_generation=pair_generation)


def run_point(opts: RunOptions, checked: Checked, loaded: Loaded, config: TaskConfig, render: Render,
              ahead=None) -> Finished:
    """Every selected arm of one configuration, into its own run folder, with a partial report after each."""
    from transformers import set_seed

    from harness.arms.pipeline import Shared
    from harness.inference.answerlog import AnswerLog
    from harness.pairs.source import pair_source, write_jsonl
    from harness.run.planning import after_run
    from harness.run.runner import run_task

    task, names = loaded.task, checked.names
    set_seed(config.seed)
    work = folder.start(Path(opts.results_dir), task.name, key_of(opts)(task, config, names, checked.source),
                        opts.resume, must_resume=not opts.sweep)
    log.info("run folder: %s (a partial report.md and report.html appear there after each arm; the folder "
             "becomes %s when every arm is done)", work, work.with_name(folder.final_name(work)))
    pair_info = {"training_pairs": pair_source(task, config)}
    if loaded.generated is not None:
        write_jsonl(work / "pairs.generated.jsonl", loaded.generated, task)
        pair_info.update(loaded.generated.summary())
    namespace = answer_namespace(checked.source, loaded.model, answering_engine(loaded))
    answers = Path(opts.cache_dir) / "answers"
    answers.mkdir(parents=True, exist_ok=True)
    answer_log = AnswerLog(work / "answers.log.jsonl", None if opts.reanswer else answers / f"{namespace}.jsonl",
                           namespace=namespace)
    shared = Shared(loaded.model, loaded.tokenizer, loaded.embedder, config, checked.source.fingerprint(),
                    Path(opts.cache_dir), answer_log, embedder_id=opts.embedder, engine=loaded.engine,
                    train_model=loaded.train_model)
    info = {**run_record(opts, checked, loaded, config, pair_info).as_json(), **(ahead.record if ahead else {})}

    def partial(done: list) -> None:
        if len(done) < len(names):
            folder.save_partial(work, done, info, names)
            render(work)
            log.info("partial report (%d of %d arms): %s", len(done), len(names), work / "report.md")

    results = run_task(task, shared, names, freshness=opts.freshness, seeds=opts.seeds, on_arm=partial)
    shared.training_turn()  # the base back on its GPU, vLLM asleep: the next --sweep point starts as this one did
    info = {**info, "answers_reused": answer_log.reused, "answers_logged": len(answer_log.done),
            **({"vllm": loaded.engine.arguments} if loaded.engine is not None else {})}
    folder.save_finished(work, results, {**info, **after_run(ahead, results, info, Path(opts.cache_dir), opts.resume)})
    said = render(work)
    return Finished({}, folder.finish(work), said)


def experiment(opts: RunOptions, render: Render,
               on_finished: Callable[[Finished], None] | None = None) -> list[Finished]:
    """The whole run: checks, forecast, loading, then each configuration (one, or one per --sweep point)."""
    from harness.inference.models import pick_device

    checked = check(opts)
    todo = points(opts, checked)
    device = pick_device(opts.device)
    log.info("task %s: %s", checked.task.name, checked.task.sizes)
    ahead = forecast(opts, checked, device)
    if ahead is not None:  # every point samples what the budget's plan keeps
        todo = [dataclasses.replace(p, config=p.config.model_copy(update={"sampling": ahead.config.sampling}))
                for p in todo]
    loaded = load(opts, checked, [p.config for p in todo], device)
    done = []
    for i, p in enumerate(todo):
        if opts.sweep:
            log.info("\n=== sweep point %d/%d: %s", i + 1, len(todo),
                     ", ".join(f"{k}={v}" for k, v in p.overrides.items()))
        finished = dataclasses.replace(run_point(opts, checked, loaded, p.config, render, ahead),
                                       overrides=p.overrides)
        done.append(finished)
        if on_finished is not None:
            on_finished(finished)
    return done
