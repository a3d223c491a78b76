"""Imported documents cite their source (issue 40): page markers become "manual.pdf p. 2" on every passage that
retrieval returns, through each retriever and a saved index, while a document written by hand is cut exactly as
before."""
import json

import pytest

from harness.cli import main
from harness.inference.models import load_embedder
from harness.retrieval.bm25 import BM25Index
from harness.retrieval.chunking import chunk_document
from harness.retrieval.dense import VectorIndex, index_key
from harness.retrieval.hybrid import HybridIndex
from harness.task.folder import load_task
from harness.task.provenance import cite, split_markers, without_markers
from harness.task.types import Document

PAGES = ("<!-- page 1 -->\n\nThe espresso boiler of the Halo machine holds two litres.\n\n"
         "<!-- page 2 -->\n\nDescale the Halo every forty days with citric acid.\n")


def test_a_passage_cites_the_page_of_the_marker_at_or_before_it():
    words = " ".join(f"w{i}" for i in range(30))
    doc = Document("docs/manual.md", f"<!-- page 1 -->\n{words}\n<!-- page 12 -->\n{words}\n", source="manual.pdf")
    chunks = chunk_document(doc, words=20, overlap=5)
    assert [c.cite for c in chunks] == ["manual.pdf p. 1", "manual.pdf p. 1", "manual.pdf p. 12",
                                        "manual.pdf p. 12"]
    assert not any("<!--" in c.text or "-->" in c.text for c in chunks)
    assert {w for c in chunks for w in c.text.split()} == set(words.split())


def test_slides_and_text_before_any_marker():
    doc = Document("docs/deck.md", "Intro words here\n<!-- slide 3 -->\nSlide three text", source="deck.pptx")
    (whole,) = chunk_document(doc, words=120, overlap=30)
    assert whole.cite == "deck.pptx" and whole.text == "Intro words here Slide three text"
    (later,) = chunk_document(Document("d.md", "<!-- slide 3 -->\nthree", source="deck.pptx"), 120, 30)
    assert later.cite == "deck.pptx slide 3"
    assert cite("help.html") == "help.html"


def test_a_document_written_by_hand_is_cut_as_before():
    text = "<!-- page 4 -->\nWritten by hand, markers and all."
    (chunk,) = chunk_document(Document("docs/notes.md", text), 120, 30)
    assert chunk.text == " ".join(text.split()) and chunk.cite == ""
    docs = [Document("docs/notes.md", text)]
    assert index_key("e", docs, 120, 30) != index_key("e", [Document("docs/notes.md", text, "notes.pdf")], 120, 30)


def test_marker_helpers():
    kept, marks = split_markers("a <!-- page 7 --> b <!-- page x --> c".split())
    assert kept == ["a", "b", "<!--", "page", "x", "-->", "c"] and marks == [(1, "page", 7)]
    assert without_markers(PAGES).count("<!--") == 0


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("all-minilm-l6-v2")


def test_every_retriever_returns_the_citation(embedder, tmp_path):
    docs = [Document("docs/manual.md", PAGES, source="manual.pdf")]
    question = ["How often should the Halo be descaled?"]
    dense = VectorIndex(embedder, chunk_words=12, chunk_overlap=0)
    dense.add(docs)
    lexical = BM25Index(12, 0)
    lexical.add(docs)
    hybrid = HybridIndex(VectorIndex(embedder, 12, 0), BM25Index(12, 0))
    hybrid.add(docs)
    dense.save(tmp_path / "index")
    loaded = VectorIndex.load(tmp_path / "index", embedder)
    for index in (dense, lexical, hybrid, loaded):
        (hits,) = index.search(question, k=1)
        assert hits[0].cite == "manual.pdf p. 2" and "forty days" in hits[0].text, type(index).__name__


def test_an_index_saved_before_citations_loads_and_grows(embedder, tmp_path):
    from datasets import Dataset

    old = VectorIndex(embedder, 50, 10)
    old.add([Document("docs/a.md", "Coffee leaf rust is a fungal disease.")])
    old.save(tmp_path / "index")
    Dataset.from_dict({"doc": ["docs/a.md"], "text": [old.passages[0].text]}).save_to_disk(
        str(tmp_path / "old-passages"))  # the store as it was written before the "cite" column
    import shutil
    shutil.rmtree(tmp_path / "index" / "passages")
    shutil.move(tmp_path / "old-passages", tmp_path / "index" / "passages")
    loaded = VectorIndex.load(tmp_path / "index", embedder)
    assert loaded.passages[0].cite == ""
    loaded.add([Document("docs/m.md", PAGES, source="manual.pdf")])
    loaded.save(tmp_path / "again")
    again = VectorIndex.load(tmp_path / "again", embedder)
    assert [p.cite for p in again.passages] == ["", "manual.pdf p. 1"]


def test_the_task_reads_provenance_json(tasks_dir, capsys):
    root = tasks_dir / "tiny"
    (root / "docs" / "manual.md").write_text(PAGES)
    (root / "provenance.json").write_text(json.dumps({"documents": {
        "docs/manual.md": {"source": "manual.pdf"}, "docs/gone.md": {"source": "gone.pdf"}}}))
    task = load_task(root)
    sources = {d.path: d.source for d in task.knowledge.docs}
    assert sources["docs/manual.md"] == "manual.pdf" and sources["docs/food.md"] == ""
    assert any("docs/gone.md" in w and "re-run the import" in w for w in task.warnings)


@pytest.mark.parametrize("content,says", [("{not json", "provenance.json:1: malformed JSON"),
                                          ('{"documents": []}', 'must hold {"documents"'),
                                          ('{"documents": {"docs/food.md": {"source": 3}}}', '"source" must be')])
def test_a_damaged_provenance_json_is_one_line(tasks_dir, capsys, content, says):
    (tasks_dir / "tiny" / "provenance.json").write_text(content)
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
