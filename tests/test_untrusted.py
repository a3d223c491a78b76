"""Task folders and run folders from strangers (issue 10): every bad input is refused with one line naming
the problem, before any model loads, writing nothing outside --results-dir and leaving nothing in it."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.task.folder
from harness.cli import main
from harness.text import normalize_words, token_set_similarity, word_set
from test_task_errors import append, edit


def added(path: Path, line: str) -> int:
    """Appends a line to a task file and returns its line number (the fixtures may grow)."""
    append(path, line)
    return len(path.read_text().splitlines())


@pytest.fixture
def no_model(monkeypatch):
    """The loaders fail the test if reached: every refusal here must come before a model loads."""
    import harness.inference.models

    def reached(*a, **k):
        raise AssertionError("MODEL LOADED")
    monkeypatch.setattr(harness.inference.models, "load_generator", reached)
    monkeypatch.setattr(harness.inference.models, "load_embedder", reached)


def refused(capsys, tasks_dir: Path, *extra: str, command: str = "run", task: str = "tiny") -> str:
    """Runs the command, asserts the refusal shape (exit 2, one line, no traceback, no results) and
    returns the message."""
    results = tasks_dir.parent / "results"
    argv = [command, "--task", task, "--tasks-dir", str(tasks_dir)]
    if command == "run":
        argv += ["--results-dir", str(results), "--cache-dir", str(tasks_dir.parent / "cache")]
    code = main(argv + list(extra))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err and "MODEL LOADED" not in err, err
    assert not results.exists() or not any(results.rglob("*")), "a refused run must leave nothing in results"
    return lines[0]


# ---------------------------------------------------------------- unsafe: names and links

@pytest.mark.parametrize("name", ["../../../../tmp/escaped-by-name", "/tmp/escaped-by-name", "a/b", ".hidden"])
def test_name_cannot_place_output_outside_results(tasks_dir, capsys, no_model, name):
    edit(tasks_dir / "tiny" / "task.yaml", "name: tiny", f"name: {json.dumps(name)}")
    msg = refused(capsys, tasks_dir)
    assert "task.yaml:2: name:" in msg and "not a plain task name" in msg
    assert not Path("/tmp/escaped-by-name").exists()
    assert "not a plain task name" in refused(capsys, tasks_dir, command="validate")
    main(["list", "--tasks-dir", str(tasks_dir)])
    assert "invalid" in capsys.readouterr().out


def test_name_of_another_task_does_not_write_into_its_results(tasks_dir, capsys):
    import shutil
    from harness.run.preflight import preflight
    shutil.copytree(tasks_dir / "tiny", tasks_dir / "tiny2")
    checked = preflight("tiny2", tasks_dir, ["base"], set(), results_dir=tasks_dir.parent / "results")
    assert checked.task.name == "tiny2"  # the run folder is RESULTS_DIR/tiny2, never RESULTS_DIR/tiny
    assert any("differs from the folder name" in w for w in checked.warnings)


def test_symlink_to_a_file_outside_the_task_is_refused(tasks_dir, capsys, no_model, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tasks_dir / "tiny" / "docs" / "passwd.md").symlink_to(secret)
    for command in ("run", "validate"):
        msg = refused(capsys, tasks_dir, command=command)
        assert "docs/passwd.md: is a symbolic link" in msg


@pytest.mark.parametrize("link", ["task.yaml", "test.jsonl", "updates/docs"])
def test_every_file_the_task_reads_refuses_links(tasks_dir, capsys, link, tmp_path):
    target = tasks_dir / "tiny" / link
    moved = tmp_path / ("moved-" + target.name)
    target.rename(moved)
    target.symlink_to(moved)
    assert f"{link}: is a symbolic link" in refused(capsys, tasks_dir, command="validate")


def test_a_pipe_in_docs_is_refused_not_read(tasks_dir, capsys):
    os.mkfifo(tasks_dir / "tiny" / "docs" / "pipe.md")
    assert "docs/pipe.md: is not a regular file" in refused(capsys, tasks_dir, command="validate")


# ---------------------------------------------------------------- preflight: before any model loads

def test_finetune_with_too_few_pairs(tasks_dir, capsys, no_model):
    path = tasks_dir / "tiny" / "train.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    msg = refused(capsys, tasks_dir, "--pipelines", "base,finetune")
    assert "train.jsonl" in msg and "finetune" in msg and "at least 4" in msg
    # validate warns (the default arms include finetune) but the task itself is fine
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0
    assert "warning" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_out_of_range(tasks_dir, capsys, no_model, seed):
    assert f"--seed {seed}: a seed must be between 0 and" in refused(capsys, tasks_dir, "--seed", seed)


def test_unknown_target_module_is_named_with_its_line(tasks_dir, capsys, no_model):
    edit(tasks_dir / "tiny" / "task.yaml", "  learning_rate: 0.001",
         "  learning_rate: 0.001\n  target_modules: [q_proj, no_such_proj]")
    line = next(i for i, s in enumerate((tasks_dir / "tiny" / "task.yaml").read_text().splitlines(), 1)
                if "target_modules" in s)
    msg = refused(capsys, tasks_dir, "--pipelines", "finetune")
    assert f"task.yaml:{line}: finetune.target_modules: 'no_such_proj'" in msg and "q_proj" in msg


@pytest.mark.parametrize("where", ["/proc", "file"])
def test_cache_dir_not_writable(tasks_dir, capsys, no_model, where):
    path = where if where == "/proc" else str(tasks_dir / "tiny" / "task.yaml")
    assert "--cache-dir" in refused(capsys, tasks_dir, "--cache-dir", path)


def test_resume_with_nothing_to_resume(tasks_dir, capsys, no_model):
    assert "nothing to resume" in refused(capsys, tasks_dir, "--resume")


def test_resume_with_changed_inputs_is_refused_before_a_model_loads(tasks_dir, capsys, no_model):
    from harness.arms.catalog import arm_names, needs_pairs
    from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL
    from harness.run.preflight import preflight
    from harness.run.record import resume_key

    results = tasks_dir.parent / "results"
    checked = preflight("tiny", tasks_dir, arm_names, needs_pairs, model=DEFAULT_MODEL)
    unfinished = results / "tiny" / ".20260101-000000.partial"  # as a killed run of the same command leaves it
    unfinished.mkdir(parents=True)
    (unfinished / "resume_key").write_text(resume_key(checked.task, checked.config, checked.names, checked.source,
                                                      DEFAULT_EMBEDDER, True, 1, None))
    argv = ["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--results-dir", str(results),
            "--cache-dir", str(tasks_dir.parent / "cache"), "--resume"]
    # Unchanged inputs match and go on to load the model, which no_model stops: the key is the one run compares.
    assert main(argv) == 1 and "MODEL LOADED" in capsys.readouterr().err
    append(tasks_dir / "tiny" / "docs" / "food.md", "The island also grows yams.")
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert len(lines) == 1 and "MODEL LOADED" not in err and "Traceback" not in err, err
    assert "--resume" in lines[0] and "none with the same task data" in lines[0] and "drop --resume" in lines[0]
    assert [p.name for p in (results / "tiny").iterdir()] == [unfinished.name]  # nothing new started


@pytest.mark.parametrize("kind", ["missing", "empty folder", "file"])
def test_bad_embedder(tasks_dir, capsys, no_model, tmp_path, kind):
    path = tmp_path / "emb"
    if kind == "empty folder":
        path.mkdir()
    elif kind == "file":
        path.write_text("x")
    msg = refused(capsys, tasks_dir, "--embedder", str(path) if kind != "missing" else "./no/such/embedder")
    assert ("no such file or folder" if kind == "missing" else "not a sentence-transformers model folder") in msg


# ---------------------------------------------------------------- --pipelines

@pytest.mark.parametrize("spec,says", [("base,base", "names base more than once"),
                                       ("finetune,finetune", "names finetune more than once"),
                                       ("", "--pipelines is empty"), ("base,,rag", "empty name"),
                                       ("nope", "unknown pipeline")])
def test_pipelines_selection(tasks_dir, capsys, no_model, spec, says):
    assert says in refused(capsys, tasks_dir, "--pipelines", spec)


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("kind,says", [("empty folder", "not a model"), ("bad gguf", "not a GGUF file"),
                                       ("config only", "no weights"), ("text file", "not a .gguf model")])
def test_existing_but_invalid_model(tasks_dir, capsys, no_model, tmp_path, kind, says):
    path = tmp_path / "model"
    path.mkdir()
    if kind == "bad gguf":
        path = path / "m.gguf"
        path.write_bytes(b"not a gguf at all")
    elif kind == "config only":
        (path / "config.json").write_text("{}")
    elif kind == "text file":
        path = path / "m.txt"
        path.write_text("x")
    msg = refused(capsys, tasks_dir, "--model", str(path))
    assert says in msg and "no local folder has that name" not in msg


def test_unreachable_hub_fails_fast_and_goes_offline(tasks_dir, capsys, no_model, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    msg = refused(capsys, tasks_dir, "--model", "no-such-org/no-such-model")
    assert time.perf_counter() - start < 5
    assert "does not answer" in msg and "local folder" in msg
    assert os.environ["HF_HUB_OFFLINE"] == "1"


# ---------------------------------------------------------------- data reading

def deep_json(depth: int) -> str:
    return json.dumps({"question": "q", "answer": "a"})[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [101, 30000])
def test_json_nested_too_deep(tasks_dir, capsys, depth):
    n = added(tasks_dir / "tiny" / "train.jsonl", deep_json(depth))
    assert f"train.jsonl:{n}: JSON nested deeper than 100" in refused(capsys, tasks_dir, command="validate")


def test_jsonl_line_too_long(tasks_dir, capsys):
    n = added(tasks_dir / "tiny" / "train.jsonl", json.dumps({"question": "q" * 70000, "answer": "a"}))
    assert f"train.jsonl:{n}: line is 68 KB, over the 64 KB limit" in refused(capsys, tasks_dir, command="validate")


def test_document_over_the_size_limit(tasks_dir, capsys, monkeypatch):
    monkeypatch.setattr(harness.task.folder, "MAX_DOC_BYTES", 2048)  # the real limit is 20 MB
    (tasks_dir / "tiny" / "docs" / "big.md").write_text("word " * 1000)
    assert "docs/big.md: is 5 KB, over the 2 KB limit" in refused(capsys, tasks_dir, command="validate")


def test_yaml_nested_too_deep_and_list_goes_on(tasks_dir, capsys):
    import shutil
    shutil.copytree(tasks_dir / "tiny", tasks_dir / "deep")
    n = added(tasks_dir / "deep" / "task.yaml", "x: " + "[" * 20000 + "]" * 20000)
    assert f"task.yaml:{n}: nested deeper than 100 levels" in refused(capsys, tasks_dir, command="validate",
                                                                     task="deep")
    assert main(["list", "--tasks-dir", str(tasks_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("deep") and "invalid" in line and "nested" in line for line in out)
    assert any(line.startswith("tiny ") and "invalid" not in line for line in out)


def test_duplicate_yaml_key(tasks_dir, capsys):
    n = added(tasks_dir / "tiny" / "task.yaml", "seed: 7")
    assert f"task.yaml:{n}: duplicate key 'seed' (first on line 5)" in refused(capsys, tasks_dir, command="validate")


def test_yaml_aliases_are_refused(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "task.yaml", "description: Three", "description: &d Three")
    append(tasks_dir / "tiny" / "task.yaml", "x: *d")
    assert "aliases" in refused(capsys, tasks_dir, command="validate")


def test_unicode_line_separators_inside_json_strings_are_text(tasks_dir, capsys):
    path = tasks_dir / "tiny" / "train.jsonl"
    row = '{"question": "Odd\u2028spacing\u2029in\u0085here?", "answer": "yes"}'
    n = len(path.read_text().split("\n"))  # the broken row's line, counted before U+2028 is in the file
    path.write_text(row + "\n" + path.read_text() + '{"question": "Where?"}\n')
    assert f'train.jsonl:{n + 1}: missing or empty "answer"' in refused(capsys, tasks_dir, command="validate")


def test_byte_order_mark_is_accepted(tasks_dir, capsys):
    for name in ("train.jsonl", "test.jsonl", "task.yaml"):
        path = tasks_dir / "tiny" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0


@pytest.mark.parametrize("name", ["2024", "null", "true"])
def test_new_task_with_a_yaml_keyword_name_validates(tmp_path, capsys, name):
    assert main(["new-task", name, "--tasks-dir", str(tmp_path)]) == 0
    assert main(["validate", "--task", name, "--tasks-dir", str(tmp_path)]) == 0
    assert f"{name}: ok" in capsys.readouterr().out


def test_new_task_into_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["new-task", "x", "--tasks-dir", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err and "Traceback" not in err


# ---------------------------------------------------------------- leakage

def test_words_stay_whole():
    assert normalize_words("The product's cable") == "products cable"
    assert word_set("Products' cables?") == word_set("products cables")
    assert token_set_similarity("What is the capital of Velmora?", "Velmora: what is its capital?") < 0.9
    assert token_set_similarity("Which colour is the cable", "the cable is which colour") == 1.0


def test_apostrophe_leak_is_caught(tasks_dir, capsys):
    n = added(tasks_dir / "tiny" / "train.jsonl", '{"question": "Which animal is the national animal of '
                                                   'Velmoras", "answer": "heron"}')
    edit(tasks_dir / "tiny" / "test.jsonl", "national animal of Velmora?", "national animal of Velmora's?")
    assert f"test.jsonl:2 = train.jsonl:{n}" in refused(capsys, tasks_dir, command="validate")


def test_near_duplicate_leak_is_reported_with_both_lines(tasks_dir, capsys):
    question = "What dish is traditionally cooked for the harvest festival in the villages of Velmora each autumn?"
    n = added(tasks_dir / "tiny" / "train.jsonl", json.dumps({
        "question": "Each autumn, what dish is traditionally cooked for the harvest festival in the old villages "
                    "of Velmora?", "answer": "barley stew"}))
    edit(tasks_dir / "tiny" / "test.jsonl", "What dish is traditional in Velmora?", question)
    msg = refused(capsys, tasks_dir, command="validate")
    assert f"test.jsonl:3 ≈ train.jsonl:{n} (similarity 0.93)" in msg and "appear in training data" in msg


def test_same_question_twice_in_test(tasks_dir, capsys):
    n = added(tasks_dir / "tiny" / "test.jsonl", '{"id": "t9", "question": "what is the CAPITAL of Velmora", '
                                                  '"answers": ["Quillport"]}')
    assert f"test.jsonl:{n}: the same question as line 1;" in refused(capsys, tasks_dir, command="validate")


def test_stable_question_citing_update_docs(tasks_dir, capsys):
    edit(tasks_dir / "tiny" / "test.jsonl", '"fresh": true, ', "")
    assert "test.jsonl:4" in (msg := refused(capsys, tasks_dir, command="validate")) and "not marked" in msg


# ---------------------------------------------------------------- run folders for report / compare

def fake_run(root: Path, rows: int = 3) -> Path:
    run = root / "run"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": "tiny", "pipelines": ["base"], "seed": 0,
                                              "config": {"metric": "contains"}}))
    (run / "costs.json").write_text(json.dumps({"costs": {"base": {}}, "timings": {"base": {}}}))
    with open(run / "predictions.jsonl", "w") as f:
        for i in range(rows):
            f.write(json.dumps({"phase": "main", "pipeline": "base", "id": f"t{i}", "answer": "x",
                                "contains": 1.0, "f1": 0.5}) + "\n")
    return run


def report(capsys, run: Path, *more: Path) -> str:
    code = main(["compare", str(run), str(more[0])] if more else ["report", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("damage,says", [
    (lambda r: (r / "predictions.jsonl").write_text((r / "predictions.jsonl").read_text()[:-20]),
     "predictions.jsonl:3: malformed JSON"),
    (lambda r: (r / "predictions.jsonl").write_text(""), "no predictions"),
    (lambda r: (r / "run.json").write_text('{"task": "tiny", "pipel'), "run.json:1: malformed JSON"),
    (lambda r: (r / "run.json").write_text("[]"), "must hold a JSON object"),
    (lambda r: (r / "costs.json").unlink(), "missing costs.json"),
])
def test_damaged_run_folder(tmp_path, capsys, damage, says):
    run = fake_run(tmp_path)
    damage(run)
    assert says in report(capsys, run)
    assert says in report(capsys, run, fake_run(tmp_path / "b"))


def test_report_refuses_a_row_without_its_metric(tmp_path, capsys):
    run = fake_run(tmp_path)
    lines = (run / "predictions.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace(', "f1": 0.5', "")
    (run / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    assert "predictions.jsonl:2: no f1 score" in report(capsys, run)


# ---------------------------------------------------------------- errors and speed

def test_unexpected_errors_are_one_line_unless_debugging(tasks_dir, capsys, monkeypatch):
    import harness.task.registry

    def boom(root):
        raise RuntimeError("something broke\nsecond line")
    monkeypatch.setattr(harness.task.registry, "load_task", boom)
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "something broke second line (RuntimeError" in err and "HARNESS_DEBUG" in err
    monkeypatch.setenv("HARNESS_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)])


def test_light_commands_import_no_torch(tasks_dir, tmp_path):
    run = fake_run(tmp_path)
    script = f"""
