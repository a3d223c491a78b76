"""Documents cut into the overlapping word windows that retrieval indexes, and the passage type it returns.

Kept apart from harness/retrieval/dense.py so that reading chunks (e.g. `harness validate` counting what pair
generation will see) needs no FAISS."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from harness.task.provenance import cite, split_markers
from harness.task.types import Document


@dataclass(frozen=True)
class Passage:
    doc: str
    text: str
    score: float = 0.0
    cite: str = ""  # where an imported document's passage came from, e.g. "manual.pdf p. 12"; "" otherwise


def chunk_document(doc: Document, words: int, overlap: int) -> list[Passage]:
    """Overlapping word windows. Long documents become many chunks; nothing is truncated.

    An imported document (one with a `source`) has its page markers taken out of the text, and each chunk cites
    the source and the page of the last marker at or before its first word. Any other document is cut exactly
    as before, markers or not, so existing tasks' chunks and cached indexes stay the same."""
    tokens, marks = split_markers(doc.text.split()) if doc.source else (doc.text.split(), [])
    starts = [at for at, _, _ in marks]
    step = max(1, words - min(overlap, words - 1))
    chunks = []
    for start in range(0, len(tokens), step):
        before = bisect_right(starts, start)  # markers at or before the chunk's first word
        label = cite(doc.source, *marks[before - 1][1:]) if before else doc.source
        chunks.append(Passage(doc.path, " ".join(tokens[start:start + words]), cite=label))
        if start + words >= len(tokens):
            break
    return chunks
