"""A task folder read into typed, validated data. Every problem is reported with its file and line.

Layout (paths relative to the task folder):
    task.yaml             config (see harness/config.py)
    docs/*.md|*.txt       the knowledge base
    train.jsonl           {"question", "answer", "doc"?}: fine-tuning data and few-shot examples
    test.jsonl            {"id", "question", "answers" | "answer", "doc"?, "fresh"?, "topic"?}: held out
    updates/docs/*        documents that arrive after the model was built
    updates/train.jsonl   training pairs for the update, used only when a pipeline retrains
    provenance.json       written by `harness new-task --docs`: the source file each converted document came
                          from (harness/task/provenance.py), so passages cite "manual.pdf p. 12"

A task folder is untrusted input (people share them like datasets), so reading it follows these rules:
- No symbolic links anywhere inside the folder, and nothing but folders and regular files; UTF-8 only; JSONL
  lines split on "\\n" only (harness/task/reading.py).
- Limits: a document at most 20 MB and task.yaml at most 1 MB (here), a JSONL file at most 200 MB and one
  JSONL line at most 64 KB; JSON and YAML nested at most 100 levels deep (reading.py).
- task.yaml: plain data only (no tags, no aliases), and a key given twice is an error, not "last wins"
  (harness/task/yaml_file.py).
- The run folder is named after the task's folder name, never after `name:` in task.yaml; `name:` must
  still be a plain name (the same rule as `harness new-task`), so nothing a task says places output
  outside --results-dir.
- Leakage: a test question that matches or nearly matches a training question is refused, and so is the same
  question twice in test.jsonl (harness/task/leakage.py).

This module assembles the Task (harness/task/types.py) from those parts and checks what ties the files together:
fields, ids, which documents a row may cite, fresh questions against updates/.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.names import TASK_NAME_RULE, is_task_name
from harness.task.leakage import check_duplicate_questions, check_leakage
from harness.task.provenance import PROVENANCE_FILE, parse_provenance
from harness.task.reading import MAX_JSONL_BYTES, MB, check_tree, read_jsonl, read_text
from harness.task.types import Document, Knowledge, QAPair, Task, TestQuestion
from harness.task.yaml_file import load_yaml_as, parse_yaml, yaml_line

DOC_SUFFIXES = (".md", ".txt")
MAX_DOC_BYTES = 20 * MB
MAX_YAML_BYTES = 1 * MB

# `harness new-task` marks its example files so that validate and run can say they are still there.
EXAMPLE_TAG = "harness:example"
EXAMPLE_MARK = f"<!-- {EXAMPLE_TAG} — delete this file -->"
EXAMPLE_FIELD = "harness_example"


# ---------------------------------------------------------------- task.yaml

def load_config(path: Path) -> TaskConfig:
    if not path.is_file() or path.is_symlink():
        raise HarnessError("missing task.yaml: every task folder needs one (run `harness new-task NAME` "
                           "for a commented template)", path)
    config, root = load_yaml_as(path, MAX_YAML_BYTES, TaskConfig, "name:, description:", {
        "extra_forbidden": lambda m: "unknown key (check the spelling; `harness new-task` writes a template "
                                     "with every key)",
        "string_type": lambda m: m + ' (put the value in quotes, e.g. name: "2024")',
        "value_error": lambda m: m.removeprefix("Value error, ")})
    if not is_task_name(config.name):
        raise HarnessError(f"name: {config.name!r} is not a plain task name ({TASK_NAME_RULE}); "
                           "the run folder is named after the task folder", path, yaml_line(root, ("name",)))
    return config


def config_line(path: Path, loc: tuple[Any, ...]) -> int | None:
    """The line of a key in a task.yaml that has already loaded (for checks made after loading)."""
    try:
        return yaml_line(parse_yaml(read_text(path, MAX_YAML_BYTES), path)[1], loc)
    except (HarnessError, AttributeError):
        return None


# ---------------------------------------------------------------- documents

def _is_example(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    return EXAMPLE_TAG in first


def load_documents(folder: Path, task_root: Path) -> tuple[Document, ...]:
    docs = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() not in DOC_SUFFIXES:
            raise HarnessError(f"unsupported document type {p.suffix!r}; use {' or '.join(DOC_SUFFIXES)} files", p)
        text = read_text(p, MAX_DOC_BYTES)
        if not text.strip():
            raise HarnessError("document is empty; add text or delete the file", p)
        docs.append(Document(str(p.relative_to(task_root)), text))
    return tuple(docs)


# ---------------------------------------------------------------- JSONL rows

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


def _pairs(rows: list[tuple[int, dict[str, Any]]], path: Path,
           known_docs: set[str]) -> tuple[tuple[QAPair, ...], list[int]]:
    """The pairs and the line each came from (for the leakage check's messages)."""
    pairs = tuple(QAPair(_text_field(obj, "question", path, n), _text_field(obj, "answer", path, n),
                         _doc_field(obj, path, n, known_docs)) for n, obj in rows)
    return pairs, [n for n, _ in rows]


def _test_question(obj: dict[str, Any], path: Path, n: int, known_docs: set[str],
                   update_docs: set[str]) -> TestQuestion:
    qid = obj.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid).strip() == "":
        raise HarnessError('missing "id" (each test question needs a unique id)', path, n)
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
    if not fresh and doc in update_docs:
        raise HarnessError(f'question cites {doc!r} from updates/docs/ but is not marked "fresh": true; before '
                           "the update no pipeline could know it (add the flag, or cite a docs/ file)", path, n)
    return TestQuestion(str(qid), _text_field(obj, "question", path, n), tuple(a.strip() for a in answers),
                        doc, fresh, str(obj.get("topic", "")))


