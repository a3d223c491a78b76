"""harness as a library: run an experiment, or read one back, from Python (a notebook, a script, a test).

    import harness
    run = harness.run("coffee", arms=["base", "rag"])     # the CLI's `harness run --task coffee --pipelines base,rag`
    run.accuracy                                           # a pandas DataFrame, as accuracy.csv
    run.recommendation                                     # the sentence report.md gives
    harness.load_run("results/examples/coffee")            # a finished (or partial) run folder, read back

Options are the CLI's long options with underscores (`no_freshness=True`, `cache_dir=...`, `seeds=3`). Progress
goes through `logging` (logger "harness"): shown on stdout unless the caller configured logging first.
Heavy libraries load on the first call, not on `import harness`."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.run.options import RunOptions

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("harness")


@dataclass(frozen=True)
class Run:
    """A run folder's tables and what its report concludes, as Python objects."""
    folder: Path
    info: dict  # run.json: config, seed, versions, CPU, commit
    accuracy: pd.DataFrame
    significance: pd.DataFrame
    cost: pd.DataFrame
    freshness: pd.DataFrame
    verdict: list[str]  # the one-screen summary's sentences
    recommendation: str | None  # None where no arm finished yet

    @property
    def partial(self) -> bool:
        """True while (or if, after a kill) arms are still pending: the tables hold the arms done so far."""
        return bool(self.info.get("partial"))

    @property
    def report_html(self) -> Path:
        return self.folder / "report.html"

    @property
    def report_md(self) -> Path:
        return self.folder / "report.md"


def load_run(folder: str | Path) -> Run:
    """A finished or partial run folder, read back through the same checked readers the report uses; nothing in
    it is written."""
    from harness.report.render import assess

    path = Path(folder)
    a = assess(path)
    t = a.tables
    return Run(path, a.run.info, t["accuracy"], t["significance"], t["cost"], t["freshness"], a.verdict,
               a.recommendation)


class Console(logging.StreamHandler):
    """A handler that writes to whatever sys.stdout (or sys.stderr) is at the moment of writing: a notebook's or
    a test's captured stream replaces it after the handler is made."""

    def __init__(self, which: str):
        self.which = which
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self.which)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


def show_progress(level: int = logging.INFO) -> None:
    """Progress lines on stdout and warnings on stderr (as `harness: warning: ...`), at `level`; a caller that
    gave the "harness" logger handlers of its own keeps them."""
    log.setLevel(level)
    if log.handlers:
        return
    out = Console("stdout")
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err = Console("stderr")
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("harness: %(levelname_lower)s: %(message)s"))
    err.addFilter(_lower_level)
    log.addHandler(out)
    log.addHandler(err)
    log.propagate = False


def quiet_libraries() -> None:
    """Silence the libraries' loading bars ("Loading weights", "Writing model shards", one per arm) and notices:
    through their environment switches when they are not loaded yet, and their own calls when they are. A user's
    own setting of those variables wins."""
    import os

    for var, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
                       ("TRANSFORMERS_VERBOSITY", "error"), ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
        os.environ.setdefault(var, value)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets
        datasets.disable_progress_bars()


def _lower_level(record: logging.LogRecord) -> bool:
    record.levelname_lower = record.levelname.lower()
    return True


def execute(opts: RunOptions) -> list:
    """Every configuration the options ask for (one, or one per --sweep point), each into its run folder, with
    its reports rendered and, with `mlflow`, logged there. Returns experiment.Finished records, in order."""
    from harness.report.render import render
    from harness.run.experiment import experiment

    on_finished = None
    if opts.mlflow is not None:
        from harness.report.mlflow_export import client, export

        client(opts.mlflow)  # the store must open before minutes of work, not after

        def on_finished(done) -> None:
            log.info(export(done.folder, opts.mlflow or None).line())
    return experiment(opts, render, on_finished)


def run(task: str, arms: list[str] | str | None = None, model: str | None = None, **options) -> Run:
    """`harness run --task TASK` as a function: builds the arms (default: every arm), answers the test
    questions, writes the run folder under `results_dir` and returns it read back. With `sweep`, returns the
    last point's run (each point's folder is in the log)."""
    show_progress()
    quiet_libraries()
    done = execute(RunOptions.of(task, arms, model, **options))
    return load_run(done[-1].folder)


def sweep_table(opts: RunOptions, done: list) -> tuple[pd.DataFrame, Path]:
    """The sweep's combined table, written beside its runs as sweep.md / sweep.csv."""
    from harness.run.sweep import sweep_dir, write_sweep
    from harness.task.registry import find_task, tasks_dir

    task = find_task(opts.task, tasks_dir(opts.tasks_dir))
    out = sweep_dir(Path(opts.results_dir), task.name)
    return write_sweep(out, [(d.overrides, d.folder) for d in done], task.config.metric), out / "sweep.md"
