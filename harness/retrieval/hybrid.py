"""Hybrid retrieval: dense and BM25 rankings fused by reciprocal rank fusion (Cormack et al. 2009), which needs no
score calibration between the two."""
from __future__ import annotations

import dataclasses

from harness.retrieval.bm25 import BM25Index
from harness.retrieval.chunking import Passage
from harness.retrieval.retriever import Retriever

RRF_K = 60  # the constant from the RRF paper; it damps the weight of the very top ranks
POOL = 4  # each ranker contributes POOL * k candidates to the fusion


class HybridIndex:
    kind = "hybrid"

    def __init__(self, dense: Retriever, lexical: BM25Index):
        self.dense, self.lexical = dense, lexical

    @property
    def passages(self):
        return self.lexical.passages

    def add(self, docs, progress: bool = False) -> int:
        docs = list(docs)
        self.dense.add(docs)
        return self.lexical.add(docs)

    def search(self, queries: list[str], k: int) -> list[list[Passage]]:
        n = max(k * POOL, 20)
        out = []
        for dense, lexical in zip(self.dense.search(queries, n), self.lexical.search(queries, n)):
            fused: dict[tuple[str, str], float] = {}
            found: dict[tuple[str, str], Passage] = {}
            for ranking in (dense, lexical):
                for rank, p in enumerate(ranking, 1):
                    fused[(p.doc, p.text)] = fused.get((p.doc, p.text), 0.0) + 1.0 / (RRF_K + rank)
                    found.setdefault((p.doc, p.text), p)
            best = sorted(fused.items(), key=lambda kv: -kv[1])[:k]
            out.append([dataclasses.replace(found[key], score=score) for key, score in best])
        return out

    @property
    def nbytes(self) -> int:
        return self.dense.nbytes + self.lexical.nbytes

