"""report.html and compare.html: every answer of a run side by side, in one file that opens from disk.

The page is rendered by Jinja2 templates (harness/report/templates/); everything a test must be able to check
(rows, right/wrong marks, "arms disagree", "only X right") is computed here, in Python. The page's small
inline script only shows, hides and sorts rows already rendered, reading their `data-*` attributes.
No torch, transformers or faiss here: `harness report` and `harness compare` must stay fast.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from harness.config import METRICS
from harness.errors import HarnessError
from harness.names import PHASE_LABELS
from harness.report.compare import load_comparison
from harness.report.loaded import LoadedRun, load

# A continuous headline metric (f1, rouge_l, semantic) counts as right from this score; 0/1 metrics are unaffected.
RIGHT_FROM = 0.5


@dataclass
class Passage:
    doc: str
    score: float | None
    text: str
    source: bool  # the question's own source document: what retrieval should have found
    cite: str = ""  # an imported document's source file and page, e.g. "manual.pdf p. 12"


@dataclass
class Cell:
    arm: str
    answer: str
    score: float | None  # the headline metric
    right: bool | None
    metrics: dict[str, float]
    passages: list[Passage]


@dataclass
class Row:
    phase: str
    id: str
    question: str
    topic: str
    fresh: bool
    knowledge: str  # "taught" | "documents-only" | "fresh", or "" in runs made before the label existed
    doc: str
    references: list[str]
    cells: dict[str, Cell] = field(default_factory=dict)

    def _marks(self) -> list[bool]:
        return [c.right for c in self.cells.values() if c.right is not None]

    @property
    def disagree(self) -> bool:
        """Some arms answered right and some wrong: the rows that tell arms apart."""
        return len(set(self._marks())) > 1

    @property
    def all_wrong(self) -> bool:
        marks = self._marks()
        return bool(marks) and not any(marks)

    @property
    def only_right(self) -> str:
        """The one arm that got it right, or "" when none or several did."""
        right = [a for a, c in self.cells.items() if c.right]
        return right[0] if len(right) == 1 else ""


def _strings(v) -> list[str]:
    # A table-loaded row holds NaN, not [], where a field is absent.
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else []


def _number(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def is_right(score: float | None) -> bool | None:
    return None if score is None else score >= RIGHT_FROM


def records(preds: pd.DataFrame) -> list[dict]:
    """predictions.jsonl's rows as they were written: a field a row lacks is absent, not the table's NaN."""
    return [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
            for r in preds.to_dict("records")]


def arm_order(preds: list[dict], declared: list[str] | None = None) -> list[str]:
    """Arms as run.json lists them, then any other `pipeline` value in order of appearance: names are free."""
    out = list(declared or [])
    for p in preds:
        if p["pipeline"] not in out:
            out.append(p["pipeline"])
    return out


def _cell(p: dict, metric: str, doc: str) -> Cell:
    score = _number(p.get(metric))
    metrics = {m: v for m in METRICS if (v := _number(p.get(m))) is not None}
    listed = p.get("passages") if isinstance(p.get("passages"), list) else []
    passages = [Passage(q.get("doc", ""), _number(q.get("score")), q.get("text", ""), bool(doc) and q.get("doc") == doc,
                        str(q.get("cite") or "")) for q in listed]
    return Cell(p["pipeline"], p.get("answer", ""), score, is_right(score), metrics, passages)


def question_rows(preds: list[dict], arms: list[str], metric: str) -> dict[str, list[Row]]:
    """One row per question and phase, one cell per arm; phases in run order (before, no rebuild, rebuilt)."""
    rows: dict[tuple[str, str], Row] = {}
    for p in preds:
        key = (p["phase"], str(p["id"]))
        if key not in rows:
            rows[key] = Row(p["phase"], str(p["id"]), p.get("question", ""), p.get("topic") or "",
                            bool(p.get("fresh")), p.get("knowledge") or "", p.get("doc") or "",
                            _strings(p.get("references")))
        rows[key].cells[p["pipeline"]] = _cell(p, metric, rows[key].doc)
    for row in rows.values():  # arm columns in one order for every row
        row.cells = {a: row.cells[a] for a in arms if a in row.cells}
    phases = list(PHASE_LABELS) + sorted({ph for ph, _ in rows} - set(PHASE_LABELS))
    return {ph: [r for (rp, _), r in rows.items() if rp == ph] for ph in phases if any(rp == ph for rp, _ in rows)}


def demonstrations(costs: dict, arms: list[str]) -> dict[str, list[dict]]:
    """The examples each arm was shown (few-shot pairs, RAFT-style demonstrations), once per arm."""
    return {a: list(costs.get(a, {}).get("demonstrations") or []) for a in arms
            if (costs.get(a) or {}).get("demonstrations")}


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _markdown_html(md_text: str, run_dir: Path) -> tuple[Markup, set[str]]:
    """report.md as HTML, its figures inlined as data URIs so the page needs no file beside it."""
    from markdown_it import MarkdownIt  # only the report page needs it

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(md_text)
    used = set()
    for tok in tokens:
        for child in tok.children or []:
            src = child.attrGet("src") if child.type == "image" else None
            if src and (run_dir / src).is_file() and (run_dir / src).parent == run_dir:
                used.add(src)
                child.attrSet("src", _data_uri(run_dir / src))
    return Markup(md.renderer.render(tokens, md.options, {})), used


def _env() -> Environment:
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: "–" if v is None else f"{v:.3f}"
    return env


def _report_md(run_dir: Path) -> str:
    path = run_dir / "report.md"
    if not path.is_file():
        raise HarnessError(f"no report.md: write the whole report with `harness report {run_dir}`", run_dir)
    return path.read_text(encoding="utf-8")


def report_context(run_dir: Path, run: LoadedRun | None = None, report_md: str | None = None) -> dict:
    """Everything the report page shows. `run` and `report_md`: what the report renderer has just loaded and
    written (else read from the run folder, each file checked)."""
    run_dir = Path(run_dir)
    run = load(run_dir) if run is None else run
    preds, metric = records(run.preds), run.info["config"]["metric"]
    arms = arm_order(preds, run.info["pipelines"])
    phases = question_rows(preds, arms, metric)
    every = [r for rows in phases.values() for r in rows]
    report_html, used = _markdown_html(_report_md(run_dir) if report_md is None else report_md, run_dir)
    return {
        "info": run.info, "metric": metric, "right_from": RIGHT_FROM, "arms": arms, "phases": phases,
        "phase_labels": PHASE_LABELS, "topics": sorted({r.topic for r in every if r.topic}),
        "knowledge": sorted({r.knowledge for r in every if r.knowledge}),
        "demonstrations": demonstrations(run.saved["costs"], arms), "report_md": report_html,
        "generated_pairs": run.pairs,
        # Figures report.md does not show are added below it.
        "figures": [(p.stem.replace("_", " "), _data_uri(p)) for p in sorted(run_dir.glob("*.png"))
                    if p.name not in used],
    }


def write_report_html(run_dir: Path, run: LoadedRun | None = None, report_md: str | None = None) -> Path:
    """Writes run_dir/report.html and returns its path. `run` and `report_md`: as for report_context."""
    out = Path(run_dir) / "report.html"
    out.write_text(_env().get_template("report.html.j2").render(**report_context(run_dir, run, report_md)),
                   encoding="utf-8")
    return out


@dataclass
class ChangedAnswer:
    phase: str
    arm: str
    id: str
    question: str
    references: list[str]
    answer_a: str
    answer_b: str
    right_a: bool | None
    right_b: bool | None

    @property
    def change(self) -> str:
        """fixed / broken / same mark: what the change did to the headline metric's verdict."""
        if self.right_a == self.right_b:
            return "same"
        return "fixed" if self.right_b else "broken"


