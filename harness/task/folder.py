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
- No symbolic links anywhere inside the folder, and nothing but folders and regular files: a link could
  pull /etc/passwd into prompts, predictions and caches. The folder is refused, naming the link.
- The run folder is named after the task's folder name, never after `name:` in task.yaml; `name:` must
  still be a plain name (the same rule as `harness new-task`), so nothing a task says places output
  outside --results-dir.
- Limits: a document at most 20 MB, task.yaml at most 1 MB, a JSONL file at most 200 MB and one JSONL
  line at most 64 KB; JSON and YAML nested at most 100 levels deep.
- UTF-8 only; a leading byte-order mark is accepted. JSONL lines are split on "\\n" only, so U+2028,
  U+2029 and U+0085 inside a JSON string are text, not line breaks.
- task.yaml: plain data only (no tags, no aliases), and a key given twice is an error, not "last wins".
- Leakage: a test question whose words match a training question (apostrophes kept inside words, so
  "product's" = "products"), or nearly match (word-set Jaccard similarity >= 0.9), is refused; so is
  the same question twice in test.jsonl.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.config import TaskConfig
from harness.errors import HarnessError
from harness.names import TASK_NAME_RULE, is_task_name
from harness.task.provenance import PROVENANCE_FILE, parse_provenance
from harness.text import best_matches, normalize, word_set

Schema = TypeVar("Schema", bound=BaseModel)
DOC_SUFFIXES = (".md", ".txt")
MB = 2**20
MAX_DOC_BYTES = 20 * MB
MAX_YAML_BYTES = 1 * MB
MAX_JSONL_BYTES = 200 * MB
MAX_LINE_BYTES = 64 * 2**10
MAX_DEPTH = 100
_TOO_DEEP = object()
NEAR_DUPLICATE = 0.9  # word-set Jaccard similarity from which two questions count as the same

# `harness new-task` marks its example files so that validate and run can say they are still there.
EXAMPLE_TAG = "harness:example"
EXAMPLE_MARK = f"<!-- {EXAMPLE_TAG} — delete this file -->"
EXAMPLE_FIELD = "harness_example"


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
    origin: str = "written"  # "written" by hand (train.jsonl) or "generated" from the documents (pairgen.py)


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


# ---------------------------------------------------------------- reading untrusted files

def check_tree(root: Path) -> None:
    """Refuse symbolic links and special files anywhere inside the task folder, before reading any of it."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise HarnessError(f"cannot read this folder ({e.strerror})", folder) from None
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                raise HarnessError("is a symbolic link; task folders may not contain links (a link could pull "
                                   "in any file on this machine): copy the file in instead", path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif not entry.is_file(follow_symlinks=False):
                raise HarnessError("is not a regular file (a pipe, socket or device); remove it", path)


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def read_bytes(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refused (one line) when it is a link, not a regular file, or over `limit`."""
    # O_NOFOLLOW: a file swapped for a link after check_tree is still refused, not followed.
    # O_NONBLOCK: a pipe swapped in is refused below instead of waiting forever for a writer.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise HarnessError(f"cannot open ({e.strerror}); task files must be regular files, not links", path) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise HarnessError("is not a regular file", path)
        if st.st_size > limit:
            raise HarnessError(f"is {_size(st.st_size)}, over the {_size(limit)} limit for this file; "
                               "split it into smaller files", path)
        return f.read(limit + 1)


def read_text(path: Path, limit: int = MAX_DOC_BYTES) -> str:
    return decode_text(read_bytes(path, limit), path)


