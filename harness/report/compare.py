"""`harness compare RUN_A RUN_B`: what changed between two runs: inputs, accuracy, freshness, cost, answers."""
from __future__ import annotations

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


def compare(run_a: Path, run_b: Path) -> str:
    info_a, acc_a, fresh_a, cost_a, pred_a = _load(run_a)
    metric = info_a["config"]["metric"]
    info_b, acc_b, fresh_b, cost_b, pred_b = _load(run_b, metric)
    ignore = ("started", "finished", "argv")
    fa, fb = _flat({k: v for k, v in info_a.items() if k not in ignore}), _flat(
        {k: v for k, v in info_b.items() if k not in ignore})
    changed = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
    key = ["phase", "pipeline", "id"]
    joined = pred_a[key + ["answer"]].merge(pred_b[key + ["answer"]], on=key, how="inner", suffixes=("_a", "_b"))
    differ = joined[joined.answer_a != joined.answer_b]
    lines = [f"# {run_a.name} → {run_b.name}", "", "## Inputs that differ", ""]
    lines += [f"- `{k}`: {fa.get(k)!r} → {fb.get(k)!r}" for k in changed] or ["- none"]
    lines += ["", f"## Accuracy ({metric}, stable questions)", "",
              markdown_table(_side_by_side(acc_a, acc_b, [metric])), "",
              "## Freshness", "", markdown_table(_side_by_side(fresh_a, fresh_b, ["fresh_after_update_no_rebuild",
                                                                                  "fresh_after_rebuild"])), "",
              "## Cost", "", markdown_table(_side_by_side(cost_a, cost_b, ["latency_mean_s", "build_s"])), "",
              f"## Answers: {len(differ)} of {len(joined)} differ", ""]
    lines += [f"- {r.pipeline} {r.phase} {r.id}: {r.answer_a!r} → {r.answer_b!r}" for r in differ.head(20).itertuples()]
    return "\n".join(lines) + "\n"
