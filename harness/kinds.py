"""The names task.yaml chooses among where the harness is meant to be extended: kinds of weights and retrieval
methods, each listed here once.

They live in the bottom layer so that the config schema (harness/config.py) allows exactly these names without
importing the layers that implement them. Those layers keep a table from each name to its implementation
(`TRAINING` in harness/arms/pipeline.py, `RETRIEVERS` in harness/retrieval/registry.py), and
tests/test_registries.py fails, naming the name, when one side has a name the other lacks.

A new retriever: a class with the methods of `Retriever` (harness/retrieval/retriever.py), a factory in `RETRIEVERS`,
and its name in `RETRIEVAL_METHODS`. A new kind of weights: its entry in `WEIGHTS` and in `TRAINING`."""
from __future__ import annotations

from dataclasses import dataclass

PAIRS, DOCUMENTS = "pairs", "documents"


@dataclass(frozen=True)
class WeightsKind:
    """What a kind of weights is. Memory estimates, forecasts and reports read these, never an arm's name."""

    trains_on: str = ""  # PAIRS (question/answer training pairs), DOCUMENTS (next-token loss on their text), "": none
    passages: bool = False  # each training pair is shown with retrieval.top_k passages
    section: str = ""  # the task.yaml section whose learning rate and epochs (...) replace finetune's


WEIGHTS: dict[str, WeightsKind] = {
    "base": WeightsKind(),  # the model as it ships
    "qa-lora": WeightsKind(trains_on=PAIRS),
    "raft-lora": WeightsKind(trains_on=PAIRS, passages=True, section="raft"),  # RAFT (Zhang et al. 2024)
    "cpt-lora": WeightsKind(trains_on=DOCUMENTS, section="cpt"),  # continued pretraining
}
WEIGHTS_NAMES = tuple(WEIGHTS)

RETRIEVAL_METHODS = ("dense", "bm25", "hybrid")
