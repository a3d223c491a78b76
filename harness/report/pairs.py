"""The report's account of training pairs generated from the documents: how many candidates each filter kept,
which pairs each trained arm learnt from, and the pairs themselves (pairs.generated.jsonl in the run folder)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from harness.names import DEFAULT_MODEL, GEMMA_MODEL

PAIRS_FILE = "pairs.generated.jsonl"
SHOWN_IN_MARKDOWN = 10
SMALL_GENERATORS = {DEFAULT_MODEL: "135M", GEMMA_MODEL: "270M"}


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
    size = SMALL_GENERATORS.get((generation or {}).get("generator", ""))
    if not size:
        return []
    return [f"Training pairs were written from the documents by the {size}-parameter generator: on coffee only 8 of "
            "30 kept pairs read by hand were correct and answerable from their passage, even after the filters "
            "(bench/README.md), so arms trained on them learn mostly from wrong pairs and their scores say little "
            "about fine-tuning done with good pairs. `--generator` with a larger model writes better ones."]


def section(generation: dict | None, pairs: list[dict], seed: int, table) -> list[str]:
    """Markdown: the filter counts and ten of the kept pairs (all of them are in report.html)."""
    if not generation or "parts" not in generation:
        return []
    demos = "the task's own training pairs" if generation.get("demonstrations_from") == "task" else \
        "built-in generic examples"
    shown = random.Random(seed).sample(pairs, min(SHOWN_IN_MARKDOWN, len(pairs)))
    rows = [{"question": p["question"], "answer": p["answer"], "doc": p["doc"],
             "covers test": ", ".join(map(str, p.get("covers_test") or [])) or "–"} for p in shown]
    return ["## Training pairs written from the documents", "",
            f"`training_pairs: {generation.get('training_pairs')}`. `{generation.get('generator')}` wrote one "
            f"question for each candidate answer (rule `{generation.get('candidates')}`), shown "
            f"{len(generation.get('demonstrations') or [])} demonstrations from {demos}. A question is kept only "
            "if every filter passes it, in this order: the answer is a verbatim span of its chunk (`verbatim`); "
            "one well-formed question, no loops, not a demonstration's (`well_formed`); the answer is not in the "
            "question (`answer_hidden`); it asks for the kind of thing its answer is, a number or a name "
            "(`answer_type`); no duplicate (`unique`); not a near-duplicate of any test question "
            "(`not_test`); the question retrieves its own chunk in the top k (`round_trip`). `seconds`: writing "
            "the questions (as measured when first written, also when cached).", "",
            table(filter_table(generation)), "",
            f"{len(shown)} of the {len(pairs)} kept pairs (all of them, each with its source chunk, in report.html "
            f"and `{PAIRS_FILE}`; `covers test`: the test questions whose fact the pair teaches, by the rule of "
            "the knowledge labels):", "", table(pd.DataFrame(rows)) if rows else "(none kept)", ""]
