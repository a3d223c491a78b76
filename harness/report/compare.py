"""`harness compare RUN_A RUN_B`: what changed between two runs: inputs, accuracy, freshness, cost, answers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.markdown import markdown_table
from harness.run.files import load_run, read_table
from harness.report.tables import ALL


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def _load(run: Path, metric: str | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                        pd.DataFrame]:
    """A finished run's info, its three tables and its predictions, each checked (runfiles). `metric`:
    the accuracy column needed (the run's own headline metric by default)."""
    info, _, preds = load_run(run)
    metric = metric or info["config"]["metric"]
    return (info, _overall(read_table(run, "accuracy.csv", ["pipeline", metric])),
            read_table(run, "freshness.csv", ["pipeline", "fresh_after_update_no_rebuild", "fresh_after_rebuild"]),
            read_table(run, "cost.csv", ["pipeline", "latency_mean_s", "build_s"]), preds)


def _overall(acc: pd.DataFrame) -> pd.DataFrame:
    """One accuracy row per arm: the "all stable" group where the table splits questions by knowledge
    (older runs have one row per arm already)."""
    return acc[acc.knowledge == ALL] if "knowledge" in acc.columns else acc


def _side_by_side(a: pd.DataFrame, b: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    m = a[["pipeline"] + cols].merge(b[["pipeline"] + cols], on="pipeline", how="outer", sort=False,
                                                suffixes=("_a", "_b"))
    order = list(a.pipeline) + [p for p in b.pipeline if p not in set(a.pipeline)]
    m = m.set_index("pipeline").reindex(order).reset_index()
    for c in cols:
        m[f"{c}_change"] = m[f"{c}_b"] - m[f"{c}_a"]
    return m[["pipeline"] + [f"{c}_{s}" for c in cols for s in ("a", "b", "change")]]


IGNORED_INPUTS = ("started", "finished", "argv")  # differ between any two runs, so they say nothing


@dataclass(frozen=True)
class Comparison:
    """Two runs side by side, as both outputs of `harness compare` (Markdown and compare.html) show them."""

    name_a: str
    name_b: str
    info_b: dict
    metric: str  # run A's headline metric, compared in both runs
    inputs: list[tuple[str, object, object]]  # (run.json key, value in A, value in B) where they differ
    tables: list[tuple[str, pd.DataFrame]]  # (title, side-by-side table)
    pred_a: pd.DataFrame
    pred_b: pd.DataFrame


def load_comparison(run_a: Path, run_b: Path) -> Comparison:
    """Both runs read through their checked readers, the inputs that differ, and the side-by-side tables."""
    info_a, acc_a, fresh_a, cost_a, pred_a = _load(run_a)
    metric = info_a["config"]["metric"]
    info_b, acc_b, fresh_b, cost_b, pred_b = _load(run_b, metric)
    fa = _flat({k: v for k, v in info_a.items() if k not in IGNORED_INPUTS})
    fb = _flat({k: v for k, v in info_b.items() if k not in IGNORED_INPUTS})
    inputs = [(k, fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)]
    tables = [(f"Accuracy ({metric}, stable questions)", _side_by_side(acc_a, acc_b, [metric])),
              ("Freshness", _side_by_side(fresh_a, fresh_b, ["fresh_after_update_no_rebuild", "fresh_after_rebuild"])),
              ("Cost", _side_by_side(cost_a, cost_b, ["latency_mean_s", "build_s"]))]
    return Comparison(Path(run_a).name, Path(run_b).name, info_b, metric, inputs, tables, pred_a, pred_b)


def compare(run_a: Path, run_b: Path) -> str:
    c = load_comparison(run_a, run_b)
    key = ["phase", "pipeline", "id"]
    joined = c.pred_a[key + ["answer"]].merge(c.pred_b[key + ["answer"]], on=key, how="inner", suffixes=("_a", "_b"))
    differ = joined[joined.answer_a != joined.answer_b]
    lines = [f"# {c.name_a} → {c.name_b}", "", "## Inputs that differ", ""]
    lines += [f"- `{k}`: {a!r} → {b!r}" for k, a, b in c.inputs] or ["- none"]
    for title, table in c.tables:
        lines += ["", f"## {title}", "", markdown_table(table)]
    lines += ["", f"## Answers: {len(differ)} of {len(joined)} differ", ""]
    lines += [f"- {r.pipeline} {r.phase} {r.id}: {r.answer_a!r} → {r.answer_b!r}" for r in differ.head(20).itertuples()]
    return "\n".join(lines) + "\n"
