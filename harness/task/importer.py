"""`harness new-task NAME --docs DIR --questions FILE`: a complete task folder built from what a team has.

Documents are converted to Markdown once (harness/task/convert.py), their source kept in provenance.json; the
questions sheet becomes test.jsonl (harness/task/questions.py), an optional sheet of hand-written pairs
train.jsonl, and task.yaml says where training pairs come from (`generated` without them).

Safety, as for task folders: inputs are untrusted. A link in an input folder that points outside it is refused;
a file over MAX_SOURCE_BYTES, an encrypted or text-less PDF, a crafted Office file, or a bad sheet stops the
import with one line. Files of other types are skipped and listed. Everything is built in a hidden folder beside
the task and checked as `harness validate` checks it; only then is it renamed into place, so a failed import
leaves nothing behind and a re-import never leaves half of a task.

Re-importing: the import's key is a hash of every input's content, the options and the converters' versions.
The same key as the folder's last import changes nothing; otherwise documents whose content is unchanged are
copied from the previous conversion instead of converted again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError
from harness.task.convert import KINDS, SUFFIXES, TEXT_SUFFIXES, convert
from harness.task.converted import Converted
from harness.task.folder import MAX_DOC_BYTES, load_task
from harness.task.leakage import NEAR_DUPLICATE
from harness.task.provenance import PROVENANCE_FILE
from harness.task.questions import Columns, Row, check_repeats, read_rows
from harness.task.reading import MB, read_bytes
from harness.task.registry import task_path
from harness.task.scaffold import check_root, task_yaml
from harness.text import best_matches, word_set

MAX_SOURCE_BYTES = 50 * MB  # one input file; its converted text must also fit MAX_DOC_BYTES
FORMAT = 1  # of provenance.json and of the conversion: a change here re-converts every document
LIBRARIES = ("pypdf", "python-docx", "python-pptx", "lxml", "openpyxl")


@dataclass(frozen=True)
class Inputs:
    docs: Path
    questions: Path
    updates: Path | None = None
    train: Path | None = None


@dataclass
class Made:
    """What an import made, for its summary."""

    path: Path
    documents: dict[str, dict] = field(default_factory=dict)  # task path -> provenance entry
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input file, why)
    questions: int = 0
    fresh: int = 0
    train: int = 0
    reused: int = 0  # documents copied from the previous import, unchanged
    unchanged: bool = False  # the whole import matched the previous one: nothing written
    kept_yaml: bool = False  # the previous task.yaml was edited by hand, so it was kept

    def lines(self, train_name: str | None) -> list[str]:
        """The import's summary: each document with its source, each skipped file with why, then the totals."""
        if self.unchanged:
            return [f"{self.path}: unchanged since its last import (every input has the same content hash); "
                    "nothing written"]
        out = []
        for target, e in self.documents.items():
            pages = f"{e['pages']} {'slides' if e['kind'] == 'pptx' else 'pages'}, " if e["pages"] else ""
            out.append(f"  {target:<40} <- {e['source']} ({e['kind']}, {pages}{e['words']:,} words)")
        out += [f"  skipped {rel}: {why}" for rel, why in self.skipped]
        docs = self.documents.values()
        out.append(f"made {self.path}: {len(self.documents)} documents ({sum(e['pages'] for e in docs)} pages or "
                   f"slides, {sum(e['words'] for e in docs):,} words"
                   + (f"; {self.reused} unchanged, reused from the last import" if self.reused else "")
                   + f"), {self.questions} questions ({self.fresh} fresh), training pairs: "
                   + (f"{self.train} from {train_name}" if self.train else "generated from the documents at run time")
                   + (f"; {len(self.skipped)} file(s) skipped" if self.skipped else ""))
        if self.kept_yaml:
            out.append(f"kept {self.path / 'task.yaml'}: it was edited since the last import")
        return out


# ---------------------------------------------------------------- input files

def _refuse_outside(link: Path, target: Path, base: Path) -> None:
    if not target.is_relative_to(base):
        raise HarnessError(f"is a symbolic link to {target}, outside {base}: links out of the input folder are "
                           "refused (one could pull any file on this machine into the task); copy the file in "
                           "instead", link)


