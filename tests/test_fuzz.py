"""Property-based fuzzing of `harness validate` on mutated task folders (task folders are untrusted input).

Each case copies a valid task (the tiny fixture, or a trimmed copy of tasks/coffee), applies one to three
mutations (task.yaml keys, types, nesting and raw text; JSONL fields and raw lines; encodings; sizes; symbolic
links, special files and odd file names; the deployment profile a task names) and validates it in this process.
Whatever the mutation, the folder is either valid or refused with exactly one line that names a file of the
task (with its line when the problem is inside a task.yaml or JSONL file), never with a traceback; nothing is
written anywhere (validate has no results or cache folder: no file is opened for writing, and the case's folder
is unchanged); and nothing outside the task folder is opened (an audit hook sees every open, links resolved).

Derandomized, so CI runs the same 1,000 cases every time."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import harness
from harness.pairs.parse import parse
from harness.cli import main
from harness.config import TaskConfig

FIXTURES = Path(__file__).parent / "fixtures"
COFFEE = Path(__file__).parents[1] / "tasks" / "coffee"
# Each case writes and removes a task folder of a dozen files: on a disk (ext4 with discard here) that metadata
# work cost as much as the validation itself, in memory a fraction of it. Anywhere else, the system's default.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
SECRET = "canary-7f3a-outside-the-task-folder"  # in a file beside the tasks dir: must never reach the output
JSONL = ("train.jsonl", "test.jsonl", "updates/train.jsonl")
ERROR = re.compile(r"harness: error: (?P<where>.+?)(?::(?P<line>\d+))?: (?P<what>.+)")
# Problems with a whole file, not with a line of it: no line number to give.
WHOLE_FILE = ("over the", "test set is empty", "is not a regular file", "cannot open", "is a symbolic link",
              "missing test.jsonl", "missing task.yaml", "document is empty", "unsupported document type",
              "cannot read this folder", "would train on pairs generated")


# ---------------------------------------------------------------- the valid tasks mutated

def _trimmed_coffee(dst: Path) -> Path:
    """tasks/coffee with fewer lines (validating all of it takes half a second): its task.yaml, 12 training
    pairs, 10 test questions (2 fresh), 4 update pairs, and the documents they cite."""
    root = dst / "coffee"
    (root / "updates").mkdir(parents=True)
    shutil.copyfile(COFFEE / "task.yaml", root / "task.yaml")

    def rows(rel: str) -> list[dict]:
        return [json.loads(x) for x in (COFFEE / rel).read_text().splitlines() if x.strip()]

    test = [r for r in rows("test.jsonl") if not r.get("fresh")][:8] + [r for r in rows("test.jsonl") if r.get("fresh")][:2]
    picked = {"train.jsonl": rows("train.jsonl")[:12], "test.jsonl": test,
              "updates/train.jsonl": rows("updates/train.jsonl")[:4]}
    for rel, data in picked.items():
        (root / rel).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data))
    cited = {r["doc"] for data in picked.values() for r in data if r.get("doc")}
    cited |= {str(p.relative_to(COFFEE)) for p in sorted((COFFEE / "docs").glob("*"))[:2]}
    cited |= {str(p.relative_to(COFFEE)) for p in sorted((COFFEE / "updates" / "docs").glob("*"))[:1]}
    for rel in cited:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COFFEE / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("seeds")
    shutil.copytree(FIXTURES / "tiny", base / "tiny")
    found = {"tiny": base / "tiny", "coffee": _trimmed_coffee(base)}
    for name, root in found.items():  # the unmutated seeds are valid, or no case below means anything
        assert main(["validate", "--task", name, "--tasks-dir", str(base)]) == 0, name
    return found


# ---------------------------------------------------------------- strategies

def _key_paths(model: type, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, f in model.model_fields.items():
        out.append(prefix + (name,))
        if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields"):
            out += _key_paths(f.annotation, prefix + (name,))
    return out


KEY_PATHS = _key_paths(TaskConfig) + [("arms", "mine"), ("arms", "mine", "weights"), ("arms", "mine", "context"),
                                      ("arms", "mine", "demonstrations"), ("arms", "rag", "demonstrations")]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["auto", "few_shot", "base", "qa-lora", "retrieved", "chat", "",
                                                     "h100-8b", "../x", "/etc/passwd", "2024", "0x10", "1e3"]))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=6)
key_path = st.sampled_from(KEY_PATHS) | st.lists(st.text(max_size=8), min_size=1, max_size=3).map(tuple)
json_key = st.sampled_from(["id", "question", "answer", "answers", "doc", "fresh", "topic", "harness_example"]) | st.text(max_size=8)
raw_line = (st.text(max_size=60) | st.binary(max_size=40)
            | st.sampled_from(['{"id": 1}', "[1, 2]", "null", "3", '"s"', "{", '{"id": "x", "question": "q\u2028?", '
                                                                                   '"answer": "a"}',
                               '{"question": "Who?", "answer": "x", "question": "What?"}', "\ufeff{}", "\x00",
                               '{"id": "d", "question": "q", "answer": "a", "doc": "../../etc/passwd"}',
                               '{"id": "d", "question": "q", "answer": "a", "doc": "/etc/passwd"}']))
yaml_raw = st.sampled_from([
    "name: second\n", "!!python/object/apply:os.system ['touch {root}/pwned']\n",
    "a: &x [1]\nb: *x\n", "[" * 150 + "]" * 150 + "\n", "seed: !!binary aGVsbG8=\n", "? [a, b]\n: 1\n", "\t- x\n",
    "prompt: {system: 1}\n", "arms: {x: {weights: raft-lora, context: none, demonstrations: auto}}\n",
    "name: 'two\nlines'\n", "%YAML 1.1\n---\nname: a\n---\nname: b\n", "deployment: prof.yaml\n", "...\n",
]) | st.text(max_size=40)
# Control characters included: an error that names such a file must still be one escaped line.
file_name = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                    max_size=12).filter(
    lambda s: "/" not in s and s not in (".", ".."))
suffix = st.sampled_from([".md", ".txt", ".MD", ".pdf", "", ".jsonl", ".yaml"])
# Links point at the case's own temporary folder ("secret" files beside the tasks dir), never at system files.
link_target = st.sampled_from(["secret", "../secret", "../../../secret.md", "docs", "nowhere", "task.yaml", "secret_dir",
                               "."])
where = st.sampled_from(["", "docs", "updates", "updates/docs", "docs/sub"])

ops = st.one_of(
    st.tuples(st.just("yaml_set"), key_path, values),
    st.tuples(st.just("yaml_del"), key_path),
    st.tuples(st.just("yaml_raw"), yaml_raw, st.integers(0, 40)),
    st.tuples(st.just("jsonl_set"), st.sampled_from(JSONL), st.integers(0, 12), json_key, values),
    st.tuples(st.just("jsonl_del"), st.sampled_from(JSONL), st.integers(0, 12), json_key),
    st.tuples(st.just("jsonl_raw"), st.sampled_from(JSONL), st.integers(0, 12), raw_line),
    st.tuples(st.just("jsonl_dup"), st.sampled_from(JSONL), st.integers(0, 12), st.sampled_from(JSONL)),
    st.tuples(st.just("deep"), st.sampled_from(JSONL + ("task.yaml",)), st.integers(50, 3000)),
    st.tuples(st.just("long_line"), st.sampled_from(JSONL), st.integers(60, 70)),
    st.tuples(st.just("sparse"), st.sampled_from(JSONL + ("task.yaml", "docs/big.md")), st.sampled_from([2, 21, 201])),
    st.tuples(st.just("encode"), st.sampled_from(JSONL + ("task.yaml", "docs/capital.md")),
              st.sampled_from(["utf-16", "latin-1", "bom", "nul", "bad_byte", "surrogate", "crlf", "cr"])),
    st.tuples(st.just("symlink"), where, file_name | st.sampled_from(["test.jsonl", "task.yaml", "docs", "a.md"]),
              link_target),
    st.tuples(st.just("fifo"), where, st.sampled_from(["p.md", "test.jsonl", "train.jsonl"])),
    st.tuples(st.just("add_file"), where, file_name, suffix, st.binary(max_size=30) | st.text(max_size=30)),
    st.tuples(st.just("mkdir"), st.sampled_from(JSONL + ("task.yaml", "docs/x.md", "updates/docs/y.md"))),
    st.tuples(st.just("remove"), st.sampled_from(JSONL + ("task.yaml", "docs", "updates", "updates/docs"))),
    st.tuples(st.just("profile"), st.sampled_from(["prof.yaml", "../secret", "/etc/passwd", "docs", "sub/../prof.yaml"]),
              st.booleans(), values),
)


# ---------------------------------------------------------------- applying a mutation

def _plain(path: Path, root: Path) -> Path:
    """`path`, checked to be safe for the mutation itself to read, write or remove: no link on the way from the
    task folder to it (it could lead out of the case's temporary folder), and no pipe at its end (it would block).
    Otherwise OSError, and the mutation is skipped."""
    rel = path.relative_to(root)
    for i in range(len(rel.parts)):
        part = root.joinpath(*rel.parts[: i + 1])
        if part.is_symlink():
            raise OSError(f"{part} is a link")
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise OSError(f"{path} is a special file")
    return path


def _rows(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="surrogateescape").split("\n") if path.is_file() else []


def _write_rows(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows), encoding="utf-8", errors="surrogateescape")


def _set(data: object, keys: tuple, value: object, delete: bool = False) -> object:
    if not keys:
        return value
    if not isinstance(data, dict):
        data = {}
    if delete and len(keys) == 1:
        data.pop(keys[0], None)
    else:
        data[keys[0]] = _set(data.get(keys[0]), keys[1:], value, delete)
    return data


def _yaml(path: Path, keys: tuple, value: object = None, delete: bool = False) -> None:
    try:
        text = path.read_text()
        # A deeply nested task.yaml (an earlier mutation) takes PyYAML seconds to load: start from nothing instead.
        data = {} if "[[[" in text else yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        data = {}
    path.write_text(yaml.safe_dump(_set(data, keys, value, delete), allow_unicode=True))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _nested(kind: str, depth: int) -> str:
    if kind == "task.yaml":
        return "name: deep\nprompt: " + "[" * depth + "]" * depth + "\n"
    return '{"id": "deep", "question": "q?", "answer": ' + "[" * depth + "]" * depth + "}"


def _sparse(path: Path, mb: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.truncate(mb * 2**20)  # a hole: no disk, no time, but the size a reader sees


def _encode(path: Path, how: str) -> None:
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    data = {"utf-16": lambda: text.encode("utf-16"), "latin-1": lambda: (text + "café").encode("latin-1", "replace"),
            "bom": lambda: b"\xef\xbb\xbf" + text.encode(), "nul": lambda: text.encode().replace(b"\n", b"\n\x00", 1),
            "bad_byte": lambda: text.encode().replace(b"\n", b"\n\xff\xfe", 1),
            "surrogate": lambda: text.replace('"', '"\ud800', 1).encode("utf-8", "surrogatepass"),
            "crlf": lambda: text.replace("\n", "\r\n").encode(), "cr": lambda: text.replace("\n", "\r").encode()}[how]()
    path.write_bytes(data)


def _jsonl_set(path: Path, i: int, key: str, value: object, delete: bool) -> None:
    rows = _rows(path)
    if not rows or i >= len(rows):
        rows.append("{}")
        i = len(rows) - 1
    try:
        obj = json.loads(rows[i])
    except ValueError:
        obj = {}
    if not isinstance(obj, dict):
        obj = {}
    obj.pop(key, None) if delete else obj.__setitem__(key, value)
    rows[i] = json.dumps(obj, ensure_ascii=False)
    _write_rows(path, rows)


def apply(root: Path, op: tuple) -> None:
    """One mutation. Every path it touches goes through `_plain` (OSError: the mutation is skipped)."""
    kind, *a = op
    top = root.parent.parent

    def at(*parts: str) -> Path:
        return _plain(root.joinpath(*parts), root)

    if kind in ("yaml_set", "yaml_del"):
        _yaml(at("task.yaml"), a[0], a[1] if kind == "yaml_set" else None, kind == "yaml_del")
    elif kind == "yaml_raw":
        rows = _rows(at("task.yaml"))
        rows.insert(min(a[1], len(rows)), a[0].replace("{root}", str(top)))
        _write_rows(at("task.yaml"), rows)
    elif kind in ("jsonl_set", "jsonl_del"):
        _jsonl_set(at(a[0]), a[1], a[2], a[3] if kind == "jsonl_set" else None, kind == "jsonl_del")
    elif kind == "jsonl_raw":
        rows = _rows(at(a[0]))
        line = a[2].decode("utf-8", "surrogateescape") if isinstance(a[2], bytes) else a[2]
        rows[min(a[1], len(rows)):min(a[1], len(rows)) + 1] = [line]
        _write_rows(at(a[0]), rows)
    elif kind == "jsonl_dup":
        src, dst = _rows(at(a[0])), _rows(at(a[2]))
        if src:
            _write_rows(at(a[2]), dst + [src[min(a[1], len(src) - 1)]])
    elif kind == "deep":
        rows = [] if a[0] == "task.yaml" else _rows(at(a[0]))
        _write_rows(at(a[0]), rows + [_nested(a[0], a[1])])
    elif kind == "long_line":
        filler = "x" * (a[1] * 1024)
        _write_rows(at(a[0]), _rows(at(a[0])) + [json.dumps({"id": "L", "question": filler, "answer": "a"})])
    elif kind == "sparse":
        _sparse(at(a[0]), a[1])
    elif kind == "encode":
        _encode(at(a[0]), a[1])
    elif kind == "symlink":
        at(a[0]).mkdir(parents=True, exist_ok=True)
        _remove(at(a[0], a[1]))
        target = {"secret": str(top / "secret.md"), "secret_dir": str(top / "secret_dir")}.get(a[2], a[2])
        at(a[0], a[1]).symlink_to(target)
    elif kind == "fifo":
        at(a[0]).mkdir(parents=True, exist_ok=True)
        _remove(at(a[0], a[1]))
        os.mkfifo(at(a[0], a[1]))
    elif kind == "add_file":
        at(a[0]).mkdir(parents=True, exist_ok=True)
        path = at(a[0], a[1] + a[2])
        _remove(path)
        path.write_bytes(a[3] if isinstance(a[3], bytes) else a[3].encode("utf-8", "surrogatepass"))
    elif kind == "mkdir":
        _remove(at(a[0]))
        at(a[0]).mkdir(parents=True)
        at(a[0], "inner.md").write_text("text")
    elif kind == "remove":
        _remove(at(a[0]))
    elif kind == "profile":
        name, as_link, content = a
        _yaml(at("task.yaml"), ("deployment",), name)
        if name == "prof.yaml":
            _remove(at(name))
            if as_link:
                at(name).symlink_to(top / "secret.md")
            else:
                at(name).write_text(yaml.safe_dump(content, allow_unicode=True))


# ---------------------------------------------------------------- the invariants

def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under `top` with its kind, size and modification time: what a write would change."""
    out = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(folder, name)
            st_ = os.lstat(p)
            out[os.path.relpath(p, top)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return out


def edited(ops_: list[tuple]) -> set[str]:
    """The task.yaml and JSONL files whose content a mutation changed (line by line)."""
    out = set()
    for op in ops_:
        if op[0].startswith("yaml") or op[0] == "profile":
            out.add("task.yaml")
        elif op[0] == "jsonl_dup":
            out.add(op[3])
        elif op[0] in ("jsonl_set", "jsonl_del", "jsonl_raw", "deep", "long_line", "encode"):
            out.add(op[1])
    return out


def check_outcome(code: int, out: str, err: str, root: Path, ops_: list[tuple]) -> None:
    assert "Traceback" not in out + err, err
    assert SECRET not in out + err, "a file outside the task folder was read into the output"
    assert "root:x:0:0" not in out + err, "/etc/passwd was read into the output"
    assert code in (0, 2), f"exit {code} (an unexpected exception): {err}"
    if code == 0:
        assert "error" not in err, err
        return
    line = err.removesuffix("\n")
    # \n, \r, a vertical tab or an escape sequence would break the line (or worse) on a terminal or in a log
    assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", line), f"a refusal must be one plain line: {err!r}"
    m = ERROR.fullmatch(line)
    assert m, f"not a 'harness: error: FILE[:LINE]: message' line: {line!r}"
    named = m["where"]
    assert named.startswith(str(root)), f"the error names no file of the task folder: {line!r}"
    rel = os.path.relpath(named, root)
    if rel in edited(ops_) and os.path.isfile(named) and not any(w in m["what"] for w in WHOLE_FILE):
        assert m["line"], f"a problem inside {rel} must give its line: {line!r}"


# Every file validate opens (or tries to), links resolved, and whether for writing: an audit hook sees what no
# output would show.
_opened: list[tuple[str, bool]] | None = None
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        writes = bool(flags & WRITE_FLAGS) if isinstance(flags, int) else any(c in str(mode) for c in "wax+")
        _opened.append((os.path.realpath(os.fsdecode(path)), writes))


sys.addaudithook(_audit)  # for this process's life; it records only while `validate` runs
# validate parses a task's sentences when its pairs will be built. Loading the parser the first time in a process
# compiles spaCy's bytecode into a fresh venv and reads /proc/self/maps: the interpreter's and the library's own
# start-up, not anything a task folder asks for. It happens here, before any audited call.
parse(["A warm-up sentence about coffee."])
# Where validate may read beside the task folder: the interpreter, the installed packages, the harness's built-ins.
# The parser pair building loads (spaCy) reads every installed package's entry points, the editable harness's
# own metadata beside the package among them, and asks the editable install's path hook by a made-up name.
ALLOWED = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                       Path(harness.__file__).parent, "/dev/null",
                                                       Path(harness.__file__).parent.parent / "harness.egg-info")})
