"""Chunking is lossless; the FAISS index over the embedded MiniLM finds the right document."""
import pytest

from harness.models import load_embedder
from harness.retrieval import VectorIndex, chunk_document
from harness.task import Document


def test_long_documents_are_chunked_not_truncated():
    words = [f"w{i}" for i in range(1000)]
    chunks = chunk_document(Document("docs/long.md", " ".join(words)), words=120, overlap=30)
    assert len(chunks) == 11  # windows start every 90 words
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(words)
    assert chunks[-1].text.split()[-1] == "w999"


def test_short_document_is_one_chunk():
    assert len(chunk_document(Document("d.md", "one two three"), words=120, overlap=30)) == 1


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("all-minilm-l6-v2")


def test_index_retrieves_the_matching_document_and_grows(embedder):
    idx = VectorIndex(embedder, chunk_words=50, chunk_overlap=10)
    idx.add([Document("docs/rust.md", "Coffee leaf rust is a fungal disease caused by Hemileia vastatrix."),
             Document("docs/roast.md", "Second crack during roasting happens around 225 degrees Celsius.")])
    (hits,) = idx.search(["Which fungus causes leaf rust?"], k=1)
    assert hits[0].doc == "docs/rust.md" and 0 < hits[0].score <= 1.0001
    idx.add([Document("updates/docs/wbc.md", "Mikael Jasin of Indonesia won the 2024 World Barista Championship.")])
    (hits,) = idx.search(["Who won the World Barista Championship in 2024?"], k=1)
    assert hits[0].doc == "updates/docs/wbc.md"
    assert len(idx.passages) == 3 and idx.nbytes > 0
