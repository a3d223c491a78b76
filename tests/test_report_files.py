"""report.md's template branches and report.html's inputs, on copies of the committed coffee run changed the way
real runs differ. report.html is built from what the renderer loaded and wrote, and nothing it reads on its own."""
import json
import shutil
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from harness.errors import HarnessError
from harness.report import document
from harness.report.html import write_report_html
from harness.report.loaded import load
from harness.report.render import render

EXAMPLE = Path(__file__).parent.parent / "results" / "examples" / "coffee"


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(EXAMPLE, dst)
    return dst


def test_the_page_shows_the_markdown_it_is_handed_not_the_file_on_disk(run_copy):
    run = load(run_copy)
    (run_copy / "report.md").write_text("# stale text on disk\n")
    html = write_report_html(run_copy, run, "# Handed over\n\nfresh words\n").read_text()
    assert "<h1>Handed over</h1>" in html and "fresh words" in html and "stale text" not in html


def test_the_page_shows_the_rows_it_is_handed(run_copy):
    run = load(run_copy)
    first = run.preds.index[0]
    run.preds.loc[first, "answer"] = "an answer only the loaded table holds"
    html = write_report_html(run_copy, run, "# r\n").read_text()
    assert "an answer only the loaded table holds" in html


def test_on_its_own_the_page_reads_the_run_through_the_checked_readers(run_copy):
    lines = (run_copy / "predictions.jsonl").read_text().split("\n")
    (run_copy / "predictions.jsonl").write_text("\n".join([lines[0][:40]] + lines[1:]))  # a cut-short row
    with pytest.raises(HarnessError, match="malformed JSON"):
        write_report_html(run_copy)


def _edit_info(run: Path, **changes) -> None:
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, **changes}))


def _sections(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("## ")]


def test_the_committed_report_has_every_section_in_order(run_copy):
    render(run_copy)
    assert _sections((run_copy / "report.md").read_text()) == [
        "## Verdict", "## The opinion table, measured", "## Accuracy (stable questions, before the update)",
        "## The arms", "## Cost", "## Cost at your scale (projection)", "## Freshness (contains)", "## Figures"]


def test_a_partial_report_says_which_arms_are_still_to_come(run_copy):
    _edit_info(run_copy, partial={"done": ["base", "prompt"], "pending": ["rag", "finetune"]})
    for png in run_copy.glob("*.png"):
        png.unlink()
    render(run_copy)
    text = (run_copy / "report.md").read_text()
    assert "> **Partial report: 2 of 4 arms; rag, finetune still to come.**" in text
    assert text.index("Partial report") < text.index("Model `")
    # Its figures wait for the last arm: none drawn, none linked, and the page says when they come.
    assert not list(run_copy.glob("*.png")) and "![" not in text
    assert "## Figures\n\nDrawn when every arm has finished." in text


def test_a_run_without_the_update_experiment_says_it_was_skipped(run_copy):
    _edit_info(run_copy, freshness=False, deployment=None)
    render(run_copy)
    text = (run_copy / "report.md").read_text()
    assert "The update experiment was skipped in this run (`--no-freshness`)" in text
    assert "`fresh_before`: built on the original knowledge" not in text
    assert "## Cost at your scale (projection)" not in _sections(text)  # no profile, no projection


def test_a_key_the_template_needs_but_is_not_given_is_an_error_not_a_blank():
    with pytest.raises(UndefinedError):
        document.markdown({"info": {"task": "t"}})
