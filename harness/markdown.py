"""Markdown tables, one way for every Markdown file the harness writes (report.md, compare, sweep.md).

A leaf: the run layer (sweep.md) and the report layer both write tables, and the run layer may not import
the report layer, so the one table writer lives below both."""
from __future__ import annotations

import math

import pandas as pd


def cell(v: object) -> str:
    """A value as a report cell: a dash for missing, yes/no, three decimals for small numbers, one for large."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured table of the frame, its columns as the header; a cell that is already a string is
    written as it is, so a caller with its own formatting passes strings."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.astype(object).itertuples(index=False)]
    return "\n".join(lines)
