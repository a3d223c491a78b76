"""An arm's report comes from what it is (weights, context, demonstrations), never from its name: the committed
coffee run, with three built-in arms renamed as a task.yaml could declare them, reports exactly the same."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.report import roles
from harness.report.render import render

EXAMPLE = Path(__file__).parent.parent / "results" / "examples" / "coffee"
# New names that occur nowhere else in the run, so the report can be mapped back word for word.
RENAMED = {"base": "my-control", "rag": "my-retriever", "finetune": "my-tune"}
TABLES = ["accuracy.csv", "significance.csv", "slices.csv", "retrieval.csv", "cost.csv", "freshness.csv"]


def _rename_arms(run: Path) -> None:
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines() if line.strip()]
    (run / "predictions.jsonl").write_text("".join(
        json.dumps({**p, "pipeline": RENAMED.get(p["pipeline"], p["pipeline"])}, ensure_ascii=False) + "\n"
        for p in preds))
    saved = json.loads((run / "costs.json").read_text())
    (run / "costs.json").write_text(json.dumps({part: {RENAMED.get(n, n): v for n, v in arms.items()}
                                                for part, arms in saved.items()}))
    info = json.loads((run / "run.json").read_text())
    info["pipelines"] = [RENAMED.get(n, n) for n in info["pipelines"]]
    info["arms"] = {RENAMED.get(n, n): v for n, v in info["arms"].items()}
    (run / "run.json").write_text(json.dumps(info))


def _named_back(text: str) -> str:
    for old, new in RENAMED.items():
        text = text.replace(new, old)
    return text


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("roles")
    built_in, declared = root / "built-in", root / "declared"
    shutil.copytree(EXAMPLE, built_in)
    shutil.copytree(EXAMPLE, declared)
    _rename_arms(declared)
    render(built_in)
    render(declared)
    return built_in, declared


def test_renamed_arms_get_the_same_report_with_only_their_names_changed(both):
    built_in, declared = both
    ours = (declared / "report.md").read_text()
    assert "my-tune" in ours and "my-retriever" in ours and "my-control" in ours
    assert "finetune vs" not in ours and "untouched base model" in ours  # the roles' sentences, under new names
    assert _named_back(ours) == (built_in / "report.md").read_text()


@pytest.mark.parametrize("table", TABLES)
def test_renamed_arms_get_the_same_tables(both, table):
    built_in, declared = both
    assert _named_back((declared / table).read_text()) == (built_in / table).read_text()


def _cost(**arms) -> pd.DataFrame:
    return pd.DataFrame([{"pipeline": n, "weights": w, "context": c, "demonstrations_shown": d}
                         for n, (w, c, d) in arms.items()])


def test_parts_go_to_the_make_up_whatever_the_names():
    cost = _cost(shown=("base", "none", 3), bare=("base", "none", 0), both=("raft-lora", "retrieved", 0),
                 pairs=("qa-lora", "none", 0), reader=("base", "retrieved", 2), docs=("cpt-lora", "retrieved", 3))
    assert roles.control(cost) == "bare"
    assert roles.pairs_finetune(cost) == "pairs"  # raft-lora learns with passages: not the plain fine-tune
    assert roles.retrievers(cost) == ["both", "reader", "docs"]
    assert roles.retrievers(cost, "base") == ["reader"]
    assert roles.trained(cost) == ["both", "pairs", "docs"]


def test_a_run_that_did_not_record_demonstrations_still_has_its_control():
    cost = _cost(first=("base", "none", None), second=("base", "none", None), reader=("base", "retrieved", None))
    assert roles.control(cost) == "first"


def test_a_run_that_recorded_no_make_up_casts_no_one():
    cost = _cost(base=(None, None, None), finetune=(None, None, None))
    assert (roles.control(cost), roles.pairs_finetune(cost), roles.retrievers(cost), roles.trained(cost)) == \
        (None, None, [], [])
