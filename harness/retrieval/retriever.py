"""What every retriever offers the arms, the pair filters and the report: the `Retriever` protocol.

A retriever holds chunks of the documents and answers a batch of queries at once (one embedding call for a dense
index, one scoring pass for BM25). The built-in ones (dense.VectorIndex, bm25.BM25Index, hybrid.HybridIndex)
share these members and nothing more is asked of a new one; harness/retrieval/registry.py builds them by name."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from harness.retrieval.chunking import Passage
from harness.task.types import Document


@runtime_checkable
class Retriever(Protocol):
    @property
    def kind(self) -> str:
        """Which index is in use, as the report names it ("exact", "hnsw", "bm25", "hybrid")."""

    @property
    def passages(self) -> Sequence[Passage]:
        """Every chunk held, in index order (the report counts them)."""

    def add(self, docs: Iterable[Document], progress: bool = ...) -> int:
        """Chunks and indexes more documents (an update arriving); returns how many chunks were added."""

    def search(self, queries: list[str], k: int) -> list[list[Passage]]:
        """The best `k` passages for each query, best first, each with its score; fewer when fewer are held."""

    @property
    def nbytes(self) -> int:
        """The index's size in memory, for the cost table."""