def scan(folder: Path, exclude: set[Path]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(input name, file to read) for each document under `folder`, and (input name, why) for each skipped file.
    Links are followed only to files inside `folder`; `exclude` (the tasks folder, the questions and training
    sheets when they sit among the documents) is passed over in silence."""
    if not folder.is_dir():
        raise HarnessError("is not a folder; give the folder that holds the documents", folder)
    base = folder.resolve()
    files, skipped = [], []
    for top, dirs, names in os.walk(folder, followlinks=False):
        here = Path(top)
        for d in list(dirs):
            if (here / d).is_symlink():
                _refuse_outside(here / d, (here / d).resolve(), base)
                skipped.append(((here / d).relative_to(folder).as_posix(), "a link to a folder inside the input "
                                "folder: its files are imported from where they are"))
            if d.startswith(".") or (here / d).is_symlink() or (here / d).resolve() in exclude:
                dirs.remove(d)
        dirs.sort()
        for name in sorted(names):
            p = here / name
            rel = p.relative_to(folder).as_posix()
            real = p.resolve() if p.is_symlink() else p
            if p.is_symlink():
                _refuse_outside(p, real, base)
            if real.resolve() in exclude:
                continue
            if name.startswith((".", "~$")):
                skipped.append((rel, "a hidden or lock file"))
            elif not real.is_file():
                skipped.append((rel, "not a regular file (a broken link, a pipe or a device)"))
            elif p.suffix.lower() not in SUFFIXES:
                skipped.append((rel, f"{p.suffix or 'no extension'} is not a document type; save it as {KINDS}"))
            else:
                files.append((rel, real))
    return files, skipped


def _read(path: Path) -> bytes:
    return read_bytes(path, MAX_SOURCE_BYTES)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def converter_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"harness-import": str(FORMAT)}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def _targets(files: list[tuple[str, Path]], folder: str) -> dict[str, str]:
    """Input name -> task path: "guide/manual.pdf" -> "docs/guide/manual.md"; Markdown and text keep their name.
    Two inputs that would share a name ("manual.pdf", "manual.html") get their type in it: manual-pdf.md."""
    def plain(rel: str) -> str:
        p = PurePosixPath(rel)
        return rel if p.suffix.lower() in TEXT_SUFFIXES else str(p.with_suffix(".md"))
    names = [plain(rel) for rel, _ in files]
    out = {}
    for (rel, _), name in zip(files, names):
        p = PurePosixPath(rel)
        clash = names.count(name) > 1 or name.lower() in {n.lower() for n in names if n != name}
        out[rel] = f"{folder}/" + (str(p.with_name(f"{p.stem}-{p.suffix.lstrip('.').lower()}.md")) if clash else name)
    return out


# ---------------------------------------------------------------- documents

def _documents(files: list[tuple[str, Path]], folder: str, previous: dict, task: Path | None,
               made: Made) -> dict[str, str]:
    """Each input converted (or its previous conversion reused), into made.documents; returns task path -> text."""
    texts = {}
    versions, targets = converter_versions(), _targets(files, folder)
    for rel, real in files:
        data = _read(real)
        target, sha = targets[rel], _sha(data)
        old = previous.get("documents", {}).get(target, {})
        reuse = (task is not None and old.get("sha256") == sha and old.get("source") == rel
                 and previous.get("converter") == versions and (task / target).is_file())
        if reuse:
            text = (task / target).read_text(encoding="utf-8")
            out = Converted(text, old.get("kind", ""), int(old.get("pages", 0)))
            made.reused += 1
        else:
            out = convert(real, data)
        size = len(out.text.encode())
        if size > MAX_DOC_BYTES:
            raise HarnessError(f"converts to {size // MB} MB of text, over the {MAX_DOC_BYTES // MB} MB limit for one "
                               "document; split it into smaller files", real)
        texts[target] = out.text
        made.documents[target] = {"source": rel, "sha256": sha, "kind": out.kind, "pages": out.pages,
                                  "words": out.words}
    return texts


# ---------------------------------------------------------------- questions and pairs

def _doc_of(row: Row, made: Made, folder: str, path: Path) -> str | None:
    """The task path of the document a row names by its input file name ("manual.pdf", or a unique base name)."""
    if row.doc is None:
        return None
    mine = {t: e["source"] for t, e in made.documents.items() if t.startswith(folder + "/")}
    hits = [t for t, src in mine.items() if src == row.doc] or \
           [t for t, src in mine.items() if PurePosixPath(src).name == row.doc]
    if len(hits) != 1:
        where = "--updates" if folder.startswith("updates") else "--docs"
        shown = ", ".join(sorted(mine.values())[:5]) or "none"
        raise HarnessError(f"names document {row.doc!r}, which is {'ambiguous' if hits else 'not'} among the "
                           f"imported {where} files ({shown}); give its file name as in that folder", path, row.line)
    return hits[0]


def _test_rows(rows: list[Row], made: Made, path: Path, has_updates: bool) -> list[dict]:
    out, ids = [], {}
    for i, r in enumerate(rows, start=1):
        if r.fresh and not has_updates:
            raise HarnessError("is marked fresh, but no --updates folder was given: a fresh question is answered "
                               "only by documents that arrive later; give them with --updates DIR", path, r.line)
        qid = r.id or f"q{i:03d}"
        if qid in ids:
            raise HarnessError(f"id {qid!r} is also the id of row {ids[qid]}; ids must be unique", path, r.line)
        ids[qid] = r.line
        row = {"id": qid, "question": r.question, "answers": list(r.answers)}
        doc = _doc_of(r, made, "updates/docs" if r.fresh else "docs", path)
        row.update({"doc": doc} if doc else {}, **({"fresh": True} if r.fresh else {}),
                   **({"topic": r.topic} if r.topic else {}))
        out.append(row)
    return out


def _check_leak(test: list[Row], train: list[Row], test_path: Path, train_path: Path) -> None:
    """A test question that a training pair also asks measures memory, not knowledge (the task rule)."""
    hits = best_matches([word_set(r.question) for r in test], [word_set(r.question) for r in train], NEAR_DUPLICATE)
    if hits:
        i, (j, sim) = min(hits.items())
        raise HarnessError(f"{'the same question' if sim >= 1.0 else f'nearly the same question ({sim:.2f})'} as "
                           f"{train_path.name} row {train[j].line}: a test question a training pair teaches "
                           "measures memory, not knowledge; remove or reword one of them", test_path, test[i].line)


def _pairs(inputs: Inputs, cols: Columns, test: list[Row], made: Made) -> list[dict]:
    if inputs.train is None:
        return []
    own = Columns(question=cols.question, answer=cols.answer, doc=cols.doc)  # one answer each; no fresh, no ids
    rows = read_rows(inputs.train, _read(inputs.train), own)
    _check_leak(test, rows, inputs.questions, inputs.train)
    made.train = len(rows)
    return [{"question": r.question, "answer": r.answers[0],
             **({"doc": d} if (d := _doc_of(r, made, "docs", inputs.train)) else {})} for r in rows]


# ---------------------------------------------------------------- the folder

def _previous(path: Path) -> dict:
    """The last import's provenance.json; {} for a new task. A folder not made by an import is not replaced."""
    if not path.exists():
        return {}
    try:
        previous = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8"))
        if not isinstance(previous, dict) or "import_key" not in previous:
            raise ValueError
        return previous
    except (OSError, ValueError):
        raise HarnessError("already exists and was not made by `harness new-task --docs` (no provenance.json from "
                           "an import): pick another name, or move that folder away", path) from None


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _write(tmp: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():  # task.yaml last: a folder without one is no task to `list`
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text, encoding="utf-8")


def _install(tmp: Path, path: Path) -> None:
    """The built folder renamed into place; a previous import's folder swapped out only once that succeeds."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    os.replace(path, old / path.name)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old / path.name, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _checked(tmp: Path, path: Path) -> None:
    """The built folder loaded as `harness validate` loads it; a problem is reported at its final path."""
    try:
        load_task(tmp)
    except HarnessError as e:
        where = e.path.replace(str(tmp), str(path)) if e.path else None
        raise HarnessError(e.message, where, e.line) from None


def _key(inputs: Inputs, cols: Columns, description: str, hashes: dict[str, str]) -> str:
    blob = json.dumps([FORMAT, converter_versions(), asdict(cols), description, sorted(hashes.items()),
                       inputs.questions.name, inputs.train.name if inputs.train else None], sort_keys=True)
    return _sha(blob.encode())


def import_task(name: str, root: Path, inputs: Inputs, cols: Columns, description: str | None = None) -> Made:
    """Builds (or rebuilds) ROOT/NAME from the inputs; see the module's docstring."""
    check_root(root)
    path = task_path(name, root)
    previous = _previous(path)
    made = Made(path)
    exclude = {root.resolve()} | {p.resolve() for p in (inputs.questions, inputs.train) if p is not None}
    docs, skipped = scan(inputs.docs, exclude)
    updates, skipped_upd = scan(inputs.updates, exclude) if inputs.updates else ([], [])
    made.skipped = skipped + [(f"updates: {rel}", why) for rel, why in skipped_upd]
    if not docs:
        raise HarnessError(f"holds no document to import ({KINDS})", inputs.docs)
    description = description or f"Imported from {len(docs) + len(updates)} documents and {inputs.questions.name}."
    hashes = {f"docs:{rel}": _sha(_read(p)) for rel, p in docs} | {f"updates:{rel}": _sha(_read(p))
                                                                   for rel, p in updates}
    for label, p in (("questions", inputs.questions), ("train", inputs.train)):
        if p is not None:
            hashes[label] = _sha(_read(p))
    key = _key(inputs, cols, description, hashes)
    # The same inputs, and every converted file still there (one deleted by hand is made again).
    if previous.get("import_key") == key and all((path / t).is_file() for t in previous.get("documents", {})):
        made.unchanged = True
        made.documents = previous.get("documents", {})
        return made
    task = path if previous else None
    texts = _documents(docs, "docs", previous, task, made) | _documents(updates, "updates/docs", previous, task, made)
    rows = read_rows(inputs.questions, _read(inputs.questions), cols)
    check_repeats(rows, inputs.questions)
    test = _test_rows(rows, made, inputs.questions, bool(updates))
    pairs = _pairs(inputs, cols, rows, made)
    made.questions, made.fresh = len(test), sum(r.get("fresh", False) for r in test)
    yaml_text = task_yaml(name, "written" if pairs else "generated", description)
    written = _sha(yaml_text.encode())  # what this import writes; a later one keeps task.yaml if it differs
    old_yaml = path / "task.yaml"
    if previous and old_yaml.is_file() and _sha(old_yaml.read_bytes()) != previous.get("task_yaml_sha256"):
        yaml_text, written, made.kept_yaml = old_yaml.read_text(encoding="utf-8"), previous["task_yaml_sha256"], True
    provenance = {"format": FORMAT, "import_key": key, "converter": converter_versions(),
                  "documents": made.documents,
                  "questions": {"source": inputs.questions.name, "sha256": hashes["questions"], "rows": len(test)},
                  "train": {"source": inputs.train.name, "sha256": hashes["train"], "rows": len(pairs)}
                  if inputs.train else None,
                  "skipped": [{"source": s, "reason": why} for s, why in made.skipped],
                  "task_yaml_sha256": written}
    files = {**texts, "test.jsonl": _jsonl(test), **({"train.jsonl": _jsonl(pairs)} if pairs else {}),
             PROVENANCE_FILE: json.dumps(provenance, indent=1, ensure_ascii=False) + "\n", "task.yaml": yaml_text}
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.import.", dir=root))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private (0700); the task is an ordinary folder
    try:
        _write(tmp, files)
        _checked(tmp, path)
        _install(tmp, path)
    except OSError as e:
        raise HarnessError(f"cannot write the task folder ({e.strerror}); check that --tasks-dir is a writable "
                           "folder", e.filename or root) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already once installed
    return made
