"""Lexical retrieval: BM25 (the bm25s package) over the same chunks the dense index holds.

Product codes, model numbers and years are exact strings; a 384-dimension sentence embedding blurs them,
BM25 does not. Adding documents re-scores the (small) chunk list from scratch: bm25s has no incremental add,
and at task scale that takes milliseconds, with no model involved.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import bm25s
import numpy as np

from harness.retrieval.chunking import Passage, chunk_document
from harness.task.types import Document
from harness.text import score_tokens


class BM25Index:
    kind = "bm25"

    def __init__(self, chunk_words: int, chunk_overlap: int):
        self.chunk_words, self.chunk_overlap = chunk_words, chunk_overlap
        self.passages: list[Passage] = []
        self._bm25: bm25s.BM25 | None = None

    def add(self, docs: Iterable[Document], progress: bool = False) -> int:
        new = [c for d in docs for c in chunk_document(d, self.chunk_words, self.chunk_overlap)]
        self.passages.extend(new)
        self._bm25 = bm25s.BM25()
        # A chunk of stop characters only would give bm25s an empty document; "_" keeps it a valid row.
        self._bm25.index([score_tokens(p.text) or ["_"] for p in self.passages], show_progress=False)
        return len(new)

    def search(self, queries: list[str], k: int) -> list[list[Passage]]:
        if self._bm25 is None or not self.passages:
            return [[] for _ in queries]
        k = min(k, len(self.passages))
        ids, scores = self._bm25.retrieve([score_tokens(q) or ["_"] for q in queries], k=k, show_progress=False,
                                          n_threads=1)
        return [[dataclasses.replace(self.passages[i], score=float(s)) for i, s in zip(row_i, row_s)]
                for row_i, row_s in zip(np.asarray(ids), np.asarray(scores))]

    @property
    def nbytes(self) -> int:
        return sum(len(p.text.encode()) for p in self.passages)
