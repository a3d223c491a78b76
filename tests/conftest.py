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
    code = main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(root / "results"),
                 "--cache-dir", str(root / "cache")])
    assert code == 0
    (run_dir,) = (root / "results" / "tiny").iterdir()
    return run_dir
