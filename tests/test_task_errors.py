"""Every bad task folder exits non-zero with one message naming the file (and line), and writes nothing."""
from pathlib import Path

import pytest

from harness.cli import main


def run_cli(capsys, tasks_dir: Path, *extra: str, task: str = "tiny") -> tuple[int, str]:
    results = tasks_dir.parent / "results"
    code = main(["run", "--task", task, "--tasks-dir", str(tasks_dir), "--results-dir", str(results), *extra])
    err = capsys.readouterr().err
    assert not results.exists(), "a failed run must not leave results behind"
    return code, err


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unknown_task_lists_the_available_ones(tasks_dir, capsys):
    code, err = run_cli(capsys, tasks_dir, task="nope")
    assert code == 2 and "unknown task 'nope'" in err and "tiny" in err


@pytest.mark.parametrize("name", ["../tiny", "tiny/../tiny", "..", "/etc"])
def test_task_name_cannot_escape_the_tasks_dir(tasks_dir, capsys, name):
    code, err = run_cli(capsys, tasks_dir, task=name)
    assert code == 2 and "invalid task name" in err


def test_missing_task_yaml(tasks_dir, capsys):
    (tasks_dir / "tiny" / "task.yaml").unlink()
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "task.yaml" in err and "missing" in err


def test_misspelt_key_is_named_with_its_line(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "task.yaml", "  top_k: 1", "  topk: 1")
    code, err = run_cli(capsys, tasks_dir)
    lines = (tasks_dir / "tiny" / "task.yaml").read_text().splitlines()
    line = next(i for i, s in enumerate(lines, 1) if "topk" in s)
    assert code == 2 and f"task.yaml:{line}: retrieval.topk: unknown key" in err


@pytest.mark.parametrize("old,new,key,says", [
    ("learning_rate: 0.001", "learning_rate: -0.001", "finetune.learning_rate", "greater than 0"),
    ("top_k: 1", "top_k: 0", "retrieval.top_k", "greater than or equal to 1"),
    ("epochs: 2", "epochs: two", "finetune.epochs", "integer"),
    # A demonstration format is 2 or 3 numbers, the third (passages for the question) at least 1: caught here, not
    # when the choice unpacks it after the model has loaded.
    ("seed: 0", "seed: 0\ndemonstrations:\n  candidates: [[0, 0], [1, 1, 0]]", "demonstrations.candidates.1",
     "must be 1 or more"),
    ("seed: 0", "seed: 0\ndemonstrations:\n  candidates: [[1]]", "demonstrations.candidates.0", "at least 2 items"),
    ("seed: 0", "seed: 0\ndemonstrations:\n  candidates: []", "demonstrations.candidates", "at least 1 item"),
])
def test_wrong_value_type_or_range(tasks_dir, capsys, old, new, key, says):
    edit(tasks_dir / "tiny" / "task.yaml", old, new)
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and f"{key}:" in err and says in err and "task.yaml:" in err


def test_yaml_tags_never_build_objects(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "task.yaml", "description: Three", "description: !!python/object/apply:os.system ['true']\nx: Three")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "not valid YAML" in err


def test_malformed_jsonl_names_the_line(tasks_dir, capsys):
    path = tasks_dir / "tiny" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-1]  # drop the closing brace
    path.write_text("\n".join(lines) + "\n")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "train.jsonl:3: malformed JSON" in err


def test_line_without_answer(tasks_dir, capsys):
    append(tasks_dir / "tiny" / "train.jsonl", '{"question": "Where?"}')
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and 'train.jsonl:9: missing or empty "answer"' in err


def test_duplicate_test_ids(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "test.jsonl", '"id": "t2"', '"id": "t1"')
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl:2: duplicate id 't1' (first used on line 1)" in err


def test_empty_test_set(tasks_dir, capsys):
    (tasks_dir / "tiny" / "test.jsonl").write_text("")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl: test set is empty" in err


def test_fresh_question_needs_updates(tasks_dir, capsys):
    import shutil
    shutil.rmtree(tasks_dir / "tiny" / "updates")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl:4:" in err


def test_leaked_test_question_is_refused_by_line(tasks_dir, capsys):
    # Same question up to case and punctuation: still a leak.
    append(tasks_dir / "tiny" / "train.jsonl", '{"question": "what dish is traditional in velmora", "answer": "barley stew"}')
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl:3" in err and "train.jsonl:9" in err and "appear in training data" in err


def test_a_question_made_plural_is_still_a_leak(tasks_dir, capsys):
    # One word made plural: Jaccard 4/6 on raw word sets, under the 0.9 bar, unless plurals fold.
    append(tasks_dir / "tiny" / "test.jsonl", '{"id": "g", "question": "Who first noticed coffee goats?", "answer": "x"}')
    append(tasks_dir / "tiny" / "train.jsonl", '{"question": "Who first noticed coffee goat?", "answer": "Kaldi"}')
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl:6" in err and "train.jsonl:9" in err and "appear in training data" in err


def test_a_question_one_word_apart_is_not_a_leak(tasks_dir, capsys):
    # Another fact about the same place is a fair training pair: the check must not refuse it.
    append(tasks_dir / "tiny" / "train.jsonl", '{"question": "What drink is traditional in Velmora?", "answer": "x"}')
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0


def test_empty_document(tasks_dir, capsys):
    (tasks_dir / "tiny" / "docs" / "empty.md").write_text("  \n")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "docs/empty.md: document is empty" in err


def test_binary_document(tasks_dir, capsys):
    (tasks_dir / "tiny" / "docs" / "blob.md").write_bytes(b"\x89PNG\x00\x00data")
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "docs/blob.md" in err and "binary" in err


def test_non_utf8_document_names_the_line(tasks_dir, capsys):
    (tasks_dir / "tiny" / "docs" / "latin.md").write_bytes("# ok\ncaf\xe9 cr\xe8me\n".encode("latin-1"))
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "docs/latin.md:2: not UTF-8" in err


def test_doc_reference_must_exist(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "test.jsonl", '"doc": "docs/food.md"', '"doc": "docs/fod.md"')
    code, err = run_cli(capsys, tasks_dir)
    assert code == 2 and "test.jsonl:3" in err and "docs/fod.md" in err


def test_model_not_found_offline_says_how_to_fix(tasks_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run_cli(capsys, tasks_dir, "--model", "no-such-org/no-such-model")
    assert code == 2 and "no-such-org/no-such-model" in err and "offline" in err and "local folder" in err


def test_validate_reports_sizes_without_loading_models(tasks_dir, capsys):
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny: ok" in out and "train 8" in out and "fresh 1" in out
