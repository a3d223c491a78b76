"""`harness new-task` writes a folder that validates, whose template states the real defaults."""
from harness.cli import main
from harness.config import TaskConfig
from harness.task.registry import find_task


def test_new_task_validates_and_documents_the_defaults(tmp_path, capsys):
    assert main(["new-task", "mydomain", "--tasks-dir", str(tmp_path)]) == 0
    assert main(["validate", "--task", "mydomain", "--tasks-dir", str(tmp_path)]) == 0
    task = find_task("mydomain", tmp_path)
    assert task.config.model_dump(exclude={"description"}) == TaskConfig(name="mydomain").model_dump(exclude={"description"})
    assert task.sizes == {"docs": 1, "train": 1, "test": 2, "fresh": 1, "update_docs": 1}
    assert "# " in (tmp_path / "mydomain" / "task.yaml").read_text()  # commented for the user


def test_new_task_refuses_to_overwrite_and_lists(tmp_path, capsys):
    assert main(["new-task", "mine", "--tasks-dir", str(tmp_path)]) == 0
    assert main(["new-task", "mine", "--tasks-dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["list", "--tasks-dir", str(tmp_path)]) == 0
    assert "mine" in capsys.readouterr().out


def test_tasks_dir_from_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_TASKS_DIR", str(tmp_path))
    assert main(["new-task", "envtask"]) == 0
    assert (tmp_path / "envtask" / "task.yaml").is_file()


def test_every_command_has_help(capsys):
    import pytest
    for cmd in ("run", "list", "validate", "new-task", "report", "compare"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0 and "usage: harness" in capsys.readouterr().out


def test_example_files_are_marked_and_warned_about_until_replaced(tmp_path, capsys):
    assert main(["new-task", "mine", "--tasks-dir", str(tmp_path)]) == 0
    assert f"--tasks-dir {tmp_path}" in capsys.readouterr().out  # the hint works as printed
    assert (tmp_path / "mine" / "docs" / "example.md").read_text().startswith("<!-- harness:example")
    assert main(["validate", "--task", "mine", "--tasks-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "still holds the `harness new-task` examples" in err and "docs/example.md" in err and "train.jsonl:1" in err
    (tmp_path / "mine" / "docs" / "example.md").write_text("# Mine\n\nThe example product ships with a blue cable.\n")
    for name in ("train.jsonl", "test.jsonl", "updates/train.jsonl"):
        path = tmp_path / "mine" / name
        path.write_text(path.read_text().replace(', "harness_example": true', ""))
    (tmp_path / "mine" / "updates" / "docs" / "changelog.md").write_text("# Changes\n\nFrom May: a green cable.\n")
    assert main(["validate", "--task", "mine", "--tasks-dir", str(tmp_path)]) == 0
    assert "new-task` examples" not in capsys.readouterr().err
