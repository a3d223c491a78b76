"""Recipes for arms trained on pairs built from the documents, chosen on a dev set that is never test: the task's
hand-written train.jsonl questions, which pair building never sees (the task is run as if it had only docs/ and
test.jsonl). Per variant: pairs kept, training time, and dev accuracy, on all dev questions and on those whose
fact the built pairs teach (same answer, a shared content word: harness/task/taught.py's rule for generated
pairs).

    .venv/bin/python bench/true_pairs.py --variants "finetune,3,2,2e-3;finetune,1,6,2e-3"
    .venv/bin/python bench/true_pairs.py --variants "raft,3,1,1e-3" --dev 96

A variant is arm,phrasings,epochs,learning_rate[,facts_per_sentence]. Pairs are built once per (phrasings,
facts_per_sentence); every variant trains in this one process on a throwaway adapter cache.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--variants", default="finetune,3,2,2e-3")
    ap.add_argument("--dev", type=int, default=0, help="score on this many dev questions (seeded sample; 0: all)")
    a = ap.parse_args()

    from harness.arms.pipeline import make_pipeline
    from harness.inference.models import DEFAULT_EMBEDDER
    from harness.metrics import score
    from harness.pairs.source import make_pairs, with_pairs
    from harness.retrieval.registry import build_retriever
    from harness.task.demo_pool import demo_pool
    from harness.task.folder import load_task
    from harness.task.types import Knowledge
    from harness.task.registry import tasks_dir
    from harness.task.taught import Coverage
    from trained_arm import load_shared

    full = load_task(tasks_dir(None) / a.task)
    dev = list(full.knowledge.pairs)
    if a.dev:
        dev = random.Random(0).sample(dev, min(a.dev, len(dev)))
    # The task as a team with documents only has it: no hand-written pairs anywhere.
    docs_only = dataclasses.replace(full, knowledge=Knowledge(full.knowledge.docs, ()),
                                    update=Knowledge(full.update.docs, ()))
    shared = None
    for variant in a.variants.split(";"):
        arm, phrasings, epochs, lr, *rest = variant.split(",")
        c = full.config
        cfg = c.model_copy(update={
            "training_pairs": "generated",
            "pair_generation": c.pair_generation.model_copy(update={
                "phrasings": int(phrasings), "epochs": int(epochs),
                **({"facts_per_sentence": int(rest[0])} if rest else {})}),
            "finetune": c.finetune.model_copy(update={"learning_rate": float(lr)}) if arm == "finetune" else c.finetune,
            "raft": c.raft.model_copy(update={"epochs": int(epochs), "learning_rate": float(lr)})
            if arm == "raft" else c.raft})
        if shared is None:
            shared, precision = load_shared(docs_only, cfg)
        shared = dataclasses.replace(shared, config=cfg)
        r = cfg.retrieval
        t = time.perf_counter()
        generated = make_pairs(docs_only, cfg, None, "parse", lambda d: build_retriever(
            r.method, shared.embedder, DEFAULT_EMBEDDER, d, r.chunk_words, r.chunk_overlap, shared.cache_dir))
        build_s = time.perf_counter() - t
        task = with_pairs(docs_only, cfg, generated)
        pairs = task.knowledge.pairs
        cover = Coverage(pairs, same_fact=True)
        taught = [p for p in dev if cover.covers_pair(p)]
        pipe = make_pipeline(arm, shared)
        t = time.perf_counter()
        pipe.build(task.knowledge, demo_pool(pairs, full.test))
        train_s = time.perf_counter() - t
        answers = pipe.answer([p.question for p in dev], desc="dev questions")
        hits = [score(x.text, (p.answer,))[cfg.metric] for x, p in zip(answers, dev)]
        on = [h for h, p in zip(hits, dev) if p in set(taught)]
        ad = pipe.adapter
        print(f"RESULT arm={arm} phrasings={phrasings} epochs={epochs} lr={lr} facts_per_sentence="
              f"{cfg.pair_generation.facts_per_sentence} pairs={len(pairs)} words={sum(len(p.question.split()) for p in pairs) / max(1, len(pairs)):.1f} build_s={build_s:.1f} "
              f"train_s={train_s:.1f} epochs_run={getattr(ad, 'epochs_run', '-')} "
              f"best_eval={getattr(ad, 'best_eval_loss', float('nan')):.4f} dev={len(dev)} "
              f"{cfg.metric}={sum(hits) / len(hits):.3f} dev_taught={len(taught)} "
              f"{cfg.metric}_taught={sum(on) / max(1, len(on)):.3f} training={precision.dtype}", flush=True)


if __name__ == "__main__":
    main()
