"""`harness new-task NAME`: a commented task folder a user fills in without reading the code.

The example files are marked (a first line `<!-- harness:example ... -->` in documents, a
`"harness_example": true` field in JSONL rows) so that validate and run can warn while they are left in."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .config import TaskConfig
from .errors import HarnessError
from .registry import task_path
from .task import EXAMPLE_FIELD, EXAMPLE_MARK

TEMPLATE = """\
# Task config. Only `name` is required; every other key shows its default. Unknown keys are errors.
name: {name}                    # quoted: a name like 2024, null or true stays a string
description: What this task's questions are about.

# Headline metric for the verdict: exact_match | contains | f1 | rouge_l | semantic
metric: {metric}
seed: {seed}

prompt:
  system: {system}          # used by prompt and finetune
  few_shot: {few_shot}                   # examples from train.jsonl in the prompt pipeline
  rag_instruction: {rag_instruction}

retrieval:                      # rag and finetune+rag
  chunk_words: {chunk_words}               # words per chunk (long documents become several chunks)
  chunk_overlap: {chunk_overlap}
  top_k: {top_k}                      # passages put in the prompt

finetune:                       # LoRA via peft, trained with transformers.Trainer
  lora_rank: {lora_rank}
  lora_alpha: {lora_alpha}
  lora_dropout: {lora_dropout}
  learning_rate: {learning_rate}
  epochs: {epochs}                     # upper bound; early stopping on the eval split usually ends sooner
  batch_size: {batch_size}
  weight_decay: {weight_decay}
  eval_fraction: {eval_fraction}            # share of train.jsonl held out for early stopping
  early_stopping_patience: {early_stopping_patience}

generation:                     # same for every pipeline: greedy decoding
  max_new_tokens: {max_new_tokens}
  batch_size: {gen_batch_size}
"""

def _row(**fields) -> str:
    return json.dumps({**fields, EXAMPLE_FIELD: True}) + "\n"


EXAMPLES = {
    "docs/example.md": f"{EXAMPLE_MARK}\n# Example document\n\nReplace this with your knowledge base: one topic "
                       "per file, plain facts.\nThe example product ships with a blue cable.\n",
    "train.jsonl": _row(question="What colour is the example product's cable?", answer="blue",
                        doc="docs/example.md"),
    "test.jsonl": _row(id="q1", question="Which cable colour comes with the example product?", answers=["blue"],
                       doc="docs/example.md", fresh=False, topic="example")
                  + _row(id="q2", question="From May on, which cable colour ships with the example product?",
                         answers=["green"], doc="updates/docs/changelog.md", fresh=True, topic="news"),
    "updates/docs/changelog.md": f"{EXAMPLE_MARK}\n# Changelog (arrives after the build)\n\nFrom May the "
                                 "example product ships with a green cable.\n",
    "updates/train.jsonl": _row(question="Since May, what colour is the example product's cable?", answer="green",
                                doc="updates/docs/changelog.md"),
}


def _check_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise HarnessError("the tasks directory is a file, not a folder; pass a folder with --tasks-dir "
                           "(or $HARNESS_TASKS_DIR)", root)


def new_task(name: str, root: Path) -> Path:
    _check_root(root)
    path = task_path(name, root)
    if path.exists():
        raise HarnessError(f"{path} already exists; pick another name or edit that folder")
    d = TaskConfig(name=name)
    # json.dumps quotes the name: unquoted, YAML reads `2024` as a number and `null` as nothing.
    text = TEMPLATE.format(name=json.dumps(name), metric=d.metric, seed=d.seed, **d.prompt.model_dump(),
                           **d.retrieval.model_dump(), **d.finetune.model_dump(exclude={"batch_size"}),
                           batch_size=d.finetune.batch_size, max_new_tokens=d.generation.max_new_tokens,
                           gen_batch_size=d.generation.batch_size)
    tmp = path.with_name(f".{name}.partial")
    try:
        for rel, content in {"task.yaml": text, **EXAMPLES}.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(content)
        tmp.rename(path)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HarnessError(f"cannot write the task folder ({e.strerror}); check that --tasks-dir is a "
                           "writable folder", e.filename or root) from None
    return path
