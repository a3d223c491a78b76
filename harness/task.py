"""A task folder read into typed, validated data. Every problem is reported with its file and line.

Layout (paths relative to the task folder):
    task.yaml             config (see harness/config.py)
    docs/*.md|*.txt       the knowledge base
    train.jsonl           {"question", "answer", "doc"?}: fine-tuning data and few-shot examples
    test.jsonl            {"id", "question", "answers" | "answer", "doc"?, "fresh"?, "topic"?}: held out
    updates/docs/*        documents that arrive after the model was built
    updates/train.jsonl   training pairs for the update, used only when a pipeline retrains
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import TaskConfig
from .errors import HarnessError
from .text import normalize

DOC_SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class Document:
    path: str  # relative to the task folder, e.g. "docs/roasting.md"
    text: str


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    doc: str | None = None


@dataclass(frozen=True)
class TestQuestion:
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
    name: str
    root: Path
    config: TaskConfig
    knowledge: Knowledge
    update: Knowledge
    test: tuple[TestQuestion, ...]
    sizes: dict[str, int] = field(default_factory=dict)

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
            if p.is_file():
                h.update(str(p.relative_to(self.root)).encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------- task.yaml

def _yaml_line(node: yaml.Node, path: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `path` (or of its nearest existing parent)."""
    line = node.start_mark.line + 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == key]
            if not match:
                return line
            key_node, node = match[0]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_config(path: Path) -> TaskConfig:
    if not path.is_file():
        raise HarnessError("missing task.yaml: every task folder needs one (run `harness new-task NAME` "
                           "for a commented template)", path)
    text = _read_text(path)
    try:
        # safe_load/compose build plain data only: a `!!python/object` tag is an error, never an object.
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise HarnessError(f"not valid YAML: {getattr(e, 'problem', e)}", path,
                           mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise HarnessError("must be a mapping of keys (name:, description:, ...)", path, 1)
    try:
        return TaskConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `harness new-task` writes a template with every key)"
        raise HarnessError(f"{key}: {msg}", path, _yaml_line(root, tuple(err["loc"]))) from None


# ---------------------------------------------------------------- documents

def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise HarnessError("looks like a binary file (contains NUL bytes); only UTF-8 text is allowed here", path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise HarnessError(f"not UTF-8 text (byte {e.start}); re-save the file as UTF-8", path, line) from None


def load_documents(folder: Path, task_root: Path) -> tuple[Document, ...]:
    docs = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() not in DOC_SUFFIXES:
            raise HarnessError(f"unsupported document type {p.suffix!r}; use {' or '.join(DOC_SUFFIXES)} files", p)
        text = _read_text(p)
        if not text.strip():
            raise HarnessError("document is empty; add text or delete the file", p)
        docs.append(Document(str(p.relative_to(task_root)), text))
    return tuple(docs)


# ---------------------------------------------------------------- JSONL

def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno})", path, n) from None
        if not isinstance(obj, dict):
            raise HarnessError("each line must be a JSON object {...}", path, n)
        rows.append((n, obj))
    return rows


