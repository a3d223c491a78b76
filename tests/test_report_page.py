"""report.html is built from what the report renderer loaded and wrote, and from nothing it reads on its own."""
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report.html import write_report_html
from harness.report.loaded import load

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
