"""hit@k and MRR of dense, bm25 and hybrid retrieval on the shipped tasks' test questions (no generator).

This is the measurement behind `retrieval.method`'s default. Usage: python bench/retrieval_methods.py [TASK ...]
"""
from __future__ import annotations

import sys

from harness.inference.models import load_embedder
from harness.kinds import RETRIEVAL_METHODS
from harness.retrieval.registry import build_retriever
from harness.task.registry import find_task, tasks_dir


def measure(task_name: str, embedder) -> list[dict]:
    task = find_task(task_name, tasks_dir())
    r = task.config.retrieval
    docs = task.knowledge.docs + task.update.docs  # every question's source is in the corpus
    qs = [q for q in task.test if q.doc]
    rows = []
    for method in RETRIEVAL_METHODS:
        index = build_retriever(method, embedder, "bench", docs, r.chunk_words, r.chunk_overlap, None)
        found = index.search([q.question for q in qs], r.top_k)
        ranks = [next((i for i, p in enumerate(f, 1) if p.doc == q.doc), None) for q, f in zip(qs, found)]
        rows.append({"task": task_name, "method": method, "questions": len(qs),
                     f"hit_at_{r.top_k}": sum(x is not None for x in ranks) / len(qs),
                     "hit_at_1": sum(x == 1 for x in ranks) / len(qs),
                     "mrr": sum(1 / x for x in ranks if x) / len(qs)})
    return rows


if __name__ == "__main__":
    emb = load_embedder("all-minilm-l6-v2")
    for name in sys.argv[1:] or ["coffee", "product-support"]:
        for row in measure(name, emb):
            print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
