"""Each kind of trained weights trains with its own settings, examples and adapter-cache kind (pipeline.TRAINING),
and `Pipeline.training_set` hands a benchmark the same material `build` trains on. Real tokenizer and embedder."""
from pathlib import Path

import pytest

from harness.arms.pipeline import Shared, arm_qa_examples, make_pipeline
from harness.arms.training_data import cpt_examples
from harness.inference.models import DEFAULT_EMBEDDER, DEFAULT_MODEL, load_embedder, load_generator, resolve_model
from harness.task.folder import load_task

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    task = load_task(FIXTURES / "tiny")
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    return task, Shared(model, tok, load_embedder(DEFAULT_EMBEDDER), task.config, "test-model",
                        tmp_path_factory.mktemp("cache"), embedder_id=DEFAULT_EMBEDDER)


def test_qa_lora_trains_on_the_pairs_with_the_finetune_settings(shared):
    task, s = shared
    pipe = make_pipeline("finetune", s)
    training, rows = pipe.training_set(task.knowledge)
    assert training.kind == "qa" and training.settings(s.config) == s.config.finetune
    assert rows == arm_qa_examples(pipe.arm, s.config, s.tokenizer, task.knowledge.pairs)
    assert pipe.index is None  # it answers without passages: nothing to index


def test_raft_lora_trains_on_retrieved_passages_with_the_raft_settings(shared):
    task, s = shared
    pipe = make_pipeline("raft", s)
    training, rows = pipe.training_set(task.knowledge)
    settings = training.settings(s.config)
    assert training.kind == "raft"
    assert (settings.learning_rate, settings.epochs) == (s.config.raft.learning_rate, s.config.raft.epochs)
    assert settings.epochs != s.config.finetune.epochs  # tiny's raft epochs differ, so a mix-up shows
    assert pipe.index is not None and pipe.raft_oracle_share is not None
    assert len(rows) == min(len(task.knowledge.pairs), s.config.raft.max_examples)
    # Each prompt carries a passage of the documents, which a plain Q&A row would not.
    first = s.tokenizer.decode(rows[0]["input_ids"])
    assert any(" ".join(d.text.split()[:5]) in " ".join(first.split()) for d in task.knowledge.docs)


def test_cpt_lora_trains_on_the_documents_with_the_cpt_settings(shared):
    task, s = shared
    training, rows = make_pipeline("cpt", s).training_set(task.knowledge)
    settings = training.settings(s.config)
    assert training.kind == "cpt"
    assert (settings.learning_rate, settings.epochs) == (s.config.cpt.learning_rate, s.config.cpt.epochs)
    assert rows == cpt_examples(s.tokenizer, task.knowledge.docs, s.config.cpt.block_tokens)
