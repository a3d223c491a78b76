"""Renders a run folder's tables (CSV), figures, report.md and report.html from the files the run saved
(harness/run/folder.py writes them, harness/run/files.py reads them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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
from harness.run.files import RUN_INFO
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
    """The profile (`--deployment`, else the one run.json recorded) and its cost projection, if any."""
    profile = deployment or (from_record(info["deployment"], run_dir / RUN_INFO) if info.get("deployment")
                             else None)
    if profile is None:
        return None, None
    return profile, projection_table(saved, info["pipelines"], profile, cost, info.get("pair_generation"))


def _tables(run: LoadedRun) -> dict[str, pd.DataFrame]:
    info, preds = run.info, run.preds
    order, metric, seed = info["pipelines"], info["config"]["metric"], info["seed"]
    return {"accuracy": accuracy_table(preds, order, metric, seed),
            "significance": significance_table(preds, order, metric, seed),
            "slices": slice_table(preds, order, metric), "retrieval": retrieval_table(preds, order, metric),
            "cost": cost_table(run.saved["costs"], order, prices(info), run.saved["timings"]),
            "freshness": freshness_table(preds, run.saved["timings"], order, metric)}


def _judged(run: LoadedRun, t: dict[str, pd.DataFrame], profile: Profile | None,
            proj: pd.DataFrame | None) -> Standings:
    """Where the arms stand on each group of stable questions and each phase of the update: judged once, for
    every sentence and cell that names a leader, a tie or an arm to act on."""
    info, metric, cost = run.info, run.info["config"]["metric"], t["cost"]
    fresh_pairs = fresh_significance_table(run.preds, info["pipelines"], metric, info["seed"])
    costs = arm_costs(cost, (profile.name, proj) if profile is not None and proj is not None else None)
    return judge_run(t["accuracy"], t["significance"], t["freshness"], fresh_pairs, control(cost), metric, costs)


@dataclass(frozen=True)
class Assessment:
    """A run's tables and what the report says of them, computed from its saved files without writing any."""
    run: LoadedRun
    tables: dict[str, pd.DataFrame]
    profile: Profile | None
    projection: pd.DataFrame | None
    judged: Standings
    verdict: list[str]

    @property
    def recommendation(self) -> str | None:
        """The opinion table's recommendation; None where no opinion table can be drawn (no arm finished)."""
        t, metric = self.tables, self.run.info["config"]["metric"]
        on = (self.profile.name, self.projection) if self.profile is not None and self.projection is not None else None
        made = document.opinion(t["accuracy"], self.judged, t["cost"], t["freshness"], metric, on)
        return made["recommendation"] if made else None


def assess(run_dir: Path, deployment: Profile | None = None) -> Assessment:
    """Every table and sentence of a run's report, read from its files (each checked) and nothing written."""
    run = load(run_dir)
    t = _tables(run)
    profile, proj = _projection(run_dir, run.info, run.saved, t["cost"], deployment)
    judged = _judged(run, t, profile, proj)
    said = verdict(t["accuracy"], judged, t["freshness"], t["cost"], run.info["config"]["metric"])
    return Assessment(run, t, profile, proj, judged, said + coverage(run.info, run.preds))


def render(run_dir: Path, deployment: Profile | None = None) -> list[str]:
    """(Re)writes the CSV tables, figures (a finished run's), report.md and report.html from the run's saved files; with
    `deployment` (else the profile run.json recorded), cost_projection.csv and Cost at your scale too; a run with
    none loses a stale projection rather than keep one report.md no longer shows.

    Returns the verdict sentences, for the one-screen summary."""
    a = assess(run_dir, deployment)
    run, t, info = a.run, a.tables, a.run.info
    for name, df in t.items():
        df.to_csv(run_dir / f"{name}.csv", index=False)
    if a.projection is None:
        (run_dir / "cost_projection.csv").unlink(missing_ok=True)
    else:
        a.projection.to_csv(run_dir / "cost_projection.csv", index=False)
    # A partial report is rewritten after every arm, and its readers want the tables; drawing the figures each
    # time was a tenth of a small run's time. They are drawn once, when every arm is done.
    figures = [] if info.get("partial") else draw_all(run_dir, t["accuracy"], t["cost"], t["freshness"],
                                                      info["config"]["metric"], _loss_histories(run.saved))
    text = document.markdown(document.context(run, t, a.verdict, figures, a.profile, a.projection, a.judged))
    (run_dir / "report.md").write_text(text)
    write_report_html(run_dir, run, text)
    return a.verdict
