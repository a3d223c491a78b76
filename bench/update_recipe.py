"""How a trained arm takes in an update, chosen on a dev set: held-out phrasings of the update's own training pairs,
never test.jsonl. Each fact of coffee's update has three hand-written phrasings (updates/train.jsonl); one of each
is held out as a dev question, so the continuation trains on the other two and is asked the third (RAFT with its
passages, retrieved from the documents with the update added, as a run asks). Old knowledge is checked on training
pairs that no RAFT sample holds. Per variant: the continuation's examples and training time, fresh dev accuracy,
old dev accuracy. The build is trained once (a shared adapter cache); each variant continues it.

    .venv/bin/python bench/update_recipe.py --arm raft --variants "all,1.0;128,1.0;64,1.0"
    .venv/bin/python bench/update_recipe.py --arm finetune --variants "all,1.0;all,0.5"

A variant is `continue_examples,replay`: raft.continue_examples (all: every new example with its replay) and
update.replay.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def split_update(pairs: list) -> tuple[list, list]:
    """(training pairs, dev pairs): each fact's last phrasing (same answer and document) held out, when it has two
    or more."""
    groups: dict = {}
    for p in pairs:
        groups.setdefault((p.answer, p.doc), []).append(p)
    dev = [g[-1] for g in groups.values() if len(g) > 1]
    return [p for p in pairs if p not in set(dev)], dev


def one(task_name: str, arm: str, variant: str, n_old: int, cache: Path) -> None:
    from harness.arms.pipeline import make_pipeline
    from harness.metrics import score
    from harness.task.demo_pool import demo_pool
    from harness.task.folder import load_task
    from harness.task.registry import tasks_dir
    from harness.task.types import Knowledge
    from raft_recipe import held_out
    from trained_arm import load_shared

    cap, replay = variant.split(",")
    task = load_task(tasks_dir(None) / task_name)
    c = task.config
    cfg = c.model_copy(update={
        "raft": c.raft.model_copy(update={"continue_examples": 10**6 if cap == "all" else int(cap)}),
        "update": c.update.model_copy(update={"replay": float(replay)})})
    shared, precision = load_shared(task, cfg, cache)
    pipe = make_pipeline(arm, shared)
    old_dev = held_out(list(task.knowledge.pairs), [cfg.raft.max_examples], cfg.seed, n_old)
    new_train, new_dev = split_update(list(task.update.pairs))
    update = Knowledge(task.update.docs, tuple(new_train))
    pipe.build(task.knowledge, demo_pool(task.knowledge.pairs, task.test))
    everything = task.knowledge + update
    pipe.add_documents(update.docs)
    t = time.perf_counter()
    note = pipe.rebuild(everything, demo_pool(everything.pairs, task.test), update)
    rebuild_s = time.perf_counter() - t
    a = pipe.adapter
    acc = {}
    for name, dev in (("fresh_dev", new_dev), ("old_dev", old_dev)):
        answers = pipe.answer([p.question for p in dev], desc=name)
        acc[name] = sum(score(x.text, (p.answer,))[cfg.metric] for x, p in zip(answers, dev)) / len(dev)
    print(f"RESULT arm={arm} continue_examples={cap} replay={replay} training={precision.dtype} note='{note}' "
          f"rebuild_s={rebuild_s:.1f} train_s={a.train_seconds:.1f} train_tokens={a.train_tokens} "
          f"fresh_dev={acc['fresh_dev']:.3f} (n={len(new_dev)}) old_dev={acc['old_dev']:.3f} (n={len(old_dev)})",
          flush=True)


def main() -> None:
    from trained_arm import each_variant, variant_parser

    ap = variant_parser(__doc__, ["raft", "finetune", "cpt"], "raft")
    ap.add_argument("--variants", default="all,1.0;128,1.0;64,1.0", help="';'-separated continue_examples,replay")
    ap.add_argument("--old", type=int, default=48, help="old training pairs outside RAFT's sample, asked after")
    ap.add_argument("--cache", default="", help="adapter cache shared by the variants (default: a new one)")
    a = ap.parse_args()
    cache = Path(a.cache or tempfile.mkdtemp())
    if a.one:
        return one(a.task, a.arm, a.one, a.old, cache)
    each_variant(__file__, ["--task", a.task, "--arm", a.arm, "--old", str(a.old), "--cache", str(cache)],
                 a.variants.split(";"))

if __name__ == "__main__":
    main()
