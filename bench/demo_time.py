"""Where a run's minutes went, and how two runs of a task differ: builds, the update's continuations, and the rest
(answering every phase, loading, reports). Made to check a goal such as "the demo grows by at most 15%, the
update's continuations growing with the update": the builds and the rest should not grow, the continuations should
grow no faster than their examples.

    python bench/demo_time.py OLD_RUN_FOLDER NEW_RUN_FOLDER

Each folder is a run folder (run.json, costs.json, freshness.csv, predictions.jsonl), such as
results/examples/coffee at two commits (`git show <commit>:results/examples/coffee/costs.json` and the rest into a
temporary folder). Reads only; the
wall time is run.json's finished - started.
"""
from __future__ import annotations

import csv
import json
import re
import sys
from datetime import datetime
from pathlib import Path


def phases(folder: Path) -> dict:
    """Seconds of the run's builds, its continuations (per arm, with their examples) and everything else."""
    run = json.loads((folder / "run.json").read_text())
    wall = (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()
    timings = json.loads((folder / "costs.json").read_text())["timings"]
    builds = sum(t["build_s"] for t in timings.values())
    with open(folder / "freshness.csv", newline="") as f:
        fresh = {r["pipeline"]: r for r in csv.DictReader(f)}
    continued = {}
    for arm, t in timings.items():
        note = fresh.get(arm, {}).get("rebuild", "")
        if note.startswith("continued") or note.startswith("retrained"):
            examples = sum(int(n) for n in re.findall(r"(\d+) (?:new|replayed)", note))
            continued[arm] = (t["rebuild_s"], examples, (t.get("rebuild_cost") or {}).get("train_tokens") or 0)
    rebuilds = sum(t.get("rebuild_s") or 0.0 for t in timings.values())
    return {"commit": run.get("git_commit", "?")[:7], "wall": wall, "builds": builds,
            "continuations": continued, "rebuilds": rebuilds, "rest": wall - builds - rebuilds,
            "questions": run["sizes"]["test"], "fresh": run["sizes"]["fresh"],
            "answers": len((folder / "predictions.jsonl").read_text().splitlines())}


def table(old: dict, new: dict) -> str:
    def row(name: str, a: float, b: float) -> str:
        return f"| {name} | {a:,.0f} s | {b:,.0f} s | {b / a:.2f}x |" if a else f"| {name} | - | {b:,.0f} s | - |"

    lines = [f"| | {old['commit']} ({old['questions']} questions, {old['fresh']} fresh) | "
             f"{new['commit']} ({new['questions']} questions, {new['fresh']} fresh) | ratio |", "|---|---:|---:|---:|",
             row("whole run", old["wall"], new["wall"]),
             row("builds (index, demonstrations, training)", old["builds"], new["builds"])]
    for arm in sorted(set(old["continuations"]) | set(new["continuations"])):
        (a, na, ta), (b, nb, tb) = (old["continuations"].get(arm, (0.0, 0, 0)),
                                    new["continuations"].get(arm, (0.0, 0, 0)))
        lines.append(row(f"{arm}'s continuation ({na} -> {nb} examples, {ta:,} -> {tb:,} training tokens"
                         + (f": {tb / ta:.2f}x" if ta else "") + ")", a, b))
    lines.append(row(f"rest: answering every phase ({old['answers']:,} -> {new['answers']:,} answers: "
                     f"{new['answers'] / old['answers']:.2f}x), loading, reports", old["rest"], new["rest"]))
    lines.append(row("whole run less the continuations", old["wall"] - old["rebuilds"],
                     new["wall"] - new["rebuilds"]))
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(table(phases(Path(sys.argv[1])), phases(Path(sys.argv[2]))))
