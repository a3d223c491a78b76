"""A team's questions as they keep them (a CSV, TSV or XLSX sheet, or JSONL), read into test questions and
training pairs through a column mapping, and checked with the row each problem is on.

The first row of a sheet names the columns; names match without regard to case or surrounding spaces. Rows
with every cell empty are skipped (spreadsheets end in them). A problem names the file and its row: the line
in a CSV, TSV or JSONL file (where a quoted cell spans lines, the line the row starts on), the row in a sheet.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.task.leakage import repeated_question
from harness.task.reading import decode_text, read_jsonl
from harness.text import normalize_words

SUFFIXES = (".csv", ".tsv", ".xlsx", ".jsonl")
YES = frozenset(("1", "true", "yes", "y", "x", "fresh"))
NO = frozenset(("", "0", "false", "no", "n"))


@dataclass(frozen=True)
class Columns:
    """Which column holds what. `answer_sep` splits one answer cell into several accepted answers."""

    question: str = "question"
    answer: str = "answer"
    answer_sep: str | None = None
    fresh: str | None = None
    doc: str | None = None  # the source file that answers it, e.g. "manual.pdf"
    topic: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Row:
    line: int  # where it is in the file (see the module's docstring)
    question: str
    answers: tuple[str, ...]
    fresh: bool = False
    doc: str | None = None  # as the sheet names it: a source file name
    topic: str = ""
    id: str | None = None


def _cell(value: Any) -> str:
    """A sheet's cell as text: 3.0 -> "3", a date -> 2024-05-01, empty -> ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):  # a JSONL "answers" list, joined by the caller's separator or kept whole
        return "\x1f".join(_cell(v) for v in value)
    return str(value)


def _delimited(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    first = text.split("\n", 1)[0]
    if delimiter == "," and ";" in first and "," not in first:  # Excel's CSV where the decimal mark is a comma
        delimiter = ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    try:
        for cells in reader:
            yield line, cells
            line = reader.line_num + 1
    except csv.Error as e:
        raise HarnessError(f"not a readable {path.suffix[1:].upper()} file ({e}); re-save it from the spreadsheet",
                           path, reader.line_num) from None


def _sheet(path: Path, data: bytes) -> Iterator[tuple[int, list[str]]]:
    from harness.task.converted import needs
    from harness.task.office import check_zip

    check_zip(path, data, "XLSX")
    openpyxl = needs("openpyxl", "openpyxl", path)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = [[_cell(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    except Exception as e:  # openpyxl raises many types on damaged files
        raise HarnessError(f"cannot read this XLSX ({' '.join(str(e).split())[:200]}); open and re-save it", path) \
            from None
    yield from enumerate(rows, start=1)


def _jsonl(path: Path) -> Iterator[tuple[int, list[str]]]:
    rows = read_jsonl(path)
    keys = list(dict.fromkeys(k for _, obj in rows for k in obj))
    yield 0, keys
    for n, obj in rows:
        yield n, [_cell(obj.get(k)) for k in keys]


def table(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line, cells)]) of a questions file; rows with every cell empty left out."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise HarnessError(f"unsupported questions file {suffix or '(no extension)'!r}; give a .csv, .tsv, .xlsx "
                           "or .jsonl file", path)
    if suffix == ".xlsx":
        rows = _sheet(path, data)
    elif suffix == ".jsonl":
        rows = _jsonl(path)
    else:
        rows = _delimited(path, decode_text(data, path))
    kept = [(n, cells) for n, cells in rows if any(c.strip() for c in cells)]
    if not kept:
        raise HarnessError("holds no rows; the first row names the columns (e.g. question,answer), one question "
                           "per row after it", path)
    return [c.strip() for c in kept[0][1]], kept[1:]


def _column(header: list[str], name: str | None, flag: str, path: Path) -> int | None:
    if name is None:
        return None
    folded = [h.casefold() for h in header]
    if name.strip().casefold() not in folded:
        shown = ", ".join(repr(h) for h in header if h) or "none"
        raise HarnessError(f"no column {name!r} (the columns are {shown}); name the right one with {flag}", path)
    return folded.index(name.strip().casefold())


def _flag(value: str, path: Path, line: int, column: str) -> bool:
    v = value.strip().casefold()
    if v in YES or v in NO:
        return v in YES
    raise HarnessError(f"{column!r} is {value!r}: write yes or no (also true/false, 1/0, or leave it empty)",
                       path, line)


def read_rows(path: Path, data: bytes, cols: Columns, need_answer: bool = True) -> list[Row]:
    """Every row through the mapping, with its own problems (a missing column, an empty question or answer, a
    fresh flag that is no yes/no) named by row."""
    header, rows = table(path, data)
    at = {key: _column(header, getattr(cols, key), f"--{key.replace('_', '-')}-col", path)
          for key in ("question", "answer", "fresh", "doc", "topic", "id")}
    out = []
    for n, cells in rows:
        get = lambda key: cells[at[key]].strip() if at[key] is not None and at[key] < len(cells) else ""  # noqa: E731
        question = " ".join(get("question").split())
        if not question:
            raise HarnessError(f"empty question in column {header[at['question']]!r}; fill it in or delete the row",
                               path, n)
        raw = get("answer")
        parts = raw.split(cols.answer_sep) if cols.answer_sep else [raw]
        answers = tuple(" ".join(a.split()) for p in parts for a in p.split("\x1f") if a.strip())
        if need_answer and not answers:
            raise HarnessError(f"no answer for {question[:60]!r} in column {header[at['answer']]!r}: every question "
                               "needs the answer it should get (several accepted answers: --answer-sep)", path, n)
        fresh = _flag(get("fresh"), path, n, header[at["fresh"]]) if at["fresh"] is not None else False
        out.append(Row(n, question, answers, fresh, get("doc") or None, get("topic"), get("id") or None))
    return out


def check_repeats(rows: list[Row], path: Path) -> None:
    """The same question twice counts one fact twice and usually hides a copy-paste slip: refused, naming
    both rows, whether it repeats word for word, up to case and punctuation, or nearly (in other order)."""
    seen: dict[str, int] = {}
    folded: dict[str, int] = {}
    for r in rows:
        if r.question in seen:
            raise HarnessError(f"repeats the question of row {seen[r.question]} word for word; remove one of them",
                               path, r.line)
        key = normalize_words(r.question)
        if key in folded:
            raise HarnessError(f"is the question of row {folded[key]} again once case, punctuation and articles are "
                               "set aside; remove or reword one of them", path, r.line)
        seen[r.question], folded[key] = r.line, r.line
    found = repeated_question([r.question for r in rows])
    if found:
        i, j, sim = found
        raise HarnessError(f"nearly the same question as row {rows[j].line} (the same words in other order, or "
                           f"all but one: similarity {sim:.2f}); remove or reword one of them", path, rows[i].line)
