"""`--sweep`: the grid, its validation against the task schema, and the combined table."""
import json
import shutil

import pandas as pd
import pytest
from conftest import FIXTURES

from harness.cli import main
from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.run.sweep import sweep_points

CFG = TaskConfig(name="t")


def test_grid_is_every_combination_with_typed_values():
    points = sweep_points(CFG, ["finetune.learning_rate=1e-4,3e-4", "retrieval.top_k=1,3,5"])
    assert len(points) == 6
    overrides, cfg = points[1]
    assert overrides == {"finetune.learning_rate": "1e-4", "retrieval.top_k": "3"}
    assert cfg.finetune.learning_rate == 1e-4 and cfg.retrieval.top_k == 3
    assert cfg.finetune.epochs == CFG.finetune.epochs  # everything else untouched


@pytest.mark.parametrize("spec, message", [
    ("finetune.learnin_rate=1", "no key 'learnin_rate'"),
    ("finetun.learning_rate=1", "no section 'finetun'"),
    ("retrieval.top_k=abc", "retrieval.top_k"),
    ("retrieval.top_k=0", "greater than or equal to 1"),
    ("top_k", "expected SECTION.KEY=V1,V2"),
])
def test_bad_sweeps_are_refused_before_anything_runs(spec, message):
    with pytest.raises(HarnessError, match=message):
        sweep_points(CFG, [spec])


def test_sweep_runs_each_point_and_writes_one_table(tiny_run, tmp_path):
    # The session run's answers: base at both points and prompt at tiny's own few_shot (2) are asked as there,
    # so only prompt without demonstrations is generated. A copy: the shared cache stays as that run left it.
    shutil.copytree(tiny_run.parents[2] / "cache" / "answers", tmp_path / "cache" / "answers")
    assert main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(tmp_path),
                 "--cache-dir", str(tmp_path / "cache"), "--pipelines", "base,prompt", "--no-freshness",
                 "--sweep", "prompt.few_shot=0,2"]) == 0
    (sweep,) = (tmp_path / "tiny").glob("sweep-*")
    table = pd.read_csv(sweep / "sweep.csv", dtype={"prompt.few_shot": str})
    assert list(table["prompt.few_shot"]) == ["0", "0", "2", "2"]
    assert list(table.pipeline) == ["base", "prompt"] * 2
    runs = {r for r in table.run}
    assert len(runs) == 2 and all((tmp_path / "tiny" / r / "report.md").is_file() for r in runs)
    # few_shot changes only the prompt pipeline's prompts: base answers identically at both points
    answers = [{(p["pipeline"], p["id"]): p["answer"] for p in map(json.loads, open(tmp_path / "tiny" / r /
                                                                                 "predictions.jsonl"))}
               for r in sorted(runs)]
    assert all(answers[0][k] == answers[1][k] for k in answers[0] if k[0] == "base")
    md = (sweep / "sweep.md").read_text()
    assert "Sweep over `prompt.few_shot`" in md
    # Neither arm has an eval-split figure, so no point is called best on its test score.
    assert "none is called best" in md and "Best on" not in md
