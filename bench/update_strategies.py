"""Taking in an update: continue the existing adapter (update + replay of old examples) or retrain from scratch.

Runs `harness run` twice on a copy of the task, once per `update.strategy`, with the same adapter cache (so the
first build is trained once and shared), and prints per trained arm what each rebuild cost, what it learnt
(fresh questions after the rebuild) and what it forgot (stable questions before vs after the rebuild).

    .venv/bin/python bench/update_strategies.py --task coffee --pipelines finetune,cpt
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(task: str, strategy: str, pipelines: str, work: Path, cache: Path) -> pd.DataFrame:
    tasks = work / strategy / "tasks"
    shutil.copytree(ROOT / "tasks" / task, tasks / task)
    cfg_path = tasks / task / "task.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["update"] = {**cfg.get("update", {}), "strategy": strategy}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    results = work / strategy / "results"
    subprocess.run([sys.executable, "-m", "harness", "run", "--task", task, "--tasks-dir", str(tasks),
                    "--results-dir", str(results), "--cache-dir", str(cache), "--pipelines", pipelines],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    (run_dir,) = (results / task).iterdir()
    fresh = pd.read_csv(run_dir / "freshness.csv")
    fresh["strategy"] = strategy
    fresh["run"] = str(run_dir)
    return fresh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--pipelines", default="finetune,cpt", help="trained arms to compare (comma-separated)")
    ap.add_argument("--cache-dir", default=str(ROOT / ".harness-cache"),
                    help="adapter cache shared by both runs (default: the project's, so earlier trainings count)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = pd.concat([run(args.task, s, args.pipelines, Path(tmp), Path(args.cache_dir))
                          for s in ("continue", "retrain")])
    rows["forgetting"] = rows.stable_before - rows.stable_after_rebuild
    print(f"\n{args.task}: {int(rows.fresh_questions.iloc[0])} fresh questions, metric from the task; "
          "retrain_s is the training the rebuild needed, as measured when that adapter was trained\n")
    print("| arm | strategy | rebuild | retrain_s | fresh before | fresh after rebuild | stable before | "
          "stable after rebuild | forgetting |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for _, r in rows.sort_values(["pipeline", "strategy"]).iterrows():
        print(f"| {r.pipeline} | {r.strategy} | {r.rebuild} | {r.retrain_s:.0f} | {r.fresh_before:.3f} | "
              f"{r.fresh_after_rebuild:.3f} | {r.stable_before:.3f} | {r.stable_after_rebuild:.3f} | "
              f"{r.forgetting:+.3f} |")


if __name__ == "__main__":
    main()
