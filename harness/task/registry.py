"""Finds task folders by name. A task is any folder with a task.yaml under the tasks directory."""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError
from harness.names import TASK_NAME_RULE, is_task_name
from harness.task.folder import load_task
from harness.task.types import Task

ENV_VAR = "HARNESS_TASKS_DIR"


def tasks_dir(override: str | Path | None = None) -> Path:
    """--tasks-dir, else $HARNESS_TASKS_DIR, else ./tasks."""
    return Path(override or os.environ.get(ENV_VAR) or "tasks").resolve()


def task_path(name: str, root: Path) -> Path:
    # A name is a folder name, never a path: no separators, no `..`, nothing that escapes the tasks dir.
    if not is_task_name(name):
        raise HarnessError(f"invalid task name {name!r}: use {TASK_NAME_RULE}, with no path separators or '..'")
    path = (root / name).resolve()
    if path.parent != root:
        raise HarnessError(f"invalid task name {name!r}: it resolves outside {root}")
    return path


def available(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "task.yaml").is_file())


def find_task(name: str, root: Path) -> Task:
    path = task_path(name, root)
    if not path.is_dir():
        known = ", ".join(available(root)) or "none"
        raise HarnessError(f"unknown task {name!r} in {root} (available: {known}); "
                           "`harness new-task NAME` creates one, --tasks-dir points elsewhere")
    return load_task(path)
