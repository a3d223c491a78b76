"""Which arm plays which part in the report's sentences (the control, the plain fine-tune, the retrievers), read
from what each arm is: the weights, context and demonstrations costs.json recorded for it, never its name. An
arm declared in task.yaml is reported like a built-in arm of the same make-up.

Each function takes the cost table (tables.cost_table), whose rows are in run order; where several arms fit a
part, the first one plays it. An arm of a run written before arms recorded their make-up (None in the table) plays
none."""
from __future__ import annotations

import pandas as pd

from harness.arms.catalog import TRAINED, TRAINS_ON_PAIRS, TRAINS_WITH_PASSAGES

RETRIEVED = "retrieved"  # ArmConfig.context of an arm that reads passages from the task's index


def _first(names: pd.Series) -> str | None:
    return str(names.iloc[0]) if len(names) else None


def control(cost: pd.DataFrame) -> str | None:
    """The untouched model that every other arm must beat: base weights, no context, no demonstrations (none
    recorded counts as none: hand-built and older run folders leave the count out)."""
    shown = cost.demonstrations_shown.fillna(0) if "demonstrations_shown" in cost else 0
    untouched = (cost.weights == "base") & (cost.context == "none") & (shown == 0)
    return _first(cost.pipeline[untouched])


def pairs_finetune(cost: pd.DataFrame) -> str | None:
    """The plain fine-tune: weights trained on Q&A pairs alone (no passages beside them), asked with no context."""
    plain = cost.weights.isin(TRAINS_ON_PAIRS - TRAINS_WITH_PASSAGES)
    return _first(cost.pipeline[plain & (cost.context == "none")])


def retrievers(cost: pd.DataFrame, weights: str | None = None) -> list[str]:
    """The arms that read retrieved passages (only those on `weights`, when given)."""
    reads = cost.context == RETRIEVED
    return list(cost.pipeline[reads & (cost.weights == weights)] if weights else cost.pipeline[reads])


def trained(cost: pd.DataFrame) -> list[str]:
    """The arms whose weights were trained in this run (a training seed can move their scores)."""
    return list(cost.pipeline[cost.weights.isin(TRAINED)])
