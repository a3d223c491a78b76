"""`harness new-task NAME`: a commented task folder a user fills in without reading the code.

The example files are marked (a first line `<!-- harness:example ... -->` in documents, a
`"harness_example": true` field in JSONL rows) so that validate and run can warn while they are left in."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.config import MAX_BATCH_GROWTH, TaskConfig
from harness.errors import HarnessError
from harness.task.registry import task_path
from harness.task.folder import EXAMPLE_FIELD, EXAMPLE_MARK

TEMPLATE = """\
# Task config. Only `name` is required; every other key shows its default. Unknown keys are errors.
name: {name}                    # quoted: a name like 2024, null or true stays a string
description: What this task's questions are about.

# Headline metric for the verdict: exact_match | contains | f1 | recall | rouge_l | semantic
# (recall, the share of the reference's words in the answer, is fairest when references are sentences)
metric: {metric}
seed: {seed}

# Where finetune and raft get question/answer pairs: written (train.jsonl) | generated (made from docs/,
# filtered; see pairs.generated.jsonl in the run folder) | both.
# Left out: written when train.jsonl has pairs, else generated.
# training_pairs: written
pair_generation:
  writer: {pg_writer}                 # parse: questions built from each sentence's parse, true by construction |
                                  # model: the generator model writes them (--generator)
  facts_per_sentence: {pg_facts}          # parse: facts asked for in one sentence (numbers, names, then terms)
  phrasings: {pg_phrasings}                   # parse: questions kept per fact (short, fronted, cloze, topic, sentence)
  epochs: {pg_epochs}                      # finetune's epochs on built pairs (replaces finetune.epochs for them)
  candidates: {pg_candidates}         # model: numbers-names | numbers-names-terms, which spans become answers
  per_chunk: {pg_per_chunk}                    # model: candidate answers per document chunk
  demonstrations: {pg_demonstrations}               # model: solved examples shown to the question writer

prompt:
  system: {system}          # arms without passages (prompt, finetune, cpt)
  few_shot: {few_shot}                   # demonstrations for prompt and cpt: training pairs free of test answers
  rag_instruction: {rag_instruction}   # arms with passages (rag, raft)

retrieval:                      # arms with context: retrieved (rag, raft)
  method: {method}                 # dense (FAISS) | bm25 | hybrid (both, fused by reciprocal rank)
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

raft:                           # LoRA trained with passages in the prompt (Zhang et al. 2024)
  oracle_probability: {oracle_probability}       # share of prompts holding the pair's source passage (else distractors)
  max_examples: {max_examples}             # a sample of train.jsonl: it learns to read, not the facts
  epochs: {raft_epochs}
  learning_rate: {raft_learning_rate}

cpt:                            # continued pretraining: LoRA, next-token loss on docs/ (no Q&A)
  block_tokens: {block_tokens}
  epochs: {cpt_epochs}
  learning_rate: {cpt_learning_rate}

update:                         # how trained arms take in updates/
  strategy: {update_strategy}            # continue: the adapter trains on, with a replay of old examples; retrain: from scratch
  replay: {update_replay}                 # old examples replayed per new one when continuing (against forgetting)

demonstrations:                 # how `rag` chooses its demonstration format, on training pairs, never on test
  candidates: {candidates}   # [demonstrations, passages each(, passages for the question: else top_k)]
  eval_questions: {eval_questions}

# Extra arms, on top of base, prompt, rag, finetune, raft and cpt: weights (base | qa-lora | raft-lora |
# cpt-lora) x context (none | retrieved) x demonstrations (a number, few_shot or auto). For example:
#   cpt+rag: {{weights: cpt-lora, context: retrieved}}
#   finetune+prompt: {{weights: qa-lora, demonstrations: few_shot}}
# format: plain trains and asks in "Question: ..." / "Answer: ..." lines, not the chat template: half the
# training tokens on short pairs (bench/README.md has what it costs in accuracy). For example:
#   finetune-plain: {{weights: qa-lora, format: plain, instruction: false}}
arms: {{}}

generation:                     # same for every arm: greedy decoding
  max_new_tokens: {max_new_tokens}
  batch_size: {gen_batch_size}
  batch_tokens: {gen_batch_tokens}           # short prompts answer in bigger batches, up to {max_growth}x batch_size

# Minutes the run may take on this CPU (`harness run --budget` overrides): every arm, phase and test question is
# kept; cpt's document tokens, then generated pairs (by fact), then RAFT examples are sampled to fit.
# budget: 30

# "Cost at your scale" in the report: each arm's measured tokens projected onto a deployment. A built-in profile
# (h100-8b, h100x8-70b, api-8b) or a YAML file inside this folder written like them (harness/task/deployments/);
# `harness run --deployment` overrides it.
# deployment: h100-8b
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


DESCRIPTION = "What this task's questions are about."


def task_yaml(name: str, training_pairs: str | None = None, description: str = DESCRIPTION) -> str:
    """The commented task.yaml `new-task` writes: every key at its default, `training_pairs` set when given."""
    d = TaskConfig(name=name)
    # json.dumps quotes the name: unquoted, YAML reads `2024` as a number and `null` as nothing.
    text = TEMPLATE.format(name=json.dumps(name), metric=d.metric, seed=d.seed, **d.prompt.model_dump(),
                           **d.retrieval.model_dump(), **d.finetune.model_dump(exclude={"batch_size"}),
                           batch_size=d.finetune.batch_size, max_new_tokens=d.generation.max_new_tokens,
                           gen_batch_size=d.generation.batch_size, gen_batch_tokens=d.generation.batch_tokens,
                           max_growth=MAX_BATCH_GROWTH, oracle_probability=d.raft.oracle_probability,
                           max_examples=d.raft.max_examples, raft_epochs=d.raft.epochs,
                           raft_learning_rate=d.raft.learning_rate, block_tokens=d.cpt.block_tokens,
                           cpt_epochs=d.cpt.epochs, cpt_learning_rate=d.cpt.learning_rate,
                           update_strategy=d.update.strategy, update_replay=d.update.replay,
                           candidates=json.dumps(d.demonstrations.candidates),
                           eval_questions=d.demonstrations.eval_questions,
                           pg_candidates=d.pair_generation.candidates, pg_per_chunk=d.pair_generation.per_chunk,
                           pg_demonstrations=d.pair_generation.demonstrations, pg_writer=d.pair_generation.writer,
                           pg_facts=d.pair_generation.facts_per_sentence, pg_phrasings=d.pair_generation.phrasings,
                           pg_epochs=d.pair_generation.epochs)
    if description != DESCRIPTION:
        text = text.replace(f"description: {DESCRIPTION}", f"description: {json.dumps(description)}")
    if training_pairs:
        text = text.replace("# training_pairs: written", f"training_pairs: {training_pairs}")
    return text


def check_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise HarnessError("the tasks directory is a file, not a folder; pass a folder with --tasks-dir "
                           "(or $HARNESS_TASKS_DIR)", root)


def new_task(name: str, root: Path) -> Path:
    check_root(root)
    path = task_path(name, root)
    if path.exists():
        raise HarnessError(f"{path} already exists; pick another name or edit that folder")
    text = task_yaml(name)
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