def _test_items(rows: list[tuple[int, dict[str, Any]]], path: Path, known_docs: set[str],
                update_docs: set[str]) -> tuple[list[TestQuestion], list[int]]:
    if not path.is_file():
        raise HarnessError("missing test.jsonl: the held-out questions every pipeline is scored on", path)
    items, lines, seen = [], [], {}
    for n, obj in rows:
        q = _test_question(obj, path, n, known_docs, update_docs)
        if q.id in seen:
            raise HarnessError(f'duplicate id {q.id!r} (first used on line {seen[q.id]})', path, n)
        seen[q.id] = n
        items.append(q)
        lines.append(n)
    if not items:
        raise HarnessError("test set is empty: add at least one held-out question", path)
    return items, lines


# ---------------------------------------------------------------- whole task

def _examples(rel: str, rows: list[tuple[int, dict[str, Any]]]) -> list[str]:
    return [f"{rel}:{n}" for n, obj in rows if obj.get(EXAMPLE_FIELD) is True]


def _warnings(root: Path, config: TaskConfig, examples: list[str]) -> tuple[str, ...]:
    out = []
    if config.name != root.name:
        out.append(f"{root / 'task.yaml'}: name {config.name!r} differs from the folder name; results go "
                   f"under {root.name!r} (the folder name)")
    if examples:
        shown = ", ".join(examples[:6]) + (f" and {len(examples) - 6} more" if len(examples) > 6 else "")
        out.append(f"{root}: still holds the `harness new-task` examples ({shown}); replace them with your "
                   "own data or delete them")
    return tuple(out)


def with_sources(root: Path, docs: tuple[Document, ...]) -> tuple[tuple[Document, ...], list[str]]:
    """The documents with the source file provenance.json names for each, and a warning for every entry that
    names no document (a converted file deleted by hand)."""
    path = root / PROVENANCE_FILE
    if not path.is_file():
        return docs, []
    sources = parse_provenance(read_text(path, MAX_JSONL_BYTES), path)
    known = {d.path for d in docs}
    stale = [f"{path}: lists {doc!r}, which is not in the task; re-run the import or delete the entry"
             for doc in sorted(set(sources) - known)]
    return tuple(dataclasses.replace(d, source=sources.get(d.path, "")) for d in docs), stale


def load_task(root: Path) -> Task:
    check_tree(root)  # before anything is read: no links, no special files
    config = load_config(root / "task.yaml")
    docs_dir, upd_dir = root / "docs", root / "updates" / "docs"
    docs = load_documents(docs_dir, root) if docs_dir.is_dir() else ()
    update_docs = load_documents(upd_dir, root) if upd_dir.is_dir() else ()
    sourced, stale = with_sources(root, docs + update_docs)
    docs, update_docs = sourced[:len(docs)], sourced[len(docs):]
    known = {d.path for d in docs}
    known_upd = {d.path for d in update_docs}
    read = {rel: (read_jsonl(root / rel) if (root / rel).is_file() else [])
            for rel in ("train.jsonl", "updates/train.jsonl", "test.jsonl")}
    pairs, pair_lines = _pairs(read["train.jsonl"], root / "train.jsonl", known)
    update_pairs, upd_lines = _pairs(read["updates/train.jsonl"], root / "updates" / "train.jsonl", known | known_upd)
    test, lines = _test_items(read["test.jsonl"], root / "test.jsonl", known, known_upd)
    check_duplicate_questions(root, test, lines)
    check_leakage(root, test, lines, [("train.jsonl", pairs, pair_lines),
                                      ("updates/train.jsonl", update_pairs, upd_lines)])
    examples = [d.path for d in docs + update_docs if _is_example(d.text)]
    examples += [e for rel, rows in read.items() for e in _examples(rel, rows)]
    sizes = {"docs": len(docs), "train": len(pairs), "test": len(test),
             "fresh": sum(q.fresh for q in test), "update_docs": len(update_docs)}
    return Task(root.name, root, config, Knowledge(docs, pairs), Knowledge(update_docs, update_pairs),
                tuple(test), sizes, _warnings(root, config, examples) + tuple(stale))
