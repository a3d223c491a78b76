"""The run folder's one owner: starts it, saves what a run measured into it, finishes it.

A run works in a hidden `RESULTS/TASK/.STAMP.partial/` folder and is renamed into place only when every arm is
done, so only complete runs show. Its data files (run.json, costs.json, predictions.jsonl) are written here and
nowhere else; harness/run/files.py reads them back, checked, and harness/report renders the tables and
reports from what it reads. `resume_key` holds the key of the run's inputs: --resume matches on it, and a
finished folder keeps it so the next forecast can tell a re-run of the same inputs."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError

log = logging.getLogger(__name__)
KEY = "resume_key"
SUFFIX = ".partial"


def unfinished_keys(results_dir: Path, task_name: str) -> list[str]:
    """The input keys of this task's unfinished runs, oldest first."""
    parent = results_dir / task_name
    return [(p / KEY).read_text() for p in sorted(parent.glob(f".*{SUFFIX}")) if (p / KEY).is_file()]


def start(results_dir: Path, task_name: str, resume_key: str, resume: bool, must_resume: bool = True) -> Path:
    """The hidden folder a run works in. With `resume`, the newest unfinished one with the same inputs
    (in a sweep, points that never started just start: `must_resume` False)."""
    parent = results_dir / task_name
    if resume:
        for tmp in sorted(parent.glob(f".*{SUFFIX}"), reverse=True):
            if (tmp / KEY).is_file() and (tmp / KEY).read_text() == resume_key:
                log.info("resuming %s", tmp)
                return tmp
    if resume and must_resume:
        raise HarnessError(f"nothing to resume: no unfinished run in {parent} with the same task data, config, "
                           "models and pipelines (drop --resume to start a new run)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = parent / f".{stamp}{SUFFIX}"
    n = 1
    while tmp.exists() or (parent / final_name(tmp)).exists():
        n += 1
        tmp = parent / f".{stamp}-{n}{SUFFIX}"
    tmp.mkdir(parents=True)
    (tmp / KEY).write_text(resume_key)
    return tmp


def final_name(tmp: Path) -> str:
    """`.20260101-120000.partial` -> `20260101-120000`."""
    return tmp.name[1:-len(SUFFIX)]


def save(tmp: Path, results: Sequence, info: dict) -> None:
    """What the arms measured so far: their answers, costs and timings, and the run's record."""
    with open(tmp / "predictions.jsonl", "w") as f:
        for r in results:
            for p in r.predictions:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    (tmp / "costs.json").write_text(json.dumps({"costs": {r.name: r.cost for r in results},
                                                "timings": {r.name: r.timings for r in results}}, indent=1))
    (tmp / "run.json").write_text(json.dumps(info, indent=1))


def save_partial(tmp: Path, results: Sequence, info: dict, planned: list[str]) -> None:
    """The arms done so far, in run order, marked partial: readable minutes into a run (and after a kill, where
    `--resume` goes on from the same folder)."""
    order = [n for n in planned if n in {r.name for r in results}]
    save(tmp, sorted(results, key=lambda r: order.index(r.name)),
         {**info, "pipelines": order, "partial": {"done": order, "pending": [n for n in planned if n not in order]}})


def save_finished(tmp: Path, results: Sequence, info: dict) -> None:
    save(tmp, results, {**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})


def finish(tmp: Path) -> Path:
    """Renames the hidden folder into place: from now on it is a finished run."""
    # resume_key stays: the next run's forecast uses it to tell a re-run of the same inputs (finished_with).
    (tmp / "answers.log.jsonl").unlink(missing_ok=True)
    final = tmp.with_name(final_name(tmp))
    tmp.rename(final)
    return final


def finished_with(results_dir: Path, task_name: str, resume_key: str) -> Path | None:
    """The newest finished run of these same inputs, if any."""
    done = [d for d in (results_dir / task_name).glob("[!.]*") if (d / KEY).is_file()
            and (d / KEY).read_text() == resume_key]
    return max(done, key=lambda d: d.name) if done else None
