"""Where an imported document came from: the source file a converted docs/*.md was made from, and the page or
slide each part of it was on, so a retrieved passage can be cited as "manual.pdf p. 12".

Two pieces, both written by `harness new-task --docs` (harness/task/importer.py):
- page markers inside the converted Markdown, each alone on its line: `<!-- page 12 -->`, `<!-- slide 3 -->`.
  A Markdown comment, so the text still reads as Markdown; the pair writer's sentence splitter already skips
  lines that start with `<!--`, and chunking drops the markers from the passages it makes.
- provenance.json at the task's root: {"documents": {"docs/manual.md": {"source": "manual.pdf", ...}}, ...}.
  Only a document listed there is cited by its source; any other document, even one with such comments in it,
  is read exactly as before.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from harness.errors import HarnessError

PROVENANCE_FILE = "provenance.json"
MARK_KINDS = {"page": "p.", "slide": "slide"}  # marker word -> how a citation names it
_MARKER = re.compile(r"^<!-- (page|slide) ([0-9]{1,6}) -->$", re.MULTILINE)


def marker(kind: str, number: int) -> str:
    """The line the importer writes where page or slide `number` starts."""
    return f"<!-- {kind} {number} -->"


def without_markers(text: str) -> str:
    """The text with its page and slide marker lines removed (what a reader of the document sees)."""
    return _MARKER.sub("", text)


def cite(source: str, kind: str | None = None, number: int | None = None) -> str:
    """"manual.pdf p. 12", "deck.pptx slide 3", or the source alone where no marker came before."""
    return f"{source} {MARK_KINDS[kind]} {number}" if kind and number is not None else source


def split_markers(tokens: list[str]) -> tuple[list[str], list[tuple[int, str, int]]]:
    """Whitespace tokens with the marker sequences (`<!--`, `page`, `12`, `-->`) taken out, and each marker as
    (index of the first token after it in the kept list, kind, number)."""
    kept: list[str] = []
    marks: list[tuple[int, str, int]] = []
    i = 0
    while i < len(tokens):
        if (tokens[i] == "<!--" and i + 3 < len(tokens) and tokens[i + 1] in MARK_KINDS
                and tokens[i + 2].isdigit() and len(tokens[i + 2]) <= 6 and tokens[i + 3] == "-->"):
            marks.append((len(kept), tokens[i + 1], int(tokens[i + 2])))
            i += 4
        else:
            kept.append(tokens[i])
            i += 1
    return kept, marks


def neutralise(text: str) -> str:
    """Text taken from a source file, made unable to forge a marker: "<!--" inside it becomes "< !--"."""
    return text.replace("<!--", "< !--")


def parse_provenance(text: str, path: Path) -> dict[str, str]:
    """provenance.json read as {document path: source name}; a damaged file is one line naming it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HarnessError(f"malformed JSON ({e.msg} at column {e.colno}); re-run the import "
                           "(`harness new-task NAME --docs DIR --questions FILE`) or delete the file", path,
                           e.lineno) from None
    except RecursionError:
        raise HarnessError("JSON nested too deep; re-run the import or delete the file", path) from None
    docs = data.get("documents") if isinstance(data, dict) else None
    if not isinstance(docs, dict):
        raise HarnessError('must hold {"documents": {"docs/x.md": {"source": "x.pdf"}}}; re-run the import or '
                           "delete the file", path)
    out = {}
    for doc, entry in docs.items():
        source = entry.get("source") if isinstance(entry, dict) else None
        if not isinstance(source, str) or not source.strip() or len(source) > 1000 or not source.isprintable():
            raise HarnessError(f'documents.{doc}: "source" must be the name of the file it came from '
                               '(e.g. "manual.pdf"); re-run the import or fix the entry', path)
        out[doc] = source
    return out
