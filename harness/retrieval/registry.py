"""Retrievers by name: `retrieval.method` in task.yaml picks a factory from `RETRIEVERS`.

The names a task may write are listed once, in harness/kinds.py (the config schema's layer, below this one);
tests/test_registries.py checks that this table has a factory for each of them and no other. A factory takes
what any retriever may need (`RetrieverInputs`) and returns a `Retriever` (harness/retrieval/retriever.py) with the
documents already indexed."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.retrieval.bm25 import BM25Index
from harness.retrieval.dense import cached_index
from harness.retrieval.hybrid import HybridIndex
from harness.retrieval.retriever import Retriever
from harness.task.types import Document


@dataclass(frozen=True)
class RetrieverInputs:
    docs: tuple[Document, ...]
    chunk_words: int
    chunk_overlap: int
    embedder: Any  # a sentence-transformers model; unused by lexical retrievers
    embedder_id: str  # what --embedder named: part of the dense index's cache key
    cache_dir: Path | None  # where a dense index is saved and memory-mapped from; None: built in memory each time


def dense(s: RetrieverInputs) -> Retriever:
    """FAISS over chunk embeddings, cached on disk (harness/retrieval/dense.py)."""
    return cached_index(s.embedder, s.embedder_id, s.docs, s.chunk_words, s.chunk_overlap, s.cache_dir)


def bm25(s: RetrieverInputs) -> Retriever:
    """Lexical BM25 over the same chunks (harness/retrieval/bm25.py)."""
    lexical = BM25Index(s.chunk_words, s.chunk_overlap)
    lexical.add(s.docs)
    return lexical


def hybrid(s: RetrieverInputs) -> Retriever:
    """Both, fused by reciprocal rank (harness/retrieval/hybrid.py)."""
    lexical = bm25(s)
    return HybridIndex(dense(s), lexical)


RETRIEVERS: dict[str, Callable[[RetrieverInputs], Retriever]] = {"dense": dense, "bm25": bm25, "hybrid": hybrid}


def build_retriever(method: str, embedder, embedder_id: str, docs: tuple[Document, ...], chunk_words: int,
                    chunk_overlap: int, cache_dir: Path | None) -> Retriever:
    """The index a retrieving arm searches, built by the factory registered under `method`."""
    factory = RETRIEVERS.get(method)
    if factory is None:  # the config allows only registered names: this is a caller's slip, not a user's
        raise ValueError(f"no retriever named {method!r}; registered: {', '.join(RETRIEVERS)}")
    return factory(RetrieverInputs(docs, chunk_words, chunk_overlap, embedder, embedder_id, cache_dir))
