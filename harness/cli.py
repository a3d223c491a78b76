"""`harness` on the command line: run, train, list, validate, new-task, report, export, compare.\n\nEach command parses its options and calls the library (harness/api.py and the modules below it); nothing here\nruns an experiment itself."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError, printable
from harness.cli_args import IMPORT_DEFAULTS, IMPORT_FLAGS, build_parser
from harness.run.options import RunOptions

if TYPE_CHECKING:
    pass


def _summary(verdict: list[str], run_dir: Path) -> None:
    """The one screen a user reads at the end: the verdict, then where the full report is."""
    print("\n" + "\n".join("- " + line.replace("**", "") for line in verdict))
    print(f"\nreport: {run_dir / 'report.md'}")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.api import execute, sweep_table

    opts = RunOptions.from_namespace(args)
    done = execute(opts)
    if opts.sweep:
        table, path = sweep_table(opts, done)
        print("\n" + table.drop(columns="run").to_string(index=False))
        print(f"\nsweep table: {path}")
    else:
        _summary(done[-1].verdict, done[-1].folder)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from harness.run.train_only import train

    train(RunOptions.from_namespace(args))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.task.registry import available, find_task, tasks_dir

    root = tasks_dir(args.tasks_dir)
    names = available(root)
    if not names:
        print(f"no tasks in {root} (create one with `harness new-task NAME`)")
        return 0
    print(f"{'task':<24}{'docs':>6}{'train':>7}{'test':>6}{'fresh':>7}  description")
    for n in names:
        try:
            t = find_task(n, root)
            s = t.sizes
            print(f"{n:<24}{s['docs']:>6}{s['train']:>7}{s['test']:>6}{s['fresh']:>7}  {t.config.description}")
        except HarnessError as e:
            print(f"{n:<24}  invalid: {e}")
        except Exception as e:  # one broken folder must not hide the others
            print(f"{n:<24}  invalid: {_one_line(e)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.run.validate import validate

    print("\n".join(validate(args.task, args.tasks_dir, args.deployment, args.pipelines)))
    return 0


def cmd_new_task(args: argparse.Namespace) -> int:
    from harness.task.registry import tasks_dir
    from harness.task.scaffold import new_task

    where = f" --tasks-dir {shlex.quote(args.tasks_dir)}" if args.tasks_dir else ""
    given = [f"--{k.replace('_', '-')}" for k in IMPORT_FLAGS if getattr(args, k) not in (None, *IMPORT_DEFAULTS)]
    if args.docs is not None or given:
        if args.docs is None or args.questions is None:
            raise HarnessError(f"{', '.join(given) or '--docs'}: an import needs both --docs DIR and --questions FILE "
                               "(without either, new-task writes a template to fill in)")
        return _import_task(args, where)
    path = new_task(args.name, tasks_dir(args.tasks_dir))
    print(f"created {path}: replace the example files (marked harness:example) in docs/, train.jsonl, test.jsonl "
          f"and updates/, edit task.yaml, then `harness validate --task {shlex.quote(args.name)}{where}`")
    return 0


def _import_task(args: argparse.Namespace, where: str) -> int:
    from harness.task.folder import load_task
    from harness.task.importer import Inputs, import_task
    from harness.task.questions import Columns
    from harness.task.registry import tasks_dir

    cols = Columns(args.question_col, args.answer_col, args.answer_sep, args.fresh_col, args.doc_col, args.topic_col,
                   args.id_col)
    inputs = Inputs(Path(args.docs), Path(args.questions), Path(args.updates) if args.updates else None,
                    Path(args.train) if args.train else None)
    made = import_task(args.name, tasks_dir(args.tasks_dir), inputs, cols, args.description)
    print("\n".join(made.lines(inputs.train.name if inputs.train else None)))
    if not made.unchanged:
        task = load_task(made.path)
        print(f"validate: ok ({', '.join(f'{k} {v}' for k, v in task.sizes.items())}); next: "
              f"harness run --task {shlex.quote(args.name)}{where}")
    return 0


def _export(run_dir: Path, uri: str) -> None:
    from harness.report.mlflow_export import export

    print(export(run_dir, uri or None).line(), flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    _export(Path(args.run_dir), args.mlflow)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.task.deployment import from_option
    from harness.report.render import render

    profile = from_option(args.deployment) if args.deployment else None
    run_dir = Path(args.run_dir)  # render reads it through harness.run.files: damaged files are one-line errors
    _summary(render(run_dir, profile), run_dir)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare

    print(compare(Path(args.run_a), Path(args.run_b)), end="")
    if args.html:
        from harness.report.html import write_compare_html
        print(f"\ncompare page: {write_compare_html(Path(args.run_a), Path(args.run_b), Path(args.html))}")
    return 0


COMMANDS = {"run": cmd_run, "train": cmd_train, "list": cmd_list, "validate": cmd_validate, "new-task": cmd_new_task,
            "report": cmd_report, "export": cmd_export, "compare": cmd_compare}


def _output(verbosity: int) -> None:
    """Progress at INFO on stdout, warnings on stderr; -q shows warnings and the summary only, -v adds debug lines
    and the libraries' own loading bars and notices, silenced otherwise."""
    import logging

    from harness.api import quiet_libraries, show_progress

    show_progress({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    if verbosity <= 0:
        quiet_libraries()
        # Deprecation chatter from the libraries says nothing about the run; real errors still surface.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file")


def _one_line(e: BaseException) -> str:
    """An unexpected exception as one line: its message and the harness line it came from."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if Path(__file__).parent in Path(f.filename).parents] or frames
    where = f" at {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
    text = printable(" ".join(str(e).split())) or "(no message)"
    return f"{text} ({type(e).__name__}{where}; set HARNESS_DEBUG=1 for the traceback)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _output(getattr(args, "verbosity", 0))
    debug = os.environ.get("HARNESS_DEBUG", "") not in ("", "0")
    try:
        return COMMANDS[args.command](args)
    except HarnessError as e:
        if debug:
            traceback.print_exc()
        print(f"harness: error: {printable(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; no results were written", file=sys.stderr)
        return 130
    except Exception as e:  # every failure is one line; HARNESS_DEBUG=1 shows where it really came from
        if debug:
            raise
        print(f"harness: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
