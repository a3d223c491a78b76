"""Chunking is lossless; the FAISS index over the embedded MiniLM finds the right document, stays close to
exact when it turns approximate, and survives a save and a memory-mapped load."""
import subprocess
import sys

import faiss
import numpy as np
import pytest

from harness.retrieval import ann, dense
from harness.errors import HarnessError
from harness.inference.models import load_embedder
from harness.retrieval.chunking import Passage, chunk_document
from harness.retrieval.dense import VectorIndex
from harness.task.types import Document


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


@pytest.mark.parametrize("module", ["harness.retrieval.bm25", "harness.arms.training_data"])
def test_splitting_text_needs_no_faiss(module):
    # BM25 and the training rows only cut documents into chunks: loading FAISS for that is seconds for nothing.
    code = f"import sys, {module}; print(sorted(m for m in ('faiss', 'harness.retrieval.dense') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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


def _clustered(n: int, dim: int, seed: int, centres: int = 100, spread: float = 0.5) -> np.ndarray:
    """Unit vectors around random topic centres: clustered like real embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, dim)).astype(np.float32)
    x = centre[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    return exact.search(queries, k)[1]


def test_approximate_index_keeps_recall_at_10_against_exact(embedder):
    # 10k rather than more keeps the HNSW build (efConstruction=128 at 384-d) to a few seconds on 2 cores.
    data = _clustered(10_200, embedder.get_embedding_dimension(), seed=0)
    vectors, queries = data[:10_000], data[10_000:]  # queries from the same topics as the corpus
    idx = VectorIndex(embedder, 50, 10, approx_above=2_500)
    for start in range(0, len(vectors), 2_000):  # crosses the threshold on the way, as a growing corpus would
        idx.add_vectors([Passage("v.md", str(i)) for i in range(start, start + 2_000)], vectors[start:start + 2_000])
    assert idx.kind == "hnsw" and idx.index.ntotal == len(idx.passages) == 10_000
    found = idx.index.search(queries, 10)[1]
    truth = _exact_top(vectors, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95


def test_kind_follows_the_override(embedder):
    dim = embedder.get_embedding_dimension()
    vectors = _clustered(100, dim, seed=2)
    passages = [Passage("v.md", str(i)) for i in range(100)]
    for approx_above, kind in ((None, "exact"), (0, "hnsw"), (99, "hnsw"), (100, "exact")):
        idx = VectorIndex(embedder, 50, 10, approx_above=approx_above)
        idx.add_vectors(passages, vectors)
        assert idx.kind == kind, approx_above
    assert VectorIndex(embedder, 50, 10).approx_above == ann.APPROX_ABOVE == 50_000


DOCS = [Document("docs/rust.md", "Coffee leaf rust is a fungal disease caused by Hemileia vastatrix."),
        Document("docs/roast.md", "Second crack during roasting happens around 225 degrees Celsius."),
        Document("docs/k8s.md", "A Kubernetes pod is restarted by the kubelet when its liveness probe fails."),
        Document("docs/tax.md", "Capital gains on shares held over a year are taxed at the long-term rate.")]
LATER = [Document("updates/docs/wbc.md", "Mikael Jasin of Indonesia won the 2024 World Barista Championship."),
         Document("updates/docs/rose.md", "Rose bushes should be pruned in late winter before new growth.")]
QUESTIONS = ["Which fungus causes leaf rust?", "When does second crack happen?", "Why is my pod restarted?",
             "How are long-held shares taxed?", "Who won the World Barista Championship in 2024?",
             "When should roses be pruned?"]


def _top_docs(idx: VectorIndex, k: int = 2) -> list[list[str]]:
    return [[p.doc for p in hits] for hits in idx.search(QUESTIONS, k)]


def test_exact_index_turns_approximate_on_add_without_losing_passages_or_answers(embedder):
    idx = VectorIndex(embedder, chunk_words=50, chunk_overlap=10, approx_above=len(DOCS))
    idx.add(DOCS)
    assert idx.kind == "exact"
    before = _top_docs(idx)
    stored = idx.index.reconstruct_n(0, len(DOCS))
    idx.add(LATER)
    assert idx.kind == "hnsw" and len(idx.passages) == idx.index.ntotal == len(DOCS) + len(LATER)
    assert list(idx.passages[:len(DOCS)]) == [Passage(d.path, d.text) for d in DOCS]
    np.testing.assert_array_equal(idx.index.storage.reconstruct_n(0, len(DOCS)), stored)  # moved, not re-embedded
    after = _top_docs(idx)
    assert [a[0] for a in after[:4]] == [b[0] for b in before[:4]] == [d.path for d in DOCS]
    assert [a[0] for a in after[4:]] == [d.path for d in LATER]


@pytest.mark.parametrize("approx_above", [None, 0], ids=["exact", "hnsw"])
@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "in-memory"])
def test_save_and_load_give_the_same_results_and_the_index_still_grows(embedder, tmp_path, approx_above, mmap):
    idx = VectorIndex(embedder, chunk_words=50, chunk_overlap=10, approx_above=approx_above)
    idx.add(DOCS)
    idx.save(tmp_path / "index")
    loaded = VectorIndex.load(tmp_path / "index", embedder, mmap=mmap)
    assert loaded.kind == idx.kind and (loaded.chunk_words, loaded.chunk_overlap) == (50, 10)
    assert list(loaded.passages) == list(idx.passages)
    assert loaded.search(QUESTIONS, 3) == idx.search(QUESTIONS, 3)
    assert ann.is_mapped(loaded.index) == (mmap and hasattr(faiss, "IO_FLAG_MMAP_IFC"))
    # A mapped index is read-only in faiss (add would abort the process): adding must still just work.
    loaded.add(LATER)
    idx.add(LATER)
    assert loaded.search(QUESTIONS, 3) == idx.search(QUESTIONS, 3) and len(loaded.passages) == 6
    loaded.save(tmp_path / "index")  # over the folder it was loaded from
    assert list(VectorIndex.load(tmp_path / "index", embedder).passages) == list(idx.passages)


def test_load_refuses_an_index_built_with_another_embedder_size(embedder, tmp_path):
    idx = VectorIndex(embedder, chunk_words=50, chunk_overlap=10)
    idx.add(DOCS[:1])
    idx.save(tmp_path / "index")
    meta = tmp_path / "index" / "meta.json"
    meta.write_text(meta.read_text().replace('"dim": 384', '"dim": 768'))
    with pytest.raises(HarnessError, match="768-d vectors"):
        VectorIndex.load(tmp_path / "index", embedder)


def test_add_streams_a_generator_in_batches(embedder, monkeypatch):
    monkeypatch.setattr(dense, "EMBED_BATCH", 2)
    idx = VectorIndex(embedder, chunk_words=50, chunk_overlap=10)
    assert idx.add(d for d in DOCS + LATER) == 6
    assert _top_docs(idx, 1) == [[d.path] for d in DOCS + LATER]