def decode_text(raw: bytes, path: Path) -> str:
    """A file's bytes as text: UTF-8 only (a leading byte-order mark dropped), refused naming the line of the first
    NUL byte or undecodable byte."""
    if b"\x00" in raw:  # the line of the first one: a stray NUL in a long JSONL file is otherwise hard to find
        raise HarnessError("looks like a binary file (contains NUL bytes); only UTF-8 text is allowed here", path,
                           raw[: raw.index(b"\x00")].count(b"\n") + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise HarnessError(f"not UTF-8 text (byte {e.start}); re-save the file as UTF-8", path, line) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as some editors write it


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (the data may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


# ---------------------------------------------------------------- task.yaml

class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice (plain PyYAML silently keeps the last one)."""

    path: Path

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]`: a list or mapping as a key
                raise HarnessError("a key must be a plain name, not a list or a mapping; write it as `name:`",
                                   self.path, line)
            if key in seen:
                raise HarnessError(f"duplicate key {key!r} (first on line {seen[key]}): YAML would silently keep "
                                   "only the last one; delete one of them", self.path, line)
            seen[key] = line
        return super().construct_mapping(node, deep)


def _check_yaml_shape(text: str, path: Path) -> None:
    """Depth and aliases, checked on the event stream (PyYAML's composer recurses and would crash first)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise HarnessError("YAML aliases (*name) are not allowed in task.yaml or a deployment profile: write "
                               "the value out", path, line)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise HarnessError(f"nested deeper than {MAX_DEPTH} levels; a config needs 3", path, line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def parse_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        # Safe loading builds plain data only: a `!!python/object` tag is an error, never an object.
        _check_yaml_shape(text, path)
        loader = _UniqueKeyLoader(text)
        loader.path = path
        try:
            root = loader.get_single_node()
            return (loader.construct_document(root) if root is not None else None), root
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as e:  # a control character: it has a position, not a mark
        raise HarnessError(f"not valid YAML: character #x{e.character:04x} is not allowed ({e.reason}); delete it",
                           path, text.count("\n", 0, e.position) + 1) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise HarnessError(f"not valid YAML: {getattr(e, 'problem', None) or e}", path,
                           mark.line + 1 if mark else None) from None


def yaml_line(node: yaml.Node, path: tuple[Any, ...]) -> int | None:
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


def _schema_error(e: ValidationError, data: Any, root: yaml.Node | None, path: Path,
                  hints: dict[str, Callable[[str], str]]) -> HarnessError:
    """The first schema error as one line at its YAML line; `hints` rewrite pydantic's message by error type.

    A tagged union (`kind: gpu`) puts its tag in the error's location though no key has that name: such
    steps are dropped, so the key and the line are the ones the user wrote."""
    # A misspelt key also shows up as the real key missing: name the misspelling, the cause.
    err = next((x for x in e.errors() if x["type"] == "extra_forbidden"), e.errors()[0])
    loc, node = [], data
    for i, step in enumerate(err["loc"]):
        if isinstance(node, dict) and step not in node and i < len(err["loc"]) - 1:
            continue
        loc.append(step)
        if isinstance(node, dict):
            node = node.get(step)
        else:
            node = node[step] if isinstance(node, list) and isinstance(step, int) and step < len(node) else None
    # A key is shown escaped when it holds a control character: a raw one would break the error's line.
    key = ".".join(str(p) if str(p).isprintable() else repr(str(p)) for p in loc) or "(top level)"
    msg = hints.get(err["type"], lambda m: m)(err["msg"])
    return HarnessError(f"{key}: {msg}", path, yaml_line(root, tuple(loc)) if root is not None else None)


def load_yaml_as(path: Path, limit: int, schema: type[Schema], keys: str,
                 hints: dict[str, Callable[[str], str]]) -> tuple[Schema, yaml.Node]:
    """A YAML mapping checked against a pydantic schema, and its node tree (for the lines of later checks);
    `keys` names a few for the error when it is no mapping; `hints` rewrite pydantic's messages by error type."""
    data, root = parse_yaml(read_text(path, limit), path)
    if not isinstance(data, dict) or root is None:
        raise HarnessError(f"must be a mapping of keys ({keys}, ...)", path, 1)
    try:
        return schema.model_validate(data), root
    except ValidationError as e:
        raise _schema_error(e, data, root, path, hints) from None


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


# ---------------------------------------------------------------- JSONL

def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """A JSONL file's objects with their line numbers, under the limits above (a task's files, an import's)."""
    rows = []
    # "\n" only: str.splitlines would also break at U+2028, U+2029 and U+0085, which JSON strings may hold.
    for n, line in enumerate(read_text(path, MAX_JSONL_BYTES).split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode()) > MAX_LINE_BYTES:
            raise HarnessError(f"line is {len(line.encode()) // 1024} KB, over the {MAX_LINE_BYTES // 1024} KB "
                               "limit for one JSONL line; shorten it", path, n)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno})", path, n) from None
        except RecursionError:  # deeper than Python's parser goes, so certainly over the limit
            obj = _TOO_DEEP
        if obj is _TOO_DEEP or _depth(obj) > MAX_DEPTH:
            raise HarnessError(f"JSON nested deeper than {MAX_DEPTH} levels; a row is one flat object", path, n)
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


def _pairs(rows: list[tuple[int, dict[str, Any]]], path: Path,
           known_docs: set[str]) -> tuple[tuple[QAPair, ...], list[int]]:
    pairs = tuple(QAPair(_text_field(obj, "question", path, n), _text_field(obj, "answer", path, n),
                         _doc_field(obj, path, n, known_docs)) for n, obj in rows)
    return pairs, [n for n, _ in rows]


def load_pairs(path: Path, known_docs: set[str]) -> tuple[tuple[QAPair, ...], list[int]]:
    """The pairs and the line each came from (for the leakage check's messages)."""
    return _pairs(read_jsonl(path), path, known_docs)


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


def load_test(path: Path, known_docs: set[str], update_docs: set[str]) -> tuple[list[TestQuestion], list[int]]:
    rows = read_jsonl(path) if path.is_file() else []
    return _test_items(rows, path, known_docs, update_docs)


# ---------------------------------------------------------------- leakage

def _same_question(where: str, line: int, other: str, sim: float) -> str:
    return f"{where}:{line} {'=' if sim >= 1.0 else '≈'} {other}" + ("" if sim >= 1.0 else f" (similarity {sim:.2f})")


def repeated_question(questions: list[str]) -> tuple[int, int, float] | None:
    """The first question that repeats an earlier one word for word or nearly (word-set Jaccard >=
    NEAR_DUPLICATE), as (its index, the earlier one's index, similarity); None when all differ."""
    sets = [word_set(q) for q in questions]
    for i, (j, sim) in sorted(best_matches(sets, sets, NEAR_DUPLICATE, skip_self=True).items()):
        if j < i:  # each pair once, at its second question
            return i, j, sim
    return None


def check_duplicate_questions(task_root: Path, test: list[TestQuestion], test_lines: list[int]) -> None:
    """The same question twice in test.jsonl counts one fact twice and hides a copy-paste slip."""
    found = repeated_question([q.question for q in test])
    if found:
        i, j, sim = found
        near = "" if sim >= 1.0 else f" in other order or nearly (similarity {sim:.2f})"
        raise HarnessError(f"the same question as line {test_lines[j]}{near}; remove or reword one of them",
                           task_root / "test.jsonl", test_lines[i])


def check_leakage(task_root: Path, test: list[TestQuestion], test_lines: list[int],
                  train: list[tuple[str, tuple[QAPair, ...], list[int]]]) -> None:
    """Refuse a task whose test questions also appear, or nearly appear, in any training file.

    `train` holds (file name, pairs, their lines) for every training file. Words are compared whole
    (`normalize_words`), then as sets (Jaccard >= NEAR_DUPLICATE), so reordering or "product's" vs
    "products" is still a leak."""
    where = [f"{name}:{n}" for name, pairs, lines in train for n in lines]
    sets = [word_set(p.question) for _, pairs, _ in train for p in pairs]
    matches = best_matches([word_set(q.question) for q in test], sets, NEAR_DUPLICATE)
    leaks = [(test_lines[i], where[j], sim) for i, (j, sim) in sorted(matches.items())]
    if leaks:
        detail = "; ".join(_same_question("test.jsonl", line, w, sim) for line, w, sim in leaks[:10])
        raise HarnessError(f"{len(leaks)} test question(s) also appear in training data ({detail}). "
                           "A leaked question measures memory, not knowledge: reword or remove them.",
                           task_root / "test.jsonl", leaks[0][0])


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
