"""harness as a library (harness/api.py): a notebook's `harness.run` and `harness.load_run`, the command line's
output held to a golden run, and the configuration's path through a run that never returns to the CLI."""
import hashlib
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[1] / "results" / "examples"
GOLDEN = Path(__file__).parent / "golden" / "tiny_run.txt"
# Lines whose words depend on the machine (its CPU kind, free memory, bf16 rule): only their start is held.
MACHINE_LINES = ("memory estimate:", "time estimate:", "training precision:")


def masked(text: str) -> list[str]:
    """The output's words: numbers and timestamps masked, machine-dependent lines cut to their start."""
    out = []
    for line in text.splitlines():
        start = next((p for p in MACHINE_LINES if line.startswith(p)), None)
        out.append(start if start else re.sub(r"\d+", "#", line))
    return out


def test_a_notebook_runs_the_tiny_task_and_reads_every_table(tmp_path):
    run = harness.run("tiny", arms=["base", "prompt", "rag"], tasks_dir=str(FIXTURES), results_dir=str(tmp_path / "r"),
                      cache_dir=str(tmp_path / "c"), no_freshness=True)
    assert isinstance(run, harness.Run) and not run.partial
    assert run.folder.parent == tmp_path / "r" / "tiny" and run.report_html.is_file()
    assert set(run.accuracy.pipeline) == {"base", "prompt", "rag"}
    for name in ("accuracy", "significance", "cost", "freshness"):  # the very tables the CSVs were written from
        assert getattr(run, name).to_csv(index=False) == (run.folder / f"{name}.csv").read_text()
    assert {"a", "b", "p_holm", "significant"} <= set(run.significance.columns)
    assert set(run.cost.pipeline) == {"base", "prompt", "rag"}
    assert run.freshness.fresh_after_rebuild.isna().all()  # no_freshness: no update, no rebuild
    assert run.verdict and all(isinstance(s, str) for s in run.verdict)
    assert run.recommendation.startswith("Recommendation:")
    assert run.info["pipelines"] == ["base", "prompt", "rag"] and run.info["freshness"] is False


def test_an_unknown_option_is_refused_with_the_known_ones():
    with pytest.raises(HarnessError, match="unknown option.*no_freshnes.*known are.*no_freshness"):
        harness.run("tiny", no_freshnes=True)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", sorted(p.parent.name for p in EXAMPLES.glob("*/run.json")))
def test_load_run_reads_the_committed_examples_and_writes_nothing(name):
    folder = EXAMPLES / name
    before = _digest(folder)
    run = harness.load_run(folder)
    assert _digest(folder) == before
    saved = pd.read_csv(folder / "accuracy.csv")
    assert list(run.accuracy.pipeline) == list(saved.pipeline) and len(run.accuracy) > 0
    assert run.accuracy[run.info["config"]["metric"]].round(6).tolist() == \
        saved[run.info["config"]["metric"]].round(6).tolist()
    assert run.recommendation in (folder / "report.md").read_text()


def test_the_command_line_says_what_the_golden_run_said(tiny_run):
    """The session's run of the tiny task (tests/conftest.py), word for word against tests/golden/tiny_run.txt
    (numbers masked). Regenerate the golden only for a change of output you mean: see its first line."""
    said = masked((tiny_run.parents[2] / "stdout.txt").read_text())
    golden = GOLDEN.read_text().splitlines()[1:]
    # The verdict's sentences depend on the answers, which a CPU training in bf16 may change: held here are the
    # progress lines before them, that there are some, and the report's path after them.
    cut = next(i for i, line in enumerate(golden) if line.startswith("- "))
    assert said[:cut] == golden[:cut]
    assert said[cut].startswith("- ") and said[-1] == golden[-1]
    assert not any(line.startswith("{'loss'") or line.startswith("{'eval_loss'") for line in said)


def test_between_arms_the_run_never_returns_to_the_command_line(tmp_path):
    """The configuration travels from the CLI into one RunOptions; from the first arm to the last, no function
    of harness/cli.py runs (the arms, the partial reports and the run folder are the library's)."""
    from harness.cli import main

    cli = str(Path(harness.__file__).parent / "cli.py")
    seen, depth = [], {"in_arms": 0}

    def profile(frame, event, arg):
        if event != "call":
            if event == "return" and frame.f_code.co_name == "run_task":
                depth["in_arms"] -= 1
            return
        if frame.f_code.co_name == "run_task":
            depth["in_arms"] += 1
        elif depth["in_arms"] and frame.f_code.co_filename == cli:
            seen.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        code = main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(tmp_path / "r"),
                     "--cache-dir", str(tmp_path / "c"), "--pipelines", "base,prompt", "--no-freshness", "-q"])
    finally:
        sys.setprofile(None)
    assert code == 0 and seen == []
    assert depth["in_arms"] == 0
