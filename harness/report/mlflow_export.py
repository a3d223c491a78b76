"""A finished run folder into MLflow, where teams compare experiments: `harness export RUN --mlflow [URI]`, and
`harness run --mlflow` calls the same function once its folder is complete (one code path).

One MLflow run per harness run (experiment: the task's name), and a nested run per arm:
- params: what run.json records to reproduce the run: the task fingerprint, arms, every config key, model and
  embedder, CPU kind, git commit, library versions; on each arm's run, what the arm is and its cost table's
  words (weights, context, index kind).
- metrics: every arm x knowledge group x metric from accuracy.csv with its interval, and cost.csv's,
  freshness.csv's and retrieval.csv's figures; on the arm's run as `all_stable/contains`, on the parent as
  `rag/all_stable/contains` so one table compares arms.
- artifacts (on the parent): report.md, report.html, run.json, the CSV tables and the figures.

The store: MLflow 3's file store (mlruns/ of folders) is in maintenance mode and refuses to open unless
MLFLOW_ALLOW_FILE_STORE is set, and MLflow recommends SQLite, which needs no server. So `--mlflow` alone means
mlruns/mlflow.db with artifacts in mlruns/artifacts/; a folder means the same inside it; an explicit URI
(sqlite:///x.db, file:./mlruns, http://server) is used as given. Exporting a run twice finds the first export
(by a tag holding the run's identity) and adds nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.run.files import RUN_INFO, read_run_info, read_table

DEFAULT_STORE = "mlruns"
RUN_KEY = "harness.run_key"
ARTIFACTS = ("report.md", "report.html", RUN_INFO)
TABLES = {"accuracy.csv": "", "cost.csv": "cost/", "freshness.csv": "freshness/", "retrieval.csv": "retrieval/"}
MAX_PARAM = 6000  # MLflow's limit on a param's value


@dataclass(frozen=True)
class Exported:
    run_id: str
    experiment: str
    uri: str
    arms: int
    params: int
    metrics: int
    artifacts: int
    already: bool = False  # the run had been exported before: nothing added

    def line(self) -> str:
        if self.already:
            return f"mlflow: already exported as run {self.run_id} in experiment {self.experiment!r} at {self.uri}"
        return (f"mlflow: run {self.run_id} in experiment {self.experiment!r} at {self.uri} ({self.arms} arm runs, "
                f"{self.params} params, {self.metrics} metrics, {self.artifacts} artifacts)")


def tracking_uri(given: str | None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None for the store's own) from --mlflow's value."""
    given = given or DEFAULT_STORE
    if re.match(r"^[a-z][a-z0-9+.-]*:", given) and not re.match(r"^[A-Za-z]:[\\/]", given):
        if given.startswith("sqlite:///"):
            db = Path(given.removeprefix("sqlite:///"))
            return given, (db.parent.resolve() / "artifacts").as_uri()
        return given, None
    folder = Path(given).resolve()
    if folder.suffix == ".db":
        return f"sqlite:///{folder}", (folder.parent / "artifacts").as_uri()
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def client(given: str | None):
    """An MlflowClient on the store, created if new; one line if MLflow is not installed or the store won't open."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise HarnessError("--mlflow needs MLflow, which is not installed: pip install 'harness[mlflow]' (or `make "
                           "install`)") from None
    uri, artifacts = tracking_uri(given)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name: MLflow 3 refuses it otherwise
    for name in ("mlflow", "alembic"):  # table creation chatter on a new store, not news to the user
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return MlflowClient(tracking_uri=uri), uri, artifacts
    except Exception as e:  # a URI MLflow cannot open: one line, with what it said
        raise HarnessError(f"--mlflow {given or DEFAULT_STORE}: MLflow cannot open {uri} "
                           f"({' '.join(str(e).split())[:200]})") from None


def _key(text: str) -> str:
    """A name MLflow accepts in a key (letters, digits, _ - . / and spaces): anything else becomes "_"."""
    return re.sub(r"[^\w\-./]+", "_", str(text)).strip("_") or "_"


def _flat(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{_key(k)}" if prefix else _key(k), v))
        return out
    text = value if isinstance(value, str) else json.dumps(value)
    return {prefix: text[:MAX_PARAM]}


def run_params(info: dict) -> dict[str, str]:
    """run.json's inputs as params: what someone comparing runs filters by."""
    keys = ("task", "task_fingerprint", "model", "model_file", "embedder", "seed", "device", "dtype", "engine",
            "torch_threads", "git_commit", "freshness", "seeds", "updates_per_year", "started", "platform")
    out = {k: str(info.get(k)) for k in keys if k in info}
    out["arms"] = ",".join(info["pipelines"])
    out["cpu"] = str((info.get("cpu") or {}).get("kind", ""))
    out["training_pairs"] = str((info.get("pair_generation") or {}).get("training_pairs", ""))
    for section in ("config", "sizes", "versions", "prices"):
        out.update(_flat(section, info.get(section) or {}))
    return {k: v[:MAX_PARAM] for k, v in out.items()}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and not isinstance(value, bool) else None


