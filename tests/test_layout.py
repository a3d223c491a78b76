"""The package's shape (issue 27): subpackages in the order a run flows through them, imports that only go down
that order, no import cycle, no private name used outside its module, and no long functions.

Read from the source with `ast`, deferred imports (inside functions) included: a cycle hidden in a function
is still a cycle a reader has to hold in their head."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "harness"
# Lower first. A module may import its own layer and the layers below it, never one above.
LAYERS = ["", "task", "retrieval", "inference", "pairs", "arms", "run", "report", "cli"]
LONG = 60
LONG_ALLOWED = {("harness.cli_args", "build_parser")}  # one argparse call per option: long, and flat


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    # The package's face (`harness.run`, `harness.load_run`) and the API sit with the command line, on top.
    if module in ("harness", "harness.cli", "harness.cli_args", "harness.__main__", "harness.api"):
        return LAYERS.index("cli")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else 0


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module, known: set[str]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every harness import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            taken = []
            for a in node.names:  # `from harness.arms import catalog` imports a module, not a name
                if f"{node.module}.{a.name}" in known:
                    out.append((f"{node.module}.{a.name}", [], node.lineno))
                else:
                    taken.append(a.name)
            if taken:
                out.append((node.module, taken, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("harness.")]
    return out


def graph() -> dict[str, set[str]]:
    trees = modules()
    return {m: {t for t, _, _ in imports(tree, set(trees)) if t in trees and t != m and t != "harness"}
            for m, tree in trees.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():  # so that the next test's empty list means something
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_imports_only_go_down_the_flow():
    trees = modules()
    upward = [f"{m}:{line} imports {t}" for m, tree in trees.items() for t, _, line in imports(tree, set(trees))
              if layer(t) > layer(m)]
    assert upward == []


def test_no_private_name_crosses_a_module():
    trees = modules()
    crossing = [f"{m}:{line} takes {n} from {t}" for m, tree in trees.items()
                for t, names, line in imports(tree, set(trees)) for n in names if n.startswith("_")]
    # `module._name` on an imported harness module is the same crossing, spelled differently.
    for m, tree in trees.items():
        aliases = {a.asname or a.name.split(".")[-1]: f"{node.module}.{a.name}" for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness")
                   for a in node.names if f"{node.module}.{a.name}" in trees}
        crossing += [f"{m}:{n.lineno} uses {aliases[n.value.id]}.{n.attr}" for n in ast.walk(tree)
                     if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
                     and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert crossing == []


def test_no_function_is_over_60_lines():
    long = [f"{m}.{n.name}: {n.end_lineno - n.lineno + 1} lines" for m, tree in modules().items()
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > LONG and (m, n.name) not in LONG_ALLOWED]
    assert long == []


@pytest.mark.parametrize("package", LAYERS[1:-1])
def test_each_subpackage_says_what_it_holds(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 5


CLI_LINES = 250  # commands that parse (harness/cli_args.py) and call the library
TALKERS = {"harness.cli"}  # the one module that prints; the library logs (harness.api.show_progress shows it)


def test_only_the_command_line_prints():
    printing = [f"{m}:{n.lineno}" for m, tree in modules().items() if m not in TALKERS for n in ast.walk(tree)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert printing == [], "library code logs through logging.getLogger(__name__) instead of printing"


def test_the_command_line_stays_thin():
    lines = len((PACKAGE / "cli.py").read_text().splitlines())
    assert lines <= CLI_LINES, f"harness/cli.py has {lines} lines: move logic into harness/api.py or below"
    runs = [n.name for n in ast.walk(ast.parse((PACKAGE / "cli.py").read_text()))
            if isinstance(n, ast.FunctionDef) and n.name.startswith("_run")]
    assert runs == []


RUN_FILES = {"run.json", "costs.json", "predictions.jsonl", "resume_key"}


def _names_run_files(tree: ast.Module) -> bool:
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return any(isinstance(n, ast.Constant) and n.value in RUN_FILES and id(n) not in docs for n in ast.walk(tree))


def test_one_module_writes_the_run_folder_and_one_reads_it():
    """harness/run/folder.py starts, saves and finishes a run folder; harness/run/files.py reads it back,
    checked. No other module names its data files, and neither of the two does the other's job."""
    trees = modules()
    naming = sorted(m for m, tree in trees.items() if _names_run_files(tree))
    assert naming == ["harness.run.files", "harness.run.folder"]
    reader = ast.dump(trees["harness.run.files"])
    assert "write_text" not in reader and "'w'" not in reader
    writer = {t for t, _, _ in imports(trees["harness.run.folder"], set(trees))}
    assert "harness.run.files" not in writer
