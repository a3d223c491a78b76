"""The task's data once read: documents, training pairs, held-out questions, and the Task that holds them.

Plain frozen records, apart from a Task's content hash of its folder: the many modules that only pass a task's
contents around (retrieval, pairs, arms, the run) depend on these, not on how a task folder is read and checked
(harness/task/folder.py)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import TaskConfig
from harness.text import normalize


@dataclass(frozen=True)
class Document:
    path: str  # relative to the task folder, e.g. "docs/roasting.md"
    text: str
    source: str = ""  # the file it was converted from, e.g. "manual.pdf" (provenance.json); "" if written as is


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    doc: str | None = None
    # "written" by hand (train.jsonl) or "generated" from the documents (harness/pairs/source.py)
    origin: str = "written"


@dataclass(frozen=True)
class TestQuestion:
    __test__ = False  # a held-out question, not a pytest class to collect
    id: str
    question: str
    answers: tuple[str, ...]
    doc: str | None = None
    fresh: bool = False
    topic: str = ""


@dataclass(frozen=True)
class Knowledge:
    """What a pipeline may learn from: documents and training pairs. Never holds test answers."""

    docs: tuple[Document, ...] = ()
    pairs: tuple[QAPair, ...] = ()

    def __add__(self, other: Knowledge) -> Knowledge:
        return Knowledge(self.docs + other.docs, self.pairs + other.pairs)


@dataclass(frozen=True)
class Task:
    name: str  # the task's folder name: the run folder is RESULTS_DIR/NAME/
    root: Path
    config: TaskConfig
    knowledge: Knowledge
    update: Knowledge
    test: tuple[TestQuestion, ...]
    sizes: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # worth saying, not worth refusing (e.g. new-task examples left in)

    @property
    def stable(self) -> list[TestQuestion]:
        return [q for q in self.test if not q.fresh]

    @property
    def fresh(self) -> list[TestQuestion]:
        return [q for q in self.test if q.fresh]

    def answer_coverage(self) -> float:
        """Share of stable test questions whose answer is also a training answer: how much of the test
        a fine-tune could have memorised. Computed for the report only; pipelines never see references."""
        taught = {normalize(p.answer) for p in self.knowledge.pairs}
        stable = self.stable or list(self.test)
        return sum(any(normalize(a) in taught for a in q.answers) for q in stable) / len(stable)

    def fingerprint(self) -> str:
        """Content hash of everything in the folder, recorded beside results."""
        h = hashlib.sha256()
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.is_symlink():  # load_task refuses links; never hash through one
                h.update(str(p.relative_to(self.root)).encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]