def arm_figures(run_dir: Path, arm: str) -> tuple[dict[str, float], dict[str, str]]:
    """One arm's metrics (accuracy by knowledge group with intervals, cost, freshness, retrieval) and the words
    of its tables as params."""
    metrics, params = {}, {}
    for name, prefix in TABLES.items():
        path = run_dir / name
        if not path.is_file() or not path.read_text(encoding="utf-8", errors="replace").strip():
            continue  # freshness.csv is absent from some runs, retrieval.csv empty when no question names its doc
        table = read_table(run_dir, name, ["pipeline"])
        for row in table[table["pipeline"] == arm].to_dict("records"):
            group = f"{_key(row['knowledge'])}/" if "knowledge" in row else ""
            for col, value in row.items():
                if col in ("pipeline", "knowledge") or pd.isna(value):
                    continue
                if (number := _number(value)) is not None:
                    metrics[f"{prefix}{group}{_key(col)}"] = number
                elif prefix:
                    params[f"{prefix.rstrip('/')}.{_key(col)}"] = str(value)[:MAX_PARAM]
    return metrics, params


def _millis(stamp: str | None) -> int | None:
    try:
        return int(datetime.strptime(stamp or "", "%Y-%m-%dT%H:%M:%S").timestamp() * 1000)
    except ValueError:
        return None


def _log(mlflow_client, run_id: str, metrics: dict[str, float], params: dict[str, str], when: int) -> None:
    from mlflow.entities import Metric, Param

    ms = [Metric(k, v, when, 0) for k, v in metrics.items()]
    ps = [Param(k, v) for k, v in params.items()]
    for i in range(0, max(len(ms), len(ps)), 100):  # MLflow takes at most 100 params (1000 metrics) a batch
        mlflow_client.log_batch(run_id, metrics=ms[i:i + 100], params=ps[i:i + 100])


def run_identity(info: dict, run_dir: Path) -> str:
    """What makes two exports the same harness run: the task, its data, the folder's name and when it started."""
    blob = json.dumps([info.get("task"), info.get("task_fingerprint"), run_dir.name, info.get("started")])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _experiment(mlflow_client, name: str, artifacts: str | None) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    return found.experiment_id if found else mlflow_client.create_experiment(name, artifact_location=artifacts)


def _files(run_dir: Path) -> list[Path]:
    """The artifacts: the reports, run.json, every CSV table and every figure."""
    named = [run_dir / n for n in ARTIFACTS if (run_dir / n).is_file()]
    return named + sorted(run_dir.glob("*.csv")) + sorted(run_dir.glob("*.png"))


def export(run_dir: Path, given: str | None = None) -> Exported:
    """Logs a finished run folder as an MLflow run with one nested run per arm (see the module's docstring)."""
    if not run_dir.is_dir() or run_dir.name.endswith(".partial"):
        raise HarnessError("not a finished run folder (give one written by `harness run`, e.g. results/TASK/STAMP)",
                           run_dir)
    info = read_run_info(run_dir)
    read_table(run_dir, "accuracy.csv", ["knowledge", "pipeline"])
    figures = {arm: arm_figures(run_dir, arm) for arm in info["pipelines"]}  # a damaged table: one line, first
    mlflow_client, uri, artifacts = client(given)
    experiment = _experiment(mlflow_client, info["task"], artifacts)
    identity = run_identity(info, run_dir)
    earlier = mlflow_client.search_runs([experiment], filter_string=f"tags.`{RUN_KEY}` = '{identity}'")
    if earlier:
        return Exported(earlier[0].info.run_id, info["task"], uri, 0, 0, 0, 0, already=True)
    start, end = _millis(info.get("started")), _millis(info.get("finished"))
    when = end or start or 0
    parent = mlflow_client.create_run(experiment, start_time=start, run_name=f"{info['task']} {run_dir.name}",
                                      tags={"harness.run_folder": str(run_dir.resolve())}).info.run_id
    params, metrics = run_params(info), {}
    try:
        for arm, (arm_metrics, arm_params) in figures.items():
            arm_params["arm"] = str((info.get("arms") or {}).get(arm, arm))[:MAX_PARAM]
            child = mlflow_client.create_run(experiment, start_time=start, run_name=arm,
                                             tags={"mlflow.parentRunId": parent, "harness.arm": arm}).info.run_id
            _log(mlflow_client, child, arm_metrics, arm_params, when)
            mlflow_client.set_terminated(child, end_time=end)
            metrics.update({f"{_key(arm)}/{k}": v for k, v in arm_metrics.items()})
        _log(mlflow_client, parent, metrics, params, when)
        files = _files(run_dir)
        for f in files:
            mlflow_client.log_artifact(parent, str(f))
    except Exception as e:
        mlflow_client.set_terminated(parent, status="FAILED")
        raise HarnessError(f"MLflow export to {uri} failed ({' '.join(str(e).split())[:200]}); the run folder is "
                           f"unchanged: export it again with `harness export {run_dir} --mlflow {given or ''}`".rstrip(),
                           run_dir) from None
    mlflow_client.set_tag(parent, RUN_KEY, identity)  # last: a failed export is not taken for a finished one
    mlflow_client.set_terminated(parent, end_time=end)
    return Exported(parent, info["task"], uri, len(info["pipelines"]), len(params), len(metrics), len(files))
