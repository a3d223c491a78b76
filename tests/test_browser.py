"""The committed example's report.html in a real browser: headless Debian chromium, driven by playwright.

The filters run in the page's own script, so only a browser can prove them; the counts they must give are
computed here straight from predictions.jsonl, not from the code that rendered the page.
"""
import json
import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness.report.html import (RIGHT_FROM, compare_context, demonstrations, question_rows, report_context,
                                  write_compare_html, write_report_html)

EXAMPLE = Path(__file__).parent.parent / "results" / "examples" / "coffee"
CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def _unavailable(why: str) -> None:
    # CI must prove the page works, so a missing browser fails there; on a laptop without it the test skips.
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}: `make browser` installs it (apt-get install chromium, as root)")
    pytest.skip(why)


def _main_phase_by_question() -> tuple[list[dict[str, dict]], str]:
    """The before-update answers of every arm, grouped per question, and the headline metric."""
    metric = json.loads((EXAMPLE / "run.json").read_text())["config"]["metric"]
    by_id: dict[str, dict[str, dict]] = defaultdict(dict)
    for line in (EXAMPLE / "predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        if p["phase"] == "main":
            by_id[p["id"]][p["pipeline"]] = p
    return list(by_id.values()), metric


def _right(p: dict, metric: str) -> bool:
    return p[metric] >= RIGHT_FROM


def test_committed_report_html_is_rendered_by_the_current_code(tmp_path):
    """The browser test below must test today's templates, not a stale page."""
    for f in EXAMPLE.iterdir():
        if f.name != "report.html":
            shutil.copy(f, tmp_path / f.name)
    fresh = write_report_html(tmp_path).read_text()
    assert fresh == (EXAMPLE / "report.html").read_text(), (
        "results/examples/coffee/report.html is stale: regenerate it with "
        "python -c 'from pathlib import Path; from harness.report.html import write_report_html; "
        "write_report_html(Path(\"results/examples/coffee\"))'")


def test_report_context_has_one_row_per_question_and_phase():
    ctx = report_context(EXAMPLE)
    questions, _ = _main_phase_by_question()
    assert len(ctx["phases"]["main"]) == len(questions)
    assert list(ctx["phases"]) == ["main", "update_no_rebuild", "update_rebuilt"]
    assert ctx["arms"] == json.loads((EXAMPLE / "run.json").read_text())["pipelines"]
    raft = ctx["phases"]["main"][0].cells["raft"]  # three passages (rag reads the one it chose, here not the source)
    assert raft.passages and any(p.source for p in raft.passages)  # coffee-001's source passage is marked


def _pred(arm: str, qid: str, contains: float, **extra) -> dict:
    return {"phase": "main", "pipeline": arm, "id": qid, "question": f"q {qid}?", "fresh": False, "topic": "t",
            "doc": "docs/a.md", "answer": f"{arm} says", "references": ["x"], "contains": contains, "f1": 0.5,
            "passages": [], **extra}


def test_rows_flag_disagreement_all_wrong_and_the_only_right_arm_for_any_arm_names():
    arms = ["base", "cpt+rag", "raft"]
    passages = [{"doc": "docs/b.md", "score": 0.9, "text": "other"}, {"doc": "docs/a.md", "score": 0.5, "text": "it"}]
    doc_only = {"knowledge": "documents-only"}
    preds = [_pred("base", "1", 0.0, **doc_only), _pred("cpt+rag", "1", 1.0, passages=passages, **doc_only),
             _pred("raft", "1", 0.0, **doc_only),
             *(_pred(a, "2", 0.0) for a in arms), *(_pred(a, "3", 1.0) for a in arms)]
    (one, none, every), = question_rows(preds, arms, "contains").values()
    assert (one.disagree, one.all_wrong, one.only_right) == (True, False, "cpt+rag")
    assert (none.disagree, none.all_wrong, none.only_right) == (False, True, "")
    assert (every.disagree, every.all_wrong, every.only_right) == (False, False, "")
    assert one.knowledge == "documents-only" and every.knowledge == ""
    assert [p.source for p in one.cells["cpt+rag"].passages] == [False, True]
    assert one.cells["base"].metrics == {"contains": 0.0, "f1": 0.5}


def test_demonstrations_are_listed_once_per_arm_that_saw_any():
    costs = {"prompt": {"demonstrations": [{"question": "q", "answer": "a", "passages": []}]}, "base": {},
             "rag": {"demonstrations": []}}
    assert demonstrations(costs, ["base", "prompt", "rag"]) == {"prompt": costs["prompt"]["demonstrations"]}


def test_report_page_needs_no_network_and_embeds_its_figures(tmp_path):
    html = (EXAMPLE / "report.html").read_text()
    assert not re.search(r'\bsrc="(?!data:)', html) and "<link" not in html  # nothing loads from elsewhere
    assert html.count('src="data:image/png;base64,') == len(list(EXAMPLE.glob("*.png")))


def test_compare_lists_the_answers_that_changed(tmp_path):
    b = tmp_path / "b"
    shutil.copytree(EXAMPLE, b)
    lines = (b / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "answer": "something else", "contains": 0.0})
    (b / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    ctx = compare_context(EXAMPLE, b)
    (changed,) = ctx["changed"]
    assert (changed.id, changed.arm, changed.answer_b, changed.change) == (first["id"], first["pipeline"],
                                                                           "something else", "broken")
    assert ctx["compared"] == len(lines) and ctx["inputs"] == []
    assert "something else" in write_compare_html(EXAMPLE, b, tmp_path / "compare.html").read_text()


def test_two_filters_in_chromium_show_the_rows_predictions_jsonl_implies(tmp_path, capsys):
    if not CHROMIUM.is_file():
        _unavailable(f"no chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")

    questions, metric = _main_phase_by_question()
    stable = [q for q in questions if not next(iter(q.values()))["fresh"]]
    disagree = [q for q in stable if len({_right(p, metric) for p in q.values()}) > 1]
    only = Counter(right[0] for q in questions if len(right := [a for a, p in q.items() if _right(p, metric)]) == 1)
    assert disagree and len(stable) < len(questions), "the example no longer exercises the filters"

    outside = []  # any request that is not the file itself or an inline image: the page must need no network
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: r.url.startswith(("file:", "data:")) or outside.append(r.url))
            page.goto((EXAMPLE / "report.html").resolve().as_uri())
            rows = page.locator("#panel-main table.questions > tbody > tr:visible")
            assert rows.count() == len(questions)

            page.select_option("#f-set", "stable")  # filter 1: stable questions only
            assert rows.count() == len(stable)
            page.check("#f-disagree")  # filter 2: arms disagree on the headline metric
            assert rows.count() == len(disagree)
            assert page.text_content("#count-main") == f"{len(disagree)} of {len(questions)}"

            shot = tmp_path / "report-filter.png"
            page.locator("#questions").scroll_into_view_if_needed()
            page.evaluate("document.getElementById('questions').scrollIntoView()")
            page.screenshot(path=str(shot))
            shutil.copy(shot, Path(tempfile.gettempdir()) / "report-filter.png")
            with capsys.disabled():
                print(f"\nscreenshot (stable + arms disagree, {len(disagree)} rows): {shot}")

            page.select_option("#f-set", "")  # and "only X right" on its own, for the arm most often alone
            page.uncheck("#f-disagree")
            for arm, n in only.most_common(1):
                page.select_option("#f-only", arm)
                assert rows.count() == n
            assert errors == [] and outside == []
        finally:
            browser.close()
