"""Task loading facts the report relies on."""
from harness.task.registry import find_task


def test_answer_coverage_counts_stable_questions_taught_in_training(tasks_dir):
    assert find_task("tiny", tasks_dir).answer_coverage() == 0.75  # t5 is answered only by the documents
    train = tasks_dir / "tiny" / "train.jsonl"
    train.write_text("".join(l + "\n" for l in train.read_text().splitlines() if "barley stew" not in l))
    assert find_task("tiny", tasks_dir).answer_coverage() == 2 / 4  # the fresh question is not counted


def test_long_document_is_loaded_whole(tasks_dir):
    text = "# Long\n" + " ".join(f"word{i}" for i in range(20000))
    (tasks_dir / "tiny" / "docs" / "long.md").write_text(text)
    doc = next(d for d in find_task("tiny", tasks_dir).knowledge.docs if d.path == "docs/long.md")
    assert doc.text == text
