"""Chunking, embedding and a FAISS inner-product index over normalised vectors (i.e. cosine similarity)."""
from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from .task import Document


@dataclass(frozen=True)
class Passage:
    doc: str
    text: str
    score: float = 0.0


def chunk_document(doc: Document, words: int, overlap: int) -> list[Passage]:
    """Overlapping word windows. Long documents become many chunks; nothing is truncated."""
    tokens = doc.text.split()
    step = max(1, words - min(overlap, words - 1))
    chunks = []
    for start in range(0, len(tokens), step):
        chunks.append(Passage(doc.path, " ".join(tokens[start:start + words])))
        if start + words >= len(tokens):
            break
    return chunks


class VectorIndex:
    """Exact inner-product search; `add` extends the index without re-embedding what is already in it."""

    def __init__(self, embedder, chunk_words: int, chunk_overlap: int):
        self.embedder = embedder
        self.chunk_words, self.chunk_overlap = chunk_words, chunk_overlap
        self.index = faiss.IndexFlatIP(embedder.get_embedding_dimension())
        self.passages: list[Passage] = []

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        vecs = self.embedder.encode(texts, batch_size=64, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def add(self, docs: tuple[Document, ...] | list[Document]) -> int:
        chunks = [c for d in docs for c in chunk_document(d, self.chunk_words, self.chunk_overlap)]
        if chunks:
            self.index.add(self.embed([c.text for c in chunks], progress=len(chunks) > 64))
            self.passages.extend(chunks)
        return len(chunks)

    def search(self, queries: list[str], k: int) -> list[list[Passage]]:
        if not self.passages:
            return [[] for _ in queries]
        scores, ids = self.index.search(self.embed(queries), min(k, len(self.passages)))
        return [[Passage(self.passages[i].doc, self.passages[i].text, float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(scores, ids)]

    @property
    def nbytes(self) -> int:
        return int(faiss.serialize_index(self.index).nbytes)
