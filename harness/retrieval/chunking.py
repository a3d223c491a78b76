"""Documents cut into the overlapping word windows that retrieval indexes, and the passage type it returns.

Kept apart from harness/retrieval/dense.py so that reading chunks (e.g. `harness validate` counting what pair
generation will see) needs no FAISS."""
from __future__ import annotations

from dataclasses import dataclass

from harness.task.folder import Document


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
