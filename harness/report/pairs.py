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
    """Per part (original documents, update): candidates, then how many remained after each filter; for pairs
    built from the parse, the sentences and facts they cover."""
    rows = []
    for part, p in (generation.get("parts") or {}).items():
        c = p["counts"]
        row = {"documents": part, "chunks": c.get("chunks")}
        if generation.get("writer") == "parse":
            row.update({"sentences": c.get("sentences"), "with facts": c.get("sentences_with_facts"),
                        "facts": c.get("facts")})
        else:
            row["candidates"] = c.get("candidates")
        row.update({f"after {k}" if k != "written" else "questions written": v for k, v in p["left_after"].items()
                    if k != "phrasings_per_fact"})
        if generation.get("writer") == "parse":
            row.update({"kept": p["kept"], "facts kept": c.get("facts_kept"),
                        "sentences covered": c.get("sentences_covered"),
                        "phrasings a fact": p["kept"] / max(1, c.get("facts_kept") or 0), "seconds": p["seconds"]})
        else:
            row.update({"kept share": p["kept"] / max(1, c.get("candidates") or 0),
                        "seconds": p["seconds"], "cached": p["cached"]})
            if p.get("reused") is not None:  # questions read back from an earlier run's writing
                row["reused"] = p["reused"]
        rows.append(row)
    return pd.DataFrame(rows)


def trust_note(generation: dict | None) -> list[str]:
    if (generation or {}).get("writer") == "parse":
        return ["Training pairs were built from the documents' own sentences (no hand-written pairs): every answer "
                "is a span of its sentence, so the pairs are true, but their questions keep the documents' wording, "
                "and a fine-tune learns a fact from them only as far as a real question resembles that wording. "
                "A test question counts as `taught (generated)` only when a kept pair has its answer and shares a "
                "content word with it (bench/README.md: how often built pairs were right, read by hand)."]
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
            "writer": generation.get("writer", "model"), "phrasings": generation.get("phrasings"),
            "candidates": generation.get("candidates"),
            "demonstrations": len(generation.get("demonstrations") or []),
            "demonstrations_from": "the task's own training pairs" if generation.get("demonstrations_from") == "task"
            else "built-in generic examples",
            "filters": filter_table(generation), "kept": len(pairs), "file": PAIRS_FILE,
            "pool": pool_note(generation),
            "sample": pd.DataFrame([{"question": p["question"], "answer": p["answer"], "doc": p["doc"],
                                     "covers test": ", ".join(map(str, p.get("covers_test") or [])) or "–"}
                                    for p in shown])}


def pool_note(generation: dict) -> str:
    """One sentence when only demonstrations read the pairs, so only a pool of them was made; '' otherwise."""
    pool = ((generation.get("parts") or {}).get("original") or {}).get("pool")
    if not pool:
        return ""
    if pool.get("too_few"):
        return (f"Only demonstrations read these pairs, but a pool from {pool['sampled']} of the {pool['unit']} kept "
                f"{pool['free_of_test_answers']} free of test answers, short of the {pool['needed']} needed, so "
                "pairs were made from all of them.")
    return (f"Only demonstrations read these pairs, so only a pool of them was made: from {pool['sampled']} of "
            f"{pool['of']} {pool['unit']} (seed {pool['seed']}, spread over {pool['documents']} of "
            f"{pool['of_documents']} documents), {pool['margin']} x the {pool['needed']} pairs free of test answers "
            "the arms read. The rest are made when an arm that trains on pairs runs.")
