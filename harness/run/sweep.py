"""`--sweep section.key=v1,v2,...`: a grid of config overrides, run point by point, summarised in one table."""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.markdown import markdown_table


def _parse(spec: str) -> tuple[str, list[str]]:
    key, sep, values = spec.partition("=")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not vals:
        raise HarnessError(f"--sweep {spec!r}: expected SECTION.KEY=V1,V2,... "
                           "e.g. finetune.learning_rate=1e-4,3e-4,1e-3")
    return key.strip(), vals


def _set(tree: dict, key: str, raw: str) -> None:
    *path, leaf = key.split(".")
    node = tree
    for part in path:
        if not isinstance(node.get(part), dict):
            raise HarnessError(f"--sweep {key}: task.yaml has no section {part!r} "
                               f"(sections: {', '.join(k for k, v in tree.items() if isinstance(v, dict))})")
        node = node[part]
    if leaf not in node:
        raise HarnessError(f"--sweep {key}: no key {leaf!r} there (keys: {', '.join(node)})")
    node[leaf] = raw  # a string: pydantic turns "3e-4" into the float, "5" into the int, and rejects "abc"


def sweep_points(config: TaskConfig, specs: list[str]) -> list[tuple[dict[str, str], TaskConfig]]:
    """Every combination of the given values, each checked against the task schema before anything runs."""
    axes = [_parse(s) for s in specs]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise HarnessError(f"--sweep names a key twice: {keys}")
    points = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        tree = config.model_dump()
        for key, raw in zip(keys, combo):
            _set(tree, key, raw)
        try:
            points.append((dict(zip(keys, combo)), TaskConfig.model_validate(tree)))
        except ValidationError as e:
            err = e.errors()[0]
            raise HarnessError(f"--sweep {'.'.join(map(str, err['loc']))}={combo}: {err['msg']}") from None
    return points


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """sweep.md's cells, as strings: every float to three decimals, whatever its size, and the run as a link to
    its folder."""
    def one(k: str, v: object) -> str:
        if k == "run":
            return f"[{v}](../{v})"
        return "–" if pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else str(v)
    return pd.DataFrame([{k: one(k, r[k]) for k in df.columns} for _, r in df.iterrows()], columns=df.columns)


def sweep_dir(results_dir: Path, task: str) -> Path:
    return results_dir / task / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"


def write_sweep(out: Path, points: list[tuple[dict[str, str], Path]], metric: str) -> pd.DataFrame:
    """One row per (point, pipeline), read back from each point's own report files."""
    rows = []
    for overrides, run_dir in points:
        acc = pd.read_csv(run_dir / "accuracy.csv")
        cost = pd.read_csv(run_dir / "cost.csv").set_index("pipeline")
        if "knowledge" in acc:
            acc = acc[acc.knowledge == acc.knowledge.iloc[0]]  # all stable questions
        for _, a in acc.iterrows():
            c = cost.loc[a.pipeline]
            rows.append({**overrides, "pipeline": a.pipeline, metric: a[metric],
                         f"{metric}_ci95": f"[{a[f'{metric}_ci95_low']:.2f}, {a[f'{metric}_ci95_high']:.2f}]",
                         "f1": a.f1,
                         **{k: c.get(k) for k in ("best_eval_loss", "epochs_run", "train_seconds", "latency_mean_s")
                            if k in c},
                         "run": str(run_dir.relative_to(out.parent) if run_dir.is_relative_to(out.parent)
                                    else run_dir)})
    df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sweep.csv", index=False)
    # The best point is chosen on the eval split (held-out training pairs), never on the test questions: picking
    # on test would report the luckiest point's test score as if it were a fair estimate.
    ranked = df.dropna(subset=["best_eval_loss"]) if "best_eval_loss" in df else df.iloc[0:0]
    best = ranked.loc[ranked.best_eval_loss.idxmin()] if len(ranked) else None
    keys = list(points[0][0])
    md = [f"# Sweep over {', '.join(f'`{k}`' for k in keys)}", "",
          f"Primary metric **{metric}** on the stable held-out questions; each row links to its full run.", "",
          markdown_table(_cells(df))]
    if best is None:
        md += ["", "No point has an eval-split figure (only trained arms have one), so none is called best: the test "
               "scores above are for information, and choosing on them would overstate the winner.", ""]
    else:
        md += ["", f"Best on the eval split (lowest eval loss, held-out training pairs): **{best.pipeline}** with "
                   f"{', '.join(f'{k}={best[k]}' for k in keys)}: eval loss {best.best_eval_loss:.3f}; its test "
                   f"{metric} {best[metric]:.3f} {best[f'{metric}_ci95']}. Points are never ranked on test.", ""]
    (out / "sweep.md").write_text("\n".join(md))
    (out / "sweep.json").write_text(json.dumps({"metric": metric, "points": [
        {"overrides": o, "run": str(d)} for o, d in points]}, indent=1))
    return df
