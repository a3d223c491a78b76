"""`harness train`: the adapters `harness run` would train, into the same cache, and nothing else.

Every selected trained arm (finetune, raft, cpt and the task's own) is trained through the pipeline code `run`
uses (pipeline.Pipeline.train: the same examples, index, seeds and update training, continued where a run
continues it), so `run` finds each adapter by its content key and trains nothing. Launched with torchrun or
accelerate launch it trains data-parallel: DDP through the Trainer, or FSDP for a base one GPU cannot hold
(sharding.py, --fsdp); the cache key depends on neither the number of processes nor the choice."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from harness.arms.catalog import TRAINS_WITH_PASSAGES, arm_names, arms, needs_pairs
from harness.errors import HarnessError
from harness.run.experiment import check_seeds, trained_arms, training_precision
from harness.run.options import RunOptions
from harness.run.preflight import preflight, warn, warn_all
from harness.task.registry import tasks_dir

log = logging.getLogger(__name__)


def train(opts: RunOptions) -> None:
    check_seeds(opts.seeds)
    # Checked as `run` checks them, before loading; by default every arm that trains.
    checked = preflight(opts.task, tasks_dir(opts.tasks_dir), arm_names, needs_pairs, pipelines=opts.pipelines,
                        default=lambda cfg: [n for n in arm_names(cfg) if trained_arms(cfg, [n])],
                        seed=opts.seed, freshness=opts.freshness, trains=trained_arms,
                        cache_dir=Path(opts.cache_dir), embedder=opts.embedder, model=opts.model,
                        trust_remote_code=opts.trust_remote_code)
    warn_all(checked)
    task, config, source = checked.task, checked.config, checked.source
    names = [n for n in checked.names if trained_arms(config, [n])]
    if not names:
        raise HarnessError(f"none of the arms {', '.join(checked.names)} trains: `harness train` has nothing to do")
    from harness.pairs.source import generates

    if generates(task, config) and needs_pairs(config, names):
        raise HarnessError("harness train trains on hand-written pairs (train.jsonl) only; this task's pairs are "
                           "generated from its documents, which `harness run` does", task.root / "task.yaml")
    if (opts.budget if opts.budget is not None else config.budget) is not None:
        warn("task.yaml sets a budget: `harness run` may cut the training material to fit it and then train "
             "adapters of its own; `harness train` trains on all of it")
    import torch.distributed as dist

    from harness.arms.pipeline import Shared
    from harness.inference.models import load_embedder, load_generator
    from harness.run.runner import rebuilds

    device, fsdp = _process_device(opts, source)

    def load():
        return load_generator(source, device, opts.trust_remote_code, opts.dtype, opts.quantize, fsdp=fsdp)
    model, tokenizer = load()
    table = arms(config)
    reads = any(table[n].weights in TRAINS_WITH_PASSAGES for n in names)
    embedder = load_embedder(opts.embedder, device) if reads else None
    # The precision `harness run` would train in: the adapter's cache key includes it.
    train_model, _ = training_precision(opts, device, model, tokenizer, task, config, names)
    shared = Shared(model, tokenizer, embedder, config, source.fingerprint(), Path(opts.cache_dir),
                    embedder_id=opts.embedder, train_model=train_model, fsdp=fsdp)
    sets = [("original", task.knowledge, None)]
    if rebuilds(task, opts.freshness):
        sets.append(("original + update", task.knowledge + task.update, task.update))
    if reads:
        _indexes_first(shared, names, [k for _, k, _ in sets], Path(opts.cache_dir))
    _train_each(shared, names, opts.seeds, sets, (lambda: load()[0]) if fsdp else None)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _process_device(opts: RunOptions, source) -> tuple[str, bool]:
    """This process's device (its own GPU under torchrun) and whether it trains with FSDP (sharding.wants_fsdp)."""
    from harness.inference.models import pick_device, pick_dtype
    from harness.inference.sharding import wants_fsdp

    device, local = pick_device(opts.device), os.environ.get("LOCAL_RANK")
    if device == "cuda" and local is not None:
        device = f"cuda:{local}"  # one GPU per process
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return device, wants_fsdp(opts.fsdp, source.location, device, pick_dtype(opts.dtype, device), opts.quantize,
                              world, opts.trust_remote_code)


def _train_each(shared, names: list[str], seeds: int, sets: list, reload: Callable[[], object] | None) -> None:
    """Every arm's adapters for each seed and knowledge set, as `run --seeds` trains them (seed, seed+1, ...).
    `reload` (FSDP) gives a fresh base after a training left the last one sharded and wrapped by FSDP."""
    from harness.run.runner import seeded

    used = False
    for name in names:
        for i in range(seeds):
            pipe = seeded(name, shared, i)
            for label, knowledge, update in sets:
                if used:
                    shared.model = pipe.shared.model = reload()
                    used = False
                a = pipe.train(knowledge, update)
                used = reload is not None and a is not None and not a.cached
                if int(os.environ.get("RANK", "0")) == 0:
                    _say(name, pipe.cfg.seed, label, a)


def _indexes_first(shared, names: list[str], knowledge_sets: list, cache_dir: Path) -> None:
    """The indexes RAFT's training searches, built into the cache by one process at a time before any trains:
    under torchrun every rank would otherwise embed the same documents and save the same index folder at once.
    The first process in builds and saves; the others load what it saved."""
    from filelock import FileLock

    from harness.arms.pipeline import make_pipeline

    (cache_dir / "indexes").mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / "indexes" / ".train.lock")):
        for name in names:
            pipe = make_pipeline(name, shared)
            if pipe.arm.weights in TRAINS_WITH_PASSAGES:
                for knowledge in knowledge_sets:
                    pipe.training_set(knowledge)


def _say(name: str, seed: int, label: str, a) -> None:
    if a is None:
        log.info("%s (seed %d), %s: nothing to train (the update brings no training pairs)", name, seed, label)
        return
    loss = "n/a" if a.best_eval_loss is None else f"{a.best_eval_loss:.4f}"
    log.info("%s (seed %d), %s: %s adapter %s (%s on %d process(es), %g epochs, best eval loss %s, %.1f s)", name,
             seed, label, a.kind, a.path, "cached" if a.cached else "trained", a.processes, a.epochs_run, loss,
             a.train_seconds)
