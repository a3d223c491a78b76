"""A YAML file from an untrusted folder (task.yaml, a deployment profile) read as plain data and checked
against a schema, every error at its line: no tags, no aliases, nesting at most MAX_DEPTH levels, and a key
given twice is an error, not "last wins"."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError
from harness.task.reading import MAX_DEPTH, read_text

Schema = TypeVar("Schema", bound=BaseModel)


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