def _text_field(obj: dict[str, Any], key: str, path: Path, line: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise HarnessError(f'missing or empty "{key}" (a non-empty string is required)', path, line)
    return value.strip()


def _doc_field(obj: dict[str, Any], path: Path, line: int, known: set[str]) -> str | None:
    doc = obj.get("doc")
    if doc is None:
        return None
    if not isinstance(doc, str) or doc not in known:
        raise HarnessError(f'"doc": {doc!r} names no document of this task '
                           f"(give a path like {next(iter(sorted(known)), 'docs/x.md')!r})", path, line)
    return doc


def load_pairs(path: Path, known_docs: set[str]) -> tuple[tuple[QAPair, ...], list[int]]:
    """The pairs and the line each came from (for the leakage check's messages)."""
    pairs, lines = [], []
    for n, obj in _read_jsonl(path):
        pairs.append(QAPair(_text_field(obj, "question", path, n), _text_field(obj, "answer", path, n),
                            _doc_field(obj, path, n, known_docs)))
        lines.append(n)
    return tuple(pairs), lines


def load_test(path: Path, known_docs: set[str], update_docs: set[str]) -> tuple[list[TestQuestion], list[int]]:
    if not path.is_file():
        raise HarnessError("missing test.jsonl: the held-out questions every pipeline is scored on", path)
    items, lines, seen = [], [], {}
    for n, obj in _read_jsonl(path):
        qid = obj.get("id")
        if not isinstance(qid, (str, int)) or str(qid).strip() == "":
            raise HarnessError('missing "id" (each test question needs a unique id)', path, n)
        qid = str(qid)
        if qid in seen:
            raise HarnessError(f'duplicate id {qid!r} (first used on line {seen[qid]})', path, n)
        seen[qid] = n
        answers = obj.get("answers", obj.get("answer"))
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise HarnessError('missing "answers" (a non-empty list of reference strings, or "answer": "...")', path, n)
        fresh = obj.get("fresh", False)
        if not isinstance(fresh, bool):
            raise HarnessError('"fresh" must be true or false', path, n)
        doc = _doc_field(obj, path, n, known_docs | update_docs)
        if fresh and not update_docs:
            raise HarnessError('question is marked "fresh": true but the task has no updates/docs/ '
                               "(add the documents that answer it there, or drop the flag)", path, n)
        if fresh and doc is not None and doc not in update_docs:
            raise HarnessError(f'fresh question names {doc!r}, which is not under updates/docs/', path, n)
        items.append(TestQuestion(qid, _text_field(obj, "question", path, n), tuple(a.strip() for a in answers),
                                  doc, fresh, str(obj.get("topic", ""))))
        lines.append(n)
    if not items:
        raise HarnessError("test set is empty: add at least one held-out question", path)
    return items, lines


def check_leakage(task_root: Path, test: list[TestQuestion], test_lines: list[int],
                  train: list[tuple[str, tuple[QAPair, ...], list[int]]]) -> None:
    """Refuse a task whose test questions also appear in any training file (normalised text).

    `train` holds (file name, pairs, their lines) for every training file."""
    seen: dict[str, str] = {}
    for name, pairs, lines in train:
        for pair, n in zip(pairs, lines):
            seen.setdefault(normalize(pair.question), f"{name}:{n}")
    leaks = [(line, q.question, seen[normalize(q.question)])
             for q, line in zip(test, test_lines) if normalize(q.question) in seen]
    if leaks:
        detail = "; ".join(f"test.jsonl:{line} = {where}" for line, _, where in leaks[:10])
        raise HarnessError(f"{len(leaks)} test question(s) also appear in training data ({detail}). "
                           "A leaked question measures memory, not knowledge: reword or remove them.",
                           task_root / "test.jsonl", leaks[0][0])


# ---------------------------------------------------------------- whole task

def load_task(root: Path) -> Task:
    config = load_config(root / "task.yaml")
    docs_dir, upd_dir = root / "docs", root / "updates" / "docs"
    docs = load_documents(docs_dir, root) if docs_dir.is_dir() else ()
    update_docs = load_documents(upd_dir, root) if upd_dir.is_dir() else ()
    known = {d.path for d in docs}
    known_upd = {d.path for d in update_docs}
    train_path = root / "train.jsonl"
    pairs, pair_lines = load_pairs(train_path, known) if train_path.is_file() else ((), [])
    upd_train = root / "updates" / "train.jsonl"
    update_pairs, upd_lines = load_pairs(upd_train, known | known_upd) if upd_train.is_file() else ((), [])
    test, lines = load_test(root / "test.jsonl", known, known_upd)
    check_leakage(root, test, lines, [("train.jsonl", pairs, pair_lines),
                                      ("updates/train.jsonl", update_pairs, upd_lines)])
    sizes = {"docs": len(docs), "train": len(pairs), "test": len(test),
             "fresh": sum(q.fresh for q in test), "update_docs": len(update_docs)}
    return Task(config.name, root, config, Knowledge(docs, pairs), Knowledge(update_docs, update_pairs),
                tuple(test), sizes)