EDITABLE_HOOK = "__editable__.harness-"


def validate(tasks: Path, name: str) -> tuple[int, str, str]:
    global _opened
    out, err = io.StringIO(), io.StringIO()
    _opened = []
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", "--task", name, "--tasks-dir", str(tasks)])
        task = os.path.realpath(tasks / name) + os.sep
        outside = [p for p, _ in _opened if not (p + os.sep).startswith((task, *ALLOWED))
                   and not os.path.basename(p).startswith(EDITABLE_HOOK)]
        written = [p for p, writes in _opened if writes and p != "/dev/null"]
    finally:
        _opened = None
    assert not outside, f"validate opened files outside the task folder: {outside}"
    assert not written, f"validate opened files for writing: {written}"
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(["tiny", "tiny", "tiny", "coffee"]), mutations=st.lists(ops, min_size=1, max_size=3))
# What fuzzing found once is tried every time (the first four were fixed in harness/task/reading.py and yaml_file.py).
@example(seed="tiny", mutations=[("encode", "train.jsonl", "nul")])  # a NUL byte: refused without its line
@example(seed="tiny", mutations=[("yaml_raw", "\x1f", 0)])  # a control character in task.yaml: no line
@example(seed="tiny", mutations=[("profile", "prof.yaml", False, {"\x1f": None})])  # a raw control key in the error
@example(seed="tiny", mutations=[("yaml_raw", "? [a, b]\n: 1\n", 0)])  # a list as a key: TypeError, exit 1
def test_a_mutated_task_is_valid_or_refused_in_one_line(seeds, seed, mutations):
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=SCRATCH) as top:
        top = Path(top)
        (top / "secret.md").write_text(f"{SECRET}\n")
        (top / "secret_dir").mkdir()
        (top / "secret_dir" / "x.md").write_text(SECRET)
        (top / "cwd").mkdir()
        root = top / "tasks" / seed
        shutil.copytree(seeds[seed], root, symlinks=True)
        for op in mutations:
            with contextlib.suppress(OSError, ValueError):  # e.g. a file to edit was made a folder: skip the edit
                apply(root, op)
        before = snapshot(top)
        here = os.getcwd()
        os.chdir(top / "cwd")  # a write to a relative path would land here
        try:
            code, out, err = validate(top / "tasks", seed)
        finally:
            os.chdir(here)
        assert snapshot(top) == before, "validate wrote or changed a file"
        assert not (top / "pwned").exists()
        check_outcome(code, out, err, root.resolve(), mutations)


@pytest.mark.parametrize("name", ["\r", "x\x1b[2Jy"])
def test_a_control_character_in_a_file_name_stays_on_one_line(seeds, tmp_path, name):
    shutil.copytree(seeds["tiny"], tmp_path / "tiny")
    (tmp_path / "tiny" / "docs" / name).symlink_to("capital.md")
    code, out, err = validate(tmp_path, "tiny")
    check_outcome(code, out, err, (tmp_path / "tiny").resolve(), [])
