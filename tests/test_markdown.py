"""The one Markdown table writer, and sweep.md written through it, on hand-made numbers."""
import math

import pandas as pd

from harness.markdown import markdown_table
from harness.run.sweep import write_sweep


def test_cells_are_formatted_by_kind():
    df = pd.DataFrame({"arm": ["rag", "finetune"], "score": [0.12345, 1234.5], "ok": [True, False],
                       "missing": [None, math.nan], "n": [3, 40]})
    assert markdown_table(df).split("\n") == [
        "| arm | score | ok | missing | n |",
        "|---|---|---|---|---|",
        "| rag | 0.123 | yes | – | 3 |",
        "| finetune | 1,234.5 | no | – | 40 |",
    ]


def _point(root, name: str, contains: float, eval_loss: float | None):
    run = root / name
    run.mkdir()
    pd.DataFrame([{"knowledge": "all stable", "pipeline": "finetune", "contains": contains, "contains_ci95_low": 0.1,
                   "contains_ci95_high": 0.9, "f1": 12.5}]).to_csv(run / "accuracy.csv", index=False)
    pd.DataFrame([{"pipeline": "finetune", "best_eval_loss": eval_loss, "epochs_run": 3, "train_seconds": 1234.5,
                   "latency_mean_s": 0.25}]).to_csv(run / "cost.csv", index=False)
    return run


def test_sweep_table_keeps_three_decimals_for_every_float_and_links_each_run(tmp_path):
    points = [({"finetune.learning_rate": "1e-4"}, _point(tmp_path, "a", 0.5, 1.25)),
              ({"finetune.learning_rate": "3e-4"}, _point(tmp_path, "b", 0.75, None))]
    write_sweep(tmp_path / "sweep", points, "contains")
    lines = (tmp_path / "sweep" / "sweep.md").read_text().split("\n")
    header = lines.index("| finetune.learning_rate | pipeline | contains | contains_ci95 | f1 | best_eval_loss "
                         "| epochs_run | train_seconds | latency_mean_s | run |")
    assert lines[header + 1:header + 4] == [
        "|---|---|---|---|---|---|---|---|---|---|",
        "| 1e-4 | finetune | 0.500 | [0.10, 0.90] | 12.500 | 1.250 | 3.000 | 1234.500 | 0.250 | [a](../a) |",
        "| 3e-4 | finetune | 0.750 | [0.10, 0.90] | 12.500 | – | 3.000 | 1234.500 | 0.250 | [b](../b) |",
    ]
