"""The committed example task, tasks/xorg-docs, is what the import makes of real documents nobody on the project
wrote: X.Org's, from Debian's xorg-docs package (examples/import/xorg-docs/README.md has the package, version
and licence). Rebuilt here from its sources, it must match what is committed, and keep the pages and the words."""
import json
import re
import shlex
from pathlib import Path

from harness.cli import main

REPO = Path(__file__).parents[1]
EXAMPLE = REPO / "examples" / "import" / "xorg-docs"
COMMITTED = REPO / "tasks" / "xorg-docs"


def import_example(tasks: Path) -> int:
    """The import command examples/import/xorg-docs/README.md gives."""
    readme = (EXAMPLE / "README.md").read_text()
    command = re.search(r"harness new-task xorg-docs (.+?)\n```", readme, re.S).group(1)
    args = shlex.split(command.replace("\\\n", " "))
    argv = ["new-task", "x", *args, "--tasks-dir", str(tasks)]
    return main([str(REPO / a) if a.startswith("examples/") else a for a in argv])


def test_the_real_debian_documents_convert_with_their_pages(tmp_path, capsys):
    """xorg-docs' PDFs keep their pages, running headers and page numbers go, words broken at a line's end are
    mended only where the document spells them whole; its HTML loses its <style>."""
    tasks = tmp_path / "tasks"
    assert import_example(tasks) == 0, capsys.readouterr().err
    versions = (tasks / "x" / "docs" / "Versions.md").read_text()
    assert versions.count("<!-- page ") == 5
    page4 = versions.split("<!-- page 4 -->")[1].split("<!-- page 5 -->")[0]
    assert "1.7.99.900 The start of the 1.8 feature freeze." in page4
    assert "xorg-server 1.0 module" in versions  # a real hyphen at a line's end is kept...
    xkb = (tasks / "x" / "docs" / "XKB-Config.md").read_text()
    assert "combining them back" in xkb and "con-figuration" not in xkb  # ...a typesetter's break is mended
    assert "{" not in (tasks / "x" / "docs" / "dps.md").read_text()  # the page's CSS is gone
    for rel in ("docs/Versions.md", "docs/XKB-Config.md", "docs/secint.md", "docs/dps.md", "updates/docs/README.md",
                "test.jsonl"):
        assert (tasks / "x" / rel).read_text() == (COMMITTED / rel).read_text(), rel


def test_every_answer_is_in_its_document():
    """Each reference answer of the example's questions is a verbatim span of the converted document it names."""
    for line in (COMMITTED / "test.jsonl").read_text().splitlines():
        row = json.loads(line)
        text = " ".join((COMMITTED / row["doc"]).read_text().split())
        assert all(a in text for a in row["answers"]), row
    assert 30 <= len((COMMITTED / "test.jsonl").read_text().splitlines()) <= 40


def test_the_example_validates_and_cites_pages(capsys):
    assert main(["validate", "--task", "xorg-docs", "--tasks-dir", str(REPO / "tasks")]) == 0
    assert "xorg-docs: ok" in capsys.readouterr().out
    from harness.retrieval.chunking import chunk_document
    from harness.task.folder import load_task

    task = load_task(COMMITTED)
    secint = next(d for d in task.knowledge.docs if d.source == "secint.pdf")
    assert {c.cite for c in chunk_document(secint, 120, 30)} >= {"secint.pdf p. 5", "secint.pdf p. 8"}


