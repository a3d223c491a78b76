"""The extension points (issue 42): each name task.yaml may choose, listed once in harness/kinds.py, has exactly one
implementation in the layer that builds it, and the config allows exactly those names.

A retriever is checked by building it: every factory returns a `Retriever` over the documents it was given. The
dense ones embed with a stand-in embedder (hashed words), so no model loads."""
import hashlib
import re
import typing

import numpy as np
import pytest

from harness.arms import catalog
from harness.arms.pipeline import TRAINING
from harness.config import ArmConfig, RetrievalConfig, TaskConfig
from harness.kinds import RETRIEVAL_METHODS, WEIGHTS, WEIGHTS_NAMES
from harness.retrieval.registry import RETRIEVERS, build_retriever
from harness.retrieval.retriever import Retriever
from harness.task.scaffold import task_yaml
from harness.task.types import Document

DOCS = (Document("docs/a.md", "The Quillport ferry leaves at 07:40 from pier 3. Tickets cost 12 crowns."),
        Document("docs/b.md", "Herons nest on the salt marsh in spring; the marsh closes to walkers in April."))


class HashedWords:
    """An embedder stand-in: each word hashed to one of 256 dimensions, so shared words mean similar vectors."""

    def get_embedding_dimension(self) -> int:
        return 256

    def encode(self, texts, **_) -> np.ndarray:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in zip(out, texts):
            for word in re.findall(r"\w+", text.lower()):
                row[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 256] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def allowed(model, field: str) -> tuple[str, ...]:
    return typing.get_args(model.model_fields[field].annotation)


def differ(what: str, listed, implemented) -> str:
    missing, extra = set(listed) - set(implemented), set(implemented) - set(listed)
    return (f"{what}: harness/kinds.py lists {sorted(missing)} with no implementation; implemented but not listed "
            f"there: {sorted(extra)}")


def test_config_allows_exactly_the_listed_names():
    assert allowed(RetrievalConfig, "method") == RETRIEVAL_METHODS
    assert allowed(ArmConfig, "weights") == WEIGHTS_NAMES == tuple(WEIGHTS)


def test_every_retrieval_method_has_a_factory_and_every_factory_a_name():
    assert tuple(RETRIEVERS) == RETRIEVAL_METHODS, differ("retrieval.method", RETRIEVAL_METHODS, RETRIEVERS)


@pytest.mark.parametrize("method", RETRIEVAL_METHODS)
def test_each_factory_builds_a_retriever_over_the_documents(method):
    index = build_retriever(method, HashedWords(), "hashed", DOCS, 16, 4, None)
    assert isinstance(index, Retriever)
    assert len(index.passages) >= len(DOCS) and index.nbytes > 0 and index.kind
    (hits,) = index.search(["when does the Quillport ferry leave pier 3"], 1)
    assert [p.doc for p in hits] == ["docs/a.md"]
    assert index.add([Document("docs/c.md", "The lighthouse at Quillport was built in 1871.")]) >= 1


def test_an_unregistered_method_names_the_registered_ones():
    with pytest.raises(ValueError, match="no retriever named 'sparse'; registered: dense, bm25, hybrid"):
        build_retriever("sparse", None, "", DOCS, 16, 4, None)


def test_every_trained_kind_of_weights_has_a_training_recipe():
    trained = {n for n, w in WEIGHTS.items() if w.trains_on}
    assert set(TRAINING) == trained == catalog.TRAINED, differ("weights", trained, TRAINING)
    assert set(catalog.TUNED_BY) == set(WEIGHTS)


@pytest.mark.parametrize("name", [n for n, w in WEIGHTS.items() if w.section])
def test_a_kinds_own_section_is_a_task_yaml_section_with_a_recipe(name):
    section = getattr(TaskConfig(name="t"), WEIGHTS[name].section)
    assert {"learning_rate", "epochs", "lora_layers"} <= set(type(section).model_fields)
    assert catalog.TUNED_BY[name] == ("finetune", WEIGHTS[name].section)


def test_the_new_task_template_names_every_choice():
    # Its comments are how a user learns the names: a kind added to harness/kinds.py must appear there too.
    text = task_yaml("t")
    assert [n for n in WEIGHTS_NAMES + RETRIEVAL_METHODS if n not in text] == []