import sys
from harness.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
assert main(["validate", "--task", "tiny", "--tasks-dir", {str(tasks_dir)!r}]) == 0
assert main(["list", "--tasks-dir", {str(tasks_dir)!r}]) == 0
assert main(["new-task", "fresh", "--tasks-dir", {str(tasks_dir)!r}]) == 0
main(["report", {str(run / "missing")!r}])
main(["compare", {str(run)!r}, {str(run)!r}])
heavy = [m for m in ("torch", "transformers", "faiss", "sentence_transformers") if m in sys.modules]
print("HEAVY", heavy)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_compare_reads_runs_whose_accuracy_is_split_by_knowledge(tmp_path, capsys):
    runs = [fake_run(tmp_path / name) for name in ("a", "b")]
    for run, score in zip(runs, (0.25, 0.5)):
        (run / "accuracy.csv").write_text(f"knowledge,pipeline,contains\nall stable,base,{score}\ntaught,base,1.0\n")
        (run / "freshness.csv").write_text("pipeline,fresh_after_update_no_rebuild,fresh_after_rebuild\nbase,,\n")
        (run / "cost.csv").write_text("pipeline,latency_mean_s,build_s\nbase,1.0,0.0\n")
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    assert "| base | 0.250 | 0.500 | 0.250 |" in capsys.readouterr().out
    (runs[1] / "cost.csv").write_text("pipeline,build_s\nbase,0.0\n")
    assert "cost.csv: no column latency_mean_s" in report(capsys, runs[0], runs[1])
