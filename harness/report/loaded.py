"""A run folder's saved files, read once through the checked readers (harness/run/files.py), for every output
rendered from them: report.md, the figures and report.html all see the same rows."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.pairs import read_pairs
from harness.run.files import load_run


@dataclass(frozen=True)
class LoadedRun:
    info: dict  # run.json
    saved: dict  # costs.json: "costs" and "timings" per arm
    preds: pd.DataFrame  # predictions.jsonl
    pairs: list[dict]  # pairs.generated.jsonl; [] for a run that trained on hand-written pairs only


def load(run_dir: Path) -> LoadedRun:
    """Every file a report reads, each checked: a damaged run is one clear error, before anything is written."""
    info, saved, preds = load_run(run_dir)
    return LoadedRun(info, saved, preds, read_pairs(run_dir))
