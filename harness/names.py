"""Names and constants that the light commands need (`--help`, validate, list, report, compare, new-task).

This module imports nothing heavy, so the command line can build its parser and check names without
pulling in torch, transformers or faiss. The old homes (`harness.inference.models`, `harness.run.runner`) re-export
what they used to define, so existing imports keep working."""
from __future__ import annotations

import re

# Generators and the embedder that ship as PyPI wheels and so run with no hub access.
DEFAULT_MODEL = "smollm2-135m"
GEMMA_MODEL = "gemma3-270m"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
# Their sizes, as the report names them where a small model bounds what a number can show.
SHIPPED_SIZES = {DEFAULT_MODEL: "135M", GEMMA_MODEL: "270M"}

# The phases of one run, as written in predictions.jsonl.
PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT = "main", "update_no_rebuild", "update_rebuilt"
PHASES = (PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT)
PHASE_LABELS = {PHASE_MAIN: "before the update", PHASE_NO_REBUILD: "update, no rebuild",
                PHASE_REBUILT: "update, rebuilt"}  # as pages name them

# A task name is a folder name, never a path: it becomes RESULTS_DIR/NAME/, so it must not hold a
# separator, start with a dot or be `..`.
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TASK_NAME_RULE = "letters, digits, '-', '_' or '.', starting with a letter or digit, at most 100 characters"


def is_task_name(name: object) -> bool:
    """True for a name that is safe as one folder name under the tasks and results directories."""
    return isinstance(name, str) and bool(_TASK_NAME.match(name)) and ".." not in name

# Prices for the money columns, when the run gives none (the `run` options' defaults).
DEFAULT_PRICES = {"cpu_hour_usd": 0.10, "gpu_hour_usd": 2.50, "per_million_tokens_usd": 0.0}
# The choices of --engine (vllm_engine.choose_engine) and of harness train's --fsdp (sharding.wants_fsdp).
ENGINES = ("auto", "transformers", "vllm")
FSDP_MODES = ("auto", "on", "off")

# What the freshness table says of an arm that learns only from training pairs when an update brings none.
NOT_RETRAINED = "not retrained: no new training pairs"
# ...and of the other rebuilds; a continued one reads "continued: N new + M replayed examples".
RETRAINED, CONTINUED, REINDEXED, NOTHING_TO_REBUILD = "retrained", "continued", "re-indexed", "nothing to rebuild"

# What a Hugging Face hub id looks like ("name" or "org/name"). Anything else given as --model or
# --embedder that does not exist on disk is a mistyped path, not something to ask the hub for.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")


def looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and ".." not in spec and "--" not in spec
