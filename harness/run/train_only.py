"""`harness train`: the adapters `harness run` would train, into the same cache, and nothing else.

Launched with torchrun or accelerate launch it trains data-parallel (DDP through the Trainer); `harness run`
then finds the adapters by their content key and reuses them."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from harness.arms.catalog import TRAINS_ON_PAIRS, TRAINS_WITH_PASSAGES, arm_names, arms, needs_pairs
from harness.errors import HarnessError
from harness.run.experiment import trained_arms, training_precision
from harness.run.options import RunOptions
from harness.run.preflight import preflight, warn_all
from harness.task.registry import tasks_dir

log = logging.getLogger(__name__)
# The adapters `train` makes: pairs without passages. RAFT's need the index, which `harness run` builds.
QA_WEIGHTS = TRAINS_ON_PAIRS - TRAINS_WITH_PASSAGES


def train(opts: RunOptions) -> None:
    # The arms trained here are the ones that learn from pairs; checked as `run` checks them, before loading.
    checked = preflight(opts.task, tasks_dir(opts.tasks_dir), arm_names, needs_pairs,
                        default=lambda cfg: [n for n, a in arms(cfg).items() if a.weights in QA_WEIGHTS],
                        seed=opts.seed, freshness=opts.freshness, trains=trained_arms,
                        cache_dir=Path(opts.cache_dir), model=opts.model, trust_remote_code=opts.trust_remote_code)
    warn_all(checked)
    task, config, source = checked.task, checked.config, checked.source
    from harness.pairs.source import generates

    if generates(task, config):
        raise HarnessError("harness train trains on hand-written pairs (train.jsonl) only; this task's pairs are "
                           "generated from its documents, which `harness run` does", task.root / "task.yaml")
    import torch.distributed as dist

    from harness.arms.finetune import train_adapter
    from harness.arms.pipeline import arm_qa_examples
    from harness.inference.models import load_generator, pick_device

    rank, local = int(os.environ.get("RANK", "0")), os.environ.get("LOCAL_RANK")
    device = pick_device(opts.device)
    if device == "cuda" and local is not None:
        device = f"cuda:{local}"  # one GPU per process
    model, tokenizer = load_generator(source, device, opts.trust_remote_code, opts.dtype, opts.quantize)
    # The precision `harness run` would train in: the adapter's cache key includes it.
    train_model, _ = training_precision(opts, device, model, tokenizer, task, config, checked.names)
    sets = [("original", task.knowledge)]
    if task.update.pairs and opts.freshness:
        sets.append(("original + update", task.knowledge + task.update))
    # Arms that differ only in what they are given at answer time train the same adapter: trained once.
    table, recipes = arms(config), {}
    for arm in (table[n] for n in checked.names if table[n].weights in QA_WEIGHTS):
        recipes.setdefault((arm.format, arm.instruction), arm)
    for (label, knowledge), arm in ((s, a) for s in sets for a in recipes.values()):
        examples = arm_qa_examples(arm, config, tokenizer, knowledge.pairs)
        a = train_adapter(train_model, tokenizer, examples, config.finetune, config.seed, Path(opts.cache_dir),
                          source.fingerprint(), "qa")
        if rank == 0:
            loss = "n/a" if a.best_eval_loss is None else f"{a.best_eval_loss:.4f}"
            log.info("%s: adapter %s (%s on %d process(es), %g epochs, best eval loss %s, %.1f s)", label, a.path,
                     "cached" if a.cached else "trained", a.processes, a.epochs_run, loss, a.train_seconds)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
