"""Reads a run folder's saved files for `report` and `compare`, refusing damaged ones with one line.

A run folder can be truncated (a killed copy), emptied, hand-edited or come from another version. Every
problem names the file (and line) and says what to do; nothing here averages around a missing value:
a predictions row without a score is an error, not a row quietly left out of a mean.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import METRICS
from harness.errors import HarnessError
from harness.names import PHASE_MAIN, PHASES

_RERUN = "re-run the task, or restore the file from a copy"


def _read(path: Path) -> str:
    if not path.is_file():
        raise HarnessError(f"missing {path.name}: not a complete run folder (written by `harness run`)", path.parent)
    try:
        return path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"cannot read it ({getattr(e, 'strerror', None) or e}); {_RERUN}", path) from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file (run.json, costs.json)."""
    text = _read(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno}); the file is damaged or cut short; "
                           f"{_RERUN}", path, e.lineno) from None
    except RecursionError:
        raise HarnessError(f"JSON nested too deep; {_RERUN}", path) from None
    if not isinstance(data, dict):
        raise HarnessError(f"must hold a JSON object {{...}}; {_RERUN}", path, 1)
    return data


def _need(data: dict, dotted: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value: Any = data
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise HarnessError(f'"{dotted}" is missing or not a {getattr(kind, "__name__", "value")}; {_RERUN}', path)
    return value


RUN_INFO = "run.json"  # the run's record: config, seed, versions, CPU, commit


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json, with the keys every reader relies on checked."""
    path = run_dir / RUN_INFO
    info = read_json(path)
    _need(info, "task", str, path)
    arms = _need(info, "pipelines", list, path)
    if not arms or not all(isinstance(a, str) for a in arms):
        raise HarnessError(f'"pipelines" must be a non-empty list of names; {_RERUN}', path)
    _need(info, "seed", int, path)
    metric = _need(info, "config.metric", str, path)
    if metric not in METRICS:
        raise HarnessError(f'"config.metric" {metric!r} is not one of {", ".join(METRICS)}; {_RERUN}', path)
    return info


def read_costs(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "costs.json"
    saved = read_json(path)
    _need(saved, "costs", dict, path)
    _need(saved, "timings", dict, path)
    return saved


def _score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, line in enumerate(_read(path).split("\n"), start=1):  # "\n" only, as task files
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno}); the file is damaged or cut short; "
                               f"{_RERUN}", path, n) from None
        except RecursionError:
            raise HarnessError(f"JSON nested too deep; {_RERUN}", path, n) from None
        if not isinstance(row, dict):
            raise HarnessError(f"each line must be a JSON object; {_RERUN}", path, n)
        rows.append((n, row))
    if not rows:
        raise HarnessError(f"no predictions in the file (empty); {_RERUN}", path)
    return rows


def read_predictions(run_dir: Path, info: dict[str, Any]) -> pd.DataFrame:
    """predictions.jsonl as a table. Every row needs its phase, arm, question id and a finite score for
    the run's headline metric and for every metric any other row has; every arm of run.json needs answers."""
    path = run_dir / "predictions.jsonl"
    rows = _rows(path)
    metrics = [m for m in METRICS if m == info["config"]["metric"] or any(m in r for _, r in rows)]
    for n, row in rows:
        if row.get("phase") not in PHASES:
            raise HarnessError(f'"phase" {row.get("phase")!r} is not one of {", ".join(PHASES)}; {_RERUN}', path, n)
        for key, kind in (("pipeline", str), ("id", (str, int)), ("answer", str)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise HarnessError(f'missing "{key}"; {_RERUN}', path, n)
        missing = [m for m in metrics if not _score(row.get(m))]
        if missing:
            raise HarnessError(f"no {', '.join(missing)} score in this row, so a mean would silently leave it out; "
                               f"{_RERUN}", path, n)
    answered = {r["pipeline"] for _, r in rows if r["phase"] == PHASE_MAIN}
    absent = [a for a in info["pipelines"] if a not in answered]
    if absent:
        raise HarnessError(f"run.json lists {', '.join(absent)} but this file has no answers of theirs; {_RERUN}",
                           path)
    return pd.DataFrame.from_records([r for _, r in rows])


def load_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """(run.json, costs.json, predictions) of a run folder, each checked."""
    if not run_dir.is_dir():
        raise HarnessError("not a run folder (give a folder written by `harness run`, e.g. results/TASK/STAMP)",
                           run_dir)
    info = read_run_info(run_dir)
    return info, read_costs(run_dir), read_predictions(run_dir, info)


def read_table(run_dir: Path, name: str, columns: list[str]) -> pd.DataFrame:
    """One of the run's CSV tables, with the columns a reader needs."""
    path = run_dir / name
    _read(path)  # missing or unreadable: one clear line
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise HarnessError(f"not a readable CSV table ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                           f"rewrite it with `harness report {run_dir}`", path) from None
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise HarnessError(f"no column {', '.join(lacking)}; rewrite it with `harness report {run_dir}`", path)
    return table


def unfinished_budget_plan(results_dir: Path, task_name: str, key: str) -> dict | None:
    """The budget plan recorded in the newest unfinished run of these inputs (the one `--resume` continues): {}
    for a run with no budget, None when there is none to read (no such run, or killed before its first arm)."""
    for tmp in sorted((results_dir / task_name).glob(".*.partial"), reverse=True):
        try:
            if (tmp / "resume_key").read_text() != key:
                continue
        except OSError:
            continue
        try:  # no run.json: killed before its first arm ended
            return (json.loads((tmp / RUN_INFO).read_text()).get("budget") or {}).get("plan") or {}
        except (OSError, ValueError, AttributeError):
            return None
    return None
