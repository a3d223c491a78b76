"""The report's account of training pairs generated from the documents: how many candidates each filter kept,
which pairs each trained arm learnt from, and the pairs themselves (pairs.generated.jsonl in the run folder)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from harness.names import SHIPPED_SIZES

PAIRS_FILE = "pairs.generated.jsonl"
SHOWN_IN_MARKDOWN = 10


def read_pairs(run_dir: Path) -> list[dict]:
    """The generated pairs a run kept ([] for a run that trained on hand-written pairs only)."""
    path = Path(run_dir) / PAIRS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def pairs_used(cost: dict) -> str:
    """'307 written', '120 generated' or '307 written + 120 generated'; '' for arms trained on no pairs."""
    counts = cost.get("training_pairs") or {}
    return " + ".join(f"{n} {origin}" for origin, n in sorted(counts.items(), key=lambda kv: kv[0] != "written"))


def filter_table(generation: dict) -> pd.DataFrame:
    """Per part (original documents, update): candidates, then how many remained after each filter."""
    rows = []
    for part, p in (generation.get("parts") or {}).items():
        row = {"documents": part, "chunks": p["counts"].get("chunks"), "candidates": p["counts"].get("candidates")}
        row.update({f"after {k}" if k != "written" else "questions written": v for k, v in p["left_after"].items()})
        row.update({"kept share": p["kept"] / max(1, p["counts"].get("candidates") or 0),
                    "seconds": p["seconds"], "cached": p["cached"]})
        rows.append(row)
    return pd.DataFrame(rows)


def trust_note(generation: dict | None) -> list[str]:
    size = SHIPPED_SIZES.get((generation or {}).get("generator", ""))
    if not size:
        return []
    return [f"Training pairs were written from the documents by the {size}-parameter generator: on coffee only 8 of "
            "30 kept pairs read by hand were correct and answerable from their passage, even after the filters "
            "(bench/README.md), so arms trained on them learn mostly from wrong pairs and their scores say little "
            "about fine-tuning done with good pairs. `--generator` with a larger model writes better ones."]


def section(generation: dict | None, pairs: list[dict], seed: int) -> dict | None:
    """What report.md shows of the generated pairs (templates/_pairs.md.j2): the filter counts and ten of the
    kept pairs, drawn with the run's seed (all of them are in report.html); None when the run generated none."""
    if not generation or "parts" not in generation:
        return None
    shown = random.Random(seed).sample(pairs, min(SHOWN_IN_MARKDOWN, len(pairs)))
    return {"training_pairs": generation.get("training_pairs"), "generator": generation.get("generator"),
            "candidates": generation.get("candidates"),
            "demonstrations": len(generation.get("demonstrations") or []),
            "demonstrations_from": "the task's own training pairs" if generation.get("demonstrations_from") == "task"
            else "built-in generic examples",
            "filters": filter_table(generation), "kept": len(pairs), "file": PAIRS_FILE,
            "sample": pd.DataFrame([{"question": p["question"], "answer": p["answer"], "doc": p["doc"],
                                     "covers test": ", ".join(map(str, p.get("covers_test") or [])) or "–"}
                                    for p in shown])}
