"""Writes a run folder (CSV, Markdown, predictions, run.json) atomically, and re-renders one from its files."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.report import document
from harness.report.html import write_report_html
from harness.report.loaded import LoadedRun, load
from harness.report.opinion import arm_costs
from harness.report.plots import draw_all
from harness.report.projection import projection_table
from harness.report.roles import control
from harness.report.standing import Standings, judge_run
from harness.report.verdict import coverage, verdict
from harness.report.tables import (accuracy_table, cost_table, freshness_table, fresh_significance_table, prices,
                                   retrieval_table, significance_table, slice_table)
from harness.task.deployment import Profile, from_record


def _loss_histories(saved: dict) -> dict[str, list[dict]]:
    """Training logs of each distinct adapter in the run (a shared adapter appears once)."""
    out, seen = {}, set()
    for name, c in saved["costs"].items():
        for label, cost in ((name, c), (f"{name}, rebuilt", saved["timings"].get(name, {}).get("rebuild_cost"))):
            if cost and cost.get("log_history") and cost.get("adapter") not in seen:
                seen.add(cost["adapter"])
                out[label] = cost["log_history"]
    return out


def _projection(run_dir: Path, info: dict, saved: dict, cost: pd.DataFrame,
                deployment: Profile | None) -> tuple[Profile | None, pd.DataFrame | None]:
    """The profile (`--deployment`, else the one run.json recorded) and cost_projection.csv, written here; a
    run with none loses a stale projection rather than keep one report.md no longer shows."""
    profile = deployment or (from_record(info["deployment"], run_dir / "run.json") if info.get("deployment")
                             else None)
    if profile is None:
        (run_dir / "cost_projection.csv").unlink(missing_ok=True)
        return None, None
    proj = projection_table(saved, info["pipelines"], profile, cost, info.get("pair_generation"))
    proj.to_csv(run_dir / "cost_projection.csv", index=False)
    return profile, proj


def _tables(run: LoadedRun, run_dir: Path) -> dict[str, pd.DataFrame]:
    """The run's tables, each also written as NAME.csv."""
    info, preds = run.info, run.preds
    order, metric, seed = info["pipelines"], info["config"]["metric"], info["seed"]
    tables = {"accuracy": accuracy_table(preds, order, metric, seed),
              "significance": significance_table(preds, order, metric, seed),
              "slices": slice_table(preds, order, metric), "retrieval": retrieval_table(preds, order, metric),
              "cost": cost_table(run.saved["costs"], order, prices(info), run.saved["timings"]),
              "freshness": freshness_table(preds, run.saved["timings"], order, metric)}
    for name, df in tables.items():
        df.to_csv(run_dir / f"{name}.csv", index=False)
    return tables


def _judged(run: LoadedRun, t: dict[str, pd.DataFrame], profile: Profile | None,
            proj: pd.DataFrame | None) -> Standings:
    """Where the arms stand on each group of stable questions and each phase of the update: judged once, for
    every sentence and cell that names a leader, a tie or an arm to act on."""
    info, metric, cost = run.info, run.info["config"]["metric"], t["cost"]
    fresh_pairs = fresh_significance_table(run.preds, info["pipelines"], metric, info["seed"])
    costs = arm_costs(cost, (profile.name, proj) if profile is not None and proj is not None else None)
    return judge_run(t["accuracy"], t["significance"], t["freshness"], fresh_pairs, control(cost), metric, costs)


def render(run_dir: Path, deployment: Profile | None = None) -> list[str]:
    """(Re)writes the CSV tables, figures (a finished run's), report.md and report.html from the run's saved files; with
    `deployment` (else the profile run.json recorded), cost_projection.csv and Cost at your scale too.

    Returns the verdict sentences, for the one-screen summary."""
    run = load(run_dir)
    info, metric = run.info, run.info["config"]["metric"]
    t = _tables(run, run_dir)
    acc, cost, fresh = t["accuracy"], t["cost"], t["freshness"]
    profile, proj = _projection(run_dir, info, run.saved, cost, deployment)
    judged = _judged(run, t, profile, proj)
    said = verdict(acc, judged, fresh, cost, metric) + coverage(info, run.preds)
    # A partial report is rewritten after every arm, and its readers want the tables; drawing the figures each
    # time was a tenth of a small run's time. They are drawn once, when every arm is done.
    figures = [] if info.get("partial") else draw_all(run_dir, acc, cost, fresh, metric, _loss_histories(run.saved))
    text = document.markdown(document.context(run, t, said, figures, profile, proj, judged))
    (run_dir / "report.md").write_text(text)
    write_report_html(run_dir, run, text)
    return said


def start_run(results_dir: Path, task_name: str, resume_key: str, resume: bool, must_resume: bool = True) -> Path:
    """The hidden folder a run works in. With `resume`, the newest unfinished one with the same inputs
    (in a sweep, points that never started just start: `must_resume` False)."""
    parent = results_dir / task_name
    if resume:
        for tmp in sorted(parent.glob(".*.partial"), reverse=True):
            if (tmp / "resume_key").is_file() and (tmp / "resume_key").read_text() == resume_key:
                print(f"resuming {tmp}", flush=True)
                return tmp
    if resume and must_resume:
        raise HarnessError(f"nothing to resume: no unfinished run in {parent} with the same task data, config, "
                           "models and pipelines (drop --resume to start a new run)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = parent / f".{stamp}.partial"
    n = 1
    while tmp.exists() or (parent / tmp.name[1:-len(".partial")]).exists():
        n += 1
        tmp = parent / f".{stamp}-{n}.partial"
    tmp.mkdir(parents=True)
    (tmp / "resume_key").write_text(resume_key)
    return tmp


def _write_files(tmp: Path, results: list, info: dict) -> list[str]:
    with open(tmp / "predictions.jsonl", "w") as f:
        for r in results:
            for p in r.predictions:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    (tmp / "costs.json").write_text(json.dumps({"costs": {r.name: r.cost for r in results},
                                                "timings": {r.name: r.timings for r in results}}, indent=1))
    (tmp / "run.json").write_text(json.dumps(info, indent=1))
    return render(tmp)


def write_partial(tmp: Path, results: list, info: dict, planned: list[str]) -> None:
    """The report of the arms done so far, in the run's hidden folder, marked partial: readable minutes into a
    run (and after a kill, where `--resume` goes on from the same folder)."""
    done = [r.name for r in results]
    order = [n for n in planned if n in done]
    _write_files(tmp, sorted(results, key=lambda r: order.index(r.name)),
                 {**info, "pipelines": order, "partial": {"done": order,
                                                          "pending": [n for n in planned if n not in done]}})


def finished_with(results_dir: Path, task_name: str, resume_key: str) -> Path | None:
    """The newest finished run of these same inputs, if any."""
    done = [d for d in (results_dir / task_name).glob("[!.]*") if (d / "resume_key").is_file()
            and (d / "resume_key").read_text() == resume_key]
    return max(done, key=lambda d: d.name) if done else None


def finish_run(tmp: Path, results: list, info: dict) -> tuple[Path, list[str]]:
    """Writes the run's files into its hidden folder, then renames it into place: only complete runs show."""
    said = _write_files(tmp, results, {**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    # resume_key stays: the next run's forecast uses it to tell a re-run of the same inputs (finished_with).
    (tmp / "answers.log.jsonl").unlink(missing_ok=True)
    final = tmp.with_name(tmp.name[1:-len(".partial")])
    tmp.rename(final)
    return final, said
