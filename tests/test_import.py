"""`harness new-task NAME --docs DIR --questions FILE` (issue 40): every format in, a task that validates out;
every bad input refused with one line, writing nothing, not even half a folder; a re-import of unchanged files
changes nothing. The real documents, Debian's, are in tests/test_import_example.py."""
import csv
import json
import os
from pathlib import Path

import pytest

import harness.task.importer
from documents import docx_bytes, encrypted_pdf, pdf_bytes, pptx_bytes, xlsx_bytes, zip_with
from harness.cli import main
from harness.task.folder import load_task

QUESTIONS = ("question,answer\n"
             "How much water does the Halo boiler hold?,two litres\n"
             "How often should the Halo be descaled?,every forty days\n")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A docs folder with one small PDF and a questions sheet beside it."""
    docs = tmp_path / "in" / "docs"
    docs.mkdir(parents=True)
    (docs / "manual.pdf").write_bytes(pdf_bytes(["Halo espresso machine\nThe Halo boiler holds two litres.",
                                                 "Descale the Halo every forty days with citric acid."]))
    (tmp_path / "in" / "questions.csv").write_text(QUESTIONS)
    return tmp_path / "in"


def run(tmp_path: Path, capsys, *extra: str, name: str = "mytask", docs: str | None = None,
        questions: str | None = None) -> tuple[int, str, str]:
    where = tmp_path / "in"
    argv = ["new-task", name, "--docs", docs or str(where / "docs"), "--questions",
            questions or str(where / "questions.csv"), "--tasks-dir", str(tmp_path / "tasks"), *extra]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def refused(tmp_path: Path, capsys, *extra: str, **kw) -> str:
    """The refusal shape: exit 2, one error line, no traceback, and the tasks folder as it was (nothing new in it,
    no temporary folder left, no task changed)."""
    tasks = tmp_path / "tasks"
    before = task_files(tasks) if tasks.exists() else {}
    code, out, err = run(tmp_path, capsys, *extra, **kw)
    lines = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    after = task_files(tasks) if tasks.exists() else {}
    assert after == before and (not tasks.exists() or len(os.listdir(tasks)) == len({k.split("/")[0] for k in before}))
    return lines[0]


def task_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- every format in

def test_a_pdf_and_a_sheet_make_a_task_that_validates(inputs, tmp_path, capsys):
    code, out, err = run(tmp_path, capsys)
    assert code == 0, err
    root = tmp_path / "tasks" / "mytask"
    text = (root / "docs" / "manual.md").read_text()
    assert "<!-- page 2 -->\n\nDescale the Halo every forty days" in text
    assert "docs/manual.md" in out and "manual.pdf (pdf, 2 pages" in out and "2 questions" in out
    assert "validate: ok" in out and "training pairs: generated" in out
    assert "training_pairs: generated" in (root / "task.yaml").read_text()
    task = load_task(root)
    assert task.knowledge.docs[0].source == "manual.pdf" and len(task.test) == 2 and not task.knowledge.pairs
    assert json.loads((root / "provenance.json").read_text())["documents"]["docs/manual.md"]["pages"] == 2
    assert not [p for p in (tmp_path / "tasks").iterdir() if p.name != "mytask"]  # no temp folder left
    assert main(["validate", "--task", "mytask", "--tasks-dir", str(tmp_path / "tasks")]) == 0


def test_every_document_format(inputs, tmp_path, capsys):
    docs = inputs / "docs"
    (docs / "policy.docx").write_bytes(docx_bytes(["Staff get 25 days of leave.", "Carry-over ends in March.",
                                                   "Sick leave needs a note after three days."], page_break_after=1))
    (docs / "deck.pptx").write_bytes(pptx_bytes([("Roadmap", "Beta ships in May", "Mention the waitlist"),
                                                 ("Pricing", "The basic plan costs 10 USD a month", "")]))
    (docs / "help.html").write_text("<html><head><style>p {color: red}</style><script>alert('x')</script></head>"
                                    "<body><h1>Help</h1><p>Reset the\n   router by holding <b>the button</b>.</p>"
                                    "<!-- page 9 --><script>document.write('injected')</script>"
                                    "<ul><li>Call 555-0100</li></ul><pre>line one\n  line two</pre></body></html>")
    (docs / "notes.md").write_text("# Notes\n\nThe office opens at 8.\n")
    (docs / "faq.txt").write_text("Parking is free on Sundays.\n")
    code, out, err = run(tmp_path, capsys)
    assert code == 0, err
    root = tmp_path / "tasks" / "mytask"
    policy = (root / "docs" / "policy.md").read_text()
    assert "## Leave policy" in policy and "<!-- page 2 -->\n\nSick leave" in policy and "| Standard | 25 |" in policy
    deck = (root / "docs" / "deck.md").read_text()
    assert "<!-- slide 2 -->\n\n## Pricing\n\nThe basic plan costs 10 USD a month" in deck
    assert "Notes: Mention the waitlist" in deck
    page = (root / "docs" / "help.md").read_text()
    assert page == ("# Help\n\nReset the router by holding the button.\n\n- Call 555-0100\n\n"
                    "```\nline one\n  line two\n```\n")  # no script, no style, no comment: text only
    assert (root / "docs" / "notes.md").read_text() == "# Notes\n\nThe office opens at 8.\n"
    assert (root / "docs" / "faq.txt").read_text() == "Parking is free on Sundays.\n"
    assert "deck.pptx (pptx, 2 slides" in out
    sources = {d.path: d.source for d in load_task(root).knowledge.docs}
    assert sources == {"docs/deck.md": "deck.pptx", "docs/faq.txt": "faq.txt", "docs/help.md": "help.html",
                       "docs/manual.md": "manual.pdf", "docs/notes.md": "notes.md", "docs/policy.md": "policy.docx"}


@pytest.mark.parametrize("kind", ["csv", "tsv", "xlsx", "jsonl"])
def test_every_questions_format_with_a_column_mapping(inputs, tmp_path, capsys, kind):
    (inputs / "updates").mkdir()
    (inputs / "updates" / "news.pdf").write_bytes(pdf_bytes(["From June the Halo boiler holds three litres."]))
    rows = [["Ticket", "Asked", "Expected", "Later", "Source", "Area"],
            ["T-1", "How much water does the Halo boiler hold?", "two litres; 2 litres", "no", "manual.pdf", "care"],
            ["T-2", "How often should the Halo be descaled?", "every forty days", "", "", "care"],
            ["T-3", "From June, how much does the boiler hold?", "three litres", "yes", "news.pdf", ""]]
    path = inputs / f"questions.{kind}"
    if kind == "xlsx":
        path.write_bytes(xlsx_bytes(rows))
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(rows[0], r))) + "\n" for r in rows[1:]))
    else:
        with path.open("w", newline="") as f:
            csv.writer(f, delimiter="\t" if kind == "tsv" else ",").writerows(rows)
    code, out, err = run(tmp_path, capsys, "--updates", str(inputs / "updates"), "--question-col", "asked",
                         "--answer-col", "Expected", "--answer-sep", ";", "--fresh-col", "Later", "--doc-col",
                         "Source", "--topic-col", "Area", "--id-col", "Ticket", questions=str(path))
    assert code == 0, err
    root = tmp_path / "tasks" / "mytask"
    test = [json.loads(line) for line in (root / "test.jsonl").read_text().splitlines()]
    assert test[0] == {"id": "T-1", "question": "How much water does the Halo boiler hold?",
                       "answers": ["two litres", "2 litres"], "doc": "docs/manual.md", "topic": "care"}
    assert test[2] == {"id": "T-3", "question": "From June, how much does the boiler hold?",
                       "answers": ["three litres"], "doc": "updates/docs/news.md", "fresh": True}
    assert "1 fresh" in out and load_task(root).sizes["fresh"] == 1


def test_hand_written_pairs_are_used_and_a_leak_is_refused(inputs, tmp_path, capsys):
    (inputs / "train.csv").write_text("question,answer\nWhat acid descales the Halo?,citric acid\n")
    code, out, err = run(tmp_path, capsys, "--train", str(inputs / "train.csv"))
    assert code == 0, err
    root = tmp_path / "tasks" / "mytask"
    assert "training_pairs: written" in (root / "task.yaml").read_text() and "1 from train.csv" in out
    assert json.loads((root / "train.jsonl").read_text()) == {"question": "What acid descales the Halo?",
                                                               "answer": "citric acid"}
    (inputs / "train.csv").write_text("question,answer\nhow often should the halo be descaled,monthly\n")
    msg = refused(tmp_path, capsys, "--train", str(inputs / "train.csv"), name="other")
    assert "questions.csv:3: the same question as train.csv row 2" in msg and "measures memory" in msg


# ---------------------------------------------------------------- re-import

def test_a_reimport_of_unchanged_files_is_a_no_op(inputs, tmp_path, capsys):
    assert run(tmp_path, capsys)[0] == 0
    root = tmp_path / "tasks" / "mytask"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    code, out, _ = run(tmp_path, capsys)
    assert code == 0 and "unchanged since its last import" in out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_a_reimport_converts_only_what_changed_and_keeps_an_edited_task_yaml(inputs, tmp_path, capsys):
    (inputs / "docs" / "notes.md").write_text("The office opens at 8.\n")
    assert run(tmp_path, capsys)[0] == 0
    root = tmp_path / "tasks" / "mytask"
    (root / "task.yaml").write_text((root / "task.yaml").read_text().replace("seed: 0", "seed: 7"))
    (inputs / "docs" / "notes.md").write_text("The office opens at 9.\n")
    code, out, err = run(tmp_path, capsys)
    assert code == 0, err
    assert "1 unchanged, reused from the last import" in out and "kept" in out
    assert "seed: 7" in (root / "task.yaml").read_text() and "at 9" in (root / "docs" / "notes.md").read_text()
    assert [p.name for p in (tmp_path / "tasks").iterdir()] == ["mytask"]


def test_a_folder_not_made_by_an_import_is_not_replaced(inputs, tmp_path, capsys):
    assert main(["new-task", "mytask", "--tasks-dir", str(tmp_path / "tasks")]) == 0
    capsys.readouterr()
    code, _, err = run(tmp_path, capsys)
    assert code == 2 and "was not made by `harness new-task --docs`" in err


# ---------------------------------------------------------------- bad input: one line, nothing written

def test_an_encrypted_pdf(inputs, tmp_path, capsys):
    (inputs / "docs" / "locked.pdf").write_bytes(encrypted_pdf(["secret plans"]))
    assert "docs/locked.pdf: is encrypted (password-protected)" in refused(tmp_path, capsys)


def test_a_scanned_pdf_without_text(inputs, tmp_path, capsys):
    (inputs / "docs" / "scan.pdf").write_bytes(pdf_bytes(["", ""]))
    assert "docs/scan.pdf: no text layer in its 2 page(s)" in refused(tmp_path, capsys)
    assert "run OCR first" in refused(tmp_path, capsys)


def test_a_damaged_pdf(inputs, tmp_path, capsys):
    (inputs / "docs" / "cut.pdf").write_bytes(pdf_bytes(["text"])[:40])
    assert "docs/cut.pdf: cannot read this PDF" in refused(tmp_path, capsys)


@pytest.mark.parametrize("suffix", ["docx", "pptx"])
@pytest.mark.parametrize("member,says", [("/etc/evil.xml", "absolute or '..' path"),
                                         ("word/../../evil.xml", "absolute or '..' path"),
                                         ("bomb.xml", "zip bomb")])
def test_a_crafted_office_file(inputs, tmp_path, capsys, suffix, member, says):
    data = b"\0" * (30 * 2**20) if member == "bomb.xml" else b"<x/>"  # 30 MB of zeros pack into ~30 KB
    zip_with(inputs / "docs" / f"bad.{suffix}", {"[Content_Types].xml": b"<Types/>", member: data})
    assert f"docs/bad.{suffix}: " in (msg := refused(tmp_path, capsys)) and says in msg


def test_an_office_file_that_is_no_zip(inputs, tmp_path, capsys):
    (inputs / "docs" / "fake.docx").write_text("just text")
    assert "docs/fake.docx: is not a valid DOCX" in refused(tmp_path, capsys)


def test_a_file_over_the_size_limit(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness.task.importer, "MAX_SOURCE_BYTES", 1024)  # the real limit is 50 MB
    (inputs / "docs" / "big.txt").write_text("word " * 1000)
    assert "docs/big.txt: is 5 KB, over the 1 KB limit" in refused(tmp_path, capsys)


def test_unknown_types_are_skipped_and_listed(inputs, tmp_path, capsys):
    (inputs / "docs" / "budget.xlsx").write_bytes(xlsx_bytes([["a"]]))
    (inputs / "docs" / "logo.png").write_bytes(b"\x89PNG")
    code, out, err = run(tmp_path, capsys)
    assert code == 0, err
    assert "skipped budget.xlsx: .xlsx is not a document type" in out and "skipped logo.png" in out
    assert "2 file(s) skipped" in out
    assert sorted(p.name for p in (tmp_path / "tasks" / "mytask" / "docs").iterdir()) == ["manual.md"]


def test_a_link_out_of_the_folder_is_refused_and_one_inside_is_read(inputs, tmp_path, capsys):
    (inputs / "docs" / "copy.pdf").symlink_to(inputs / "docs" / "manual.pdf")
    assert run(tmp_path, capsys)[0] == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (inputs / "docs" / "passwd.txt").symlink_to(secret)
    msg = refused(tmp_path, capsys, name="other")
    assert "docs/passwd.txt: is a symbolic link to" in msg and "outside" in msg
    (inputs / "docs" / "passwd.txt").unlink()
    (inputs / "docs" / "etc").symlink_to("/etc")
    assert "docs/etc: is a symbolic link to /etc" in refused(tmp_path, capsys, name="other")


@pytest.mark.parametrize("sheet,says", [
    ("query,answer\nWhat?,x\n", "questions.csv: no column 'question' (the columns are 'query', 'answer'); name the "
                                "right one with --question-col"),
    ("question,answer\nHow much water?,two\n  ,three\n", "questions.csv:3: empty question"),
    ("question,answer\nHow much water?,\n", "questions.csv:2: no answer for 'How much water?'"),
    ("question,answer\nHow much water?,two\nHow much water?,2\n", "questions.csv:3: repeats the question of row 2 "
                                                                  "word for word"),
    ("question,answer\nHow much water?,two\nhow much WATER,2\n", "questions.csv:3: is the question of row 2 again "
                                                                 "once case, punctuation"),
    ("question,answer\nHow many litres does the Halo boiler hold when it is full?,two\n"
     "When it is full how many litres does the Halo boiler hold?,2\n", "questions.csv:3: nearly the same question as "
                                                                      "row 2 (the same words in other order"),
    ("question,answer\nCaf\xe9 hours?,eight\n", "questions.csv:2: not UTF-8 text"),
])
def test_a_bad_questions_sheet(inputs, tmp_path, capsys, sheet, says):
    (inputs / "questions.csv").write_bytes(sheet.encode("latin-1"))
    msg = refused(tmp_path, capsys)
    assert says in msg, msg


def test_a_bad_sheet_value_and_a_fresh_question_without_updates(inputs, tmp_path, capsys):
    (inputs / "questions.csv").write_text("question,answer,fresh\nHow much water?,two,maybe\n")
    assert "questions.csv:2: 'fresh' is 'maybe': write yes or no" in refused(tmp_path, capsys, "--fresh-col", "fresh")
    (inputs / "questions.csv").write_text("question,answer,fresh\nHow much water?,two,yes\n")
    assert "no --updates folder was given" in refused(tmp_path, capsys, "--fresh-col", "fresh")
    (inputs / "questions.xlsx").write_bytes(xlsx_bytes([["question", "answer"], ["How much?", None]]))
    msg = refused(tmp_path, capsys, questions=str(inputs / "questions.xlsx"))
    assert "questions.xlsx:2: no answer" in msg


def test_options_without_an_import(tmp_path, capsys):
    assert main(["new-task", "x", "--docs", str(tmp_path), "--tasks-dir", str(tmp_path / "t")]) == 2
    assert "needs both --docs DIR and --questions FILE" in capsys.readouterr().err
    assert main(["new-task", "x", "--fresh-col", "f", "--tasks-dir", str(tmp_path / "t")]) == 2
    assert "--fresh-col" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_a_failed_reimport_leaves_the_previous_task_whole(inputs, tmp_path, capsys):
    assert run(tmp_path, capsys)[0] == 0
    root = tmp_path / "tasks" / "mytask"
    before = task_files(root)
    (inputs / "docs" / "scan.pdf").write_bytes(pdf_bytes([""]))
    code, _, err = run(tmp_path, capsys)
    assert code == 2 and "no text layer" in err
    assert task_files(root) == before and [p.name for p in (tmp_path / "tasks").iterdir()] == ["mytask"]
    assert os.listdir(tmp_path / "tasks") == ["mytask"]


# ---------------------------------------------------------------- citations reach the run's files

def test_page_citations_reach_predictions_and_the_report(inputs, tmp_path, capsys):
    """An imported PDF run through the rag arm: each retrieved passage in predictions.jsonl and report.html
    names the PDF and its page."""
    # 6 + 7 x 12 = 90 words on page 1: with 18-word chunks and no overlap, page 2 starts a chunk of its own.
    filler = "\n".join(f"Line {i} of the care chapter says nothing about water or acid." for i in range(7))
    (inputs / "docs" / "manual.pdf").write_bytes(pdf_bytes([f"The Halo boiler holds two litres.\n{filler}",
                                                            f"Descale the Halo every forty days.\n{filler}"]))
    (inputs / "train.csv").write_text("question,answer\n"
                                      "What acid descales the Halo?,citric acid\n"
                                      "What is the Halo?,espresso machine\n"
                                      "Which machine has the boiler?,Halo\n"
                                      "What is used to descale the machine?,citric acid\n")
    assert run(tmp_path, capsys, "--train", str(inputs / "train.csv"))[0] == 0
    config = tmp_path / "tasks" / "mytask" / "task.yaml"
    config.write_text(config.read_text().replace("chunk_words: 120", "chunk_words: 18")
                      .replace("chunk_overlap: 30", "chunk_overlap: 0"))
    results = tmp_path / "results"
    assert main(["run", "--task", "mytask", "--tasks-dir", str(tmp_path / "tasks"), "--pipelines", "rag",
                 "--no-freshness", "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"),
                 "--mlflow", str(tmp_path / "mlruns")]) == 0
    (run_dir,) = (results / "mytask").iterdir()
    # run --mlflow exported the finished folder through `harness export`'s code (tests/test_mlflow.py reads one back)
    assert "mlflow: run " in capsys.readouterr().out and (tmp_path / "mlruns" / "mlflow.db").is_file()
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    cited = {p["cite"] for r in rows for p in r["passages"]}
    assert cited <= {"manual.pdf p. 1", "manual.pdf p. 2"} and cited, cited
    descale = next(r for r in rows if "descaled" in r["question"])
    assert descale["passages"][0]["cite"] == "manual.pdf p. 2"
    assert "(manual.pdf p. 2)" in (run_dir / "report.html").read_text()


def test_sheets_among_the_documents_are_not_listed_and_a_deleted_conversion_is_made_again(inputs, tmp_path, capsys):
    (inputs / "questions.csv").rename(inputs / "docs" / "questions.csv")
    code, out, err = run(tmp_path, capsys, questions=str(inputs / "docs" / "questions.csv"))
    assert code == 0 and "skipped" not in out, err
    (tmp_path / "tasks" / "mytask" / "docs" / "manual.md").unlink()
    code, out, err = run(tmp_path, capsys, questions=str(inputs / "docs" / "questions.csv"))
    assert code == 0 and "unchanged" not in out and (tmp_path / "tasks" / "mytask" / "docs" / "manual.md").is_file()
