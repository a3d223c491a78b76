import contextlib
import io
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main

FIXTURES = Path(__file__).parent / "fixtures"

# Nothing in the suite may reach a model hub: the embedded models are local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture tasks that a test may break."""
    dst = tmp_path / "tasks"
    shutil.copytree(FIXTURES, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One real end-to-end run of the tiny task on the embedded models, shared by the tests that read it."""
    root = tmp_path_factory.mktemp("run")
    said = io.StringIO()  # what the user reads: tests/test_api.py holds it to the golden run
    with contextlib.redirect_stdout(said):
        code = main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(root / "results"),
                     "--cache-dir", str(root / "cache")])
    assert code == 0
    (run_dir,) = (root / "results" / "tiny").iterdir()
    (root / "stdout.txt").write_text(said.getvalue().replace(str(root), "<tmp>"))
    return run_dir


@pytest.fixture(scope="session")
def seeded_run(tiny_run, tmp_path_factory) -> Path:
    """base and finetune again on the session run's cache, with two seeds and the task's own deployment profile.

    One run for two tests that would each start one: tests/test_run.py reads its seeds (seed 0's adapter is the
    session run's, seed 1 trains anew) and tests/test_projection.py the profile it recorded. Neither setting touches
    what the other test reads: seeds change accuracy and predictions, the profile only the projection."""
    root = tmp_path_factory.mktemp("seeded")
    shutil.copytree(FIXTURES / "tiny", root / "tasks" / "tiny")
    shutil.copy(Path(__file__).parents[1] / "harness" / "task" / "deployments" / "h100-8b.yaml",
                root / "tasks" / "tiny" / "deployment.yaml")
    yaml = root / "tasks" / "tiny" / "task.yaml"
    yaml.write_text(yaml.read_text() + "deployment: deployment.yaml\n")
    # A copy of the session's cache: seed 1's adapter must not join the ones tests/test_run.py counts there.
    shutil.copytree(tiny_run.parents[2] / "cache", root / "cache")
    code = main(["run", "--task", "tiny", "--tasks-dir", str(root / "tasks"), "--results-dir", str(root / "results"),
                 "--cache-dir", str(root / "cache"), "--pipelines", "base,finetune", "--no-freshness", "--seeds", "2"])
    assert code == 0
    (run_dir,) = (root / "results" / "tiny").iterdir()
    return run_dir