def changed_answers(pred_a: list[dict], pred_b: list[dict], metric: str) -> tuple[list[ChangedAnswer], int]:
    """Answers to the same (phase, arm, question) that differ between two runs, in run B's order, and how
    many answers the two runs share."""
    key = lambda p: (p["phase"], p["pipeline"], str(p["id"]))  # noqa: E731
    before = {key(p): p for p in pred_a}
    out, shared = [], 0
    for p in pred_b:
        a = before.get(key(p))
        shared += a is not None
        if a is not None and a.get("answer") != p.get("answer"):
            out.append(ChangedAnswer(p["phase"], p["pipeline"], str(p["id"]), p.get("question", ""),
                                     _strings(p.get("references")), a.get("answer", ""), p.get("answer", ""),
                                     is_right(_number(a.get(metric))), is_right(_number(p.get(metric)))))
    return out, shared


def _frame_rows(df) -> tuple[list[str], list[list]]:
    return list(df.columns), [[None if isinstance(v, float) and math.isnan(v) else v for v in r]
                              for r in df.astype(object).itertuples(index=False)]


def compare_context(run_a: Path, run_b: Path) -> dict:
    """What `harness compare` computes (inputs that differ, side-by-side tables), plus every changed answer."""
    c = load_comparison(run_a, run_b)
    changed, shared = changed_answers(records(c.pred_a), records(c.pred_b), c.metric)
    return {"name_a": c.name_a, "name_b": c.name_b, "metric": c.metric, "inputs": c.inputs,
            "tables": [(title, *_frame_rows(table)) for title, table in c.tables],
            "changed": changed, "compared": shared, "phase_labels": PHASE_LABELS, "right_from": RIGHT_FROM,
            "arms": arm_order(records(c.pred_b), c.info_b["pipelines"])}


def write_compare_html(run_a: Path, run_b: Path, out: Path) -> Path:
    """Writes the compare page for two run folders to `out` and returns it."""
    out = Path(out)
    out.write_text(_env().get_template("compare.html.j2").render(**compare_context(Path(run_a), Path(run_b))),
                   encoding="utf-8")
    return out
