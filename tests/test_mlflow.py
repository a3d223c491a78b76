"""A finished run in MLflow (issue 40): the committed coffee run exported into a store in a temp folder, with no
server, and read back through MLflow's own client: params, metrics with intervals, one nested run per arm,
artifacts; a second export adds nothing."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report.mlflow_export import tracking_uri

pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

COFFEE = Path(__file__).parents[1] / "results" / "examples" / "coffee"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """coffee exported once through the CLI into a fresh store; (client, parent run, arm runs, printed line)."""
    store = tmp_path_factory.mktemp("mlruns")
    code = main(["export", str(COFFEE), "--mlflow", str(store)])
    assert code == 0
    client = MlflowClient(tracking_uri=tracking_uri(str(store))[0])
    (experiment,) = [e for e in client.search_experiments() if e.name == "coffee"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    arms = {r.data.tags["harness.arm"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    return client, parent, arms, store


def test_params_come_from_run_json(exported):
    import json

    _, parent, _, _ = exported
    info = json.loads((COFFEE / "run.json").read_text())
    p = parent.data.params
    assert p["task_fingerprint"] == info["task_fingerprint"] and p["git_commit"] == info["git_commit"]
    assert p["model"] == "smollm2-135m" and p["embedder"] == "all-minilm-l6-v2"
    assert p["arms"] == "base,prompt,rag,finetune,raft,cpt" and p["cpu"] == info["cpu"]["kind"]
    assert p["config.retrieval.top_k"] == str(info["config"]["retrieval"]["top_k"])
    assert parent.info.status == "FINISHED" and parent.data.tags["mlflow.runName"].startswith("coffee ")


def test_every_arm_knowledge_and_metric_with_its_interval(exported):
    _, parent, arms, _ = exported
    assert sorted(arms) == ["base", "cpt", "finetune", "prompt", "raft", "rag"]
    accuracy = pd.read_csv(COFFEE / "accuracy.csv")
    for row in accuracy.to_dict("records"):
        group = row["knowledge"].replace(" ", "_")
        arm = arms[row["pipeline"]].data.metrics
        for metric in ("contains", "contains_ci95_low", "contains_ci95_high", "f1", "semantic"):
            assert arm[f"{group}/{metric}"] == pytest.approx(row[metric])
            assert parent.data.metrics[f"{row['pipeline']}/{group}/{metric}"] == pytest.approx(row[metric])


def test_cost_and_freshness_figures(exported):
    _, _, arms, _ = exported
    cost = pd.read_csv(COFFEE / "cost.csv").set_index("pipeline")
    fresh = pd.read_csv(COFFEE / "freshness.csv").set_index("pipeline")
    rag = arms["rag"].data
    assert rag.metrics["cost/latency_mean_s"] == pytest.approx(cost.loc["rag", "latency_mean_s"])
    assert rag.metrics["cost/usd_per_1k_questions"] == pytest.approx(cost.loc["rag", "usd_per_1k_questions"])
    assert rag.metrics["freshness/fresh_after_rebuild"] == pytest.approx(fresh.loc["rag", "fresh_after_rebuild"])
    assert rag.params["cost.index_kind"] == "hybrid" and rag.params["freshness.rebuild"] == "re-indexed"
    assert "retrieval/hit_at_k" in rag.metrics and "arm" in rag.params


def test_artifacts_are_the_reports_tables_and_figures(exported):
    client, parent, _, _ = exported
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "report.html", "run.json", "accuracy.csv", "cost.csv", "freshness.csv",
            "accuracy.png"} <= names
    local = Path(client.download_artifacts(parent.info.run_id, "report.md"))
    assert local.read_text() == (COFFEE / "report.md").read_text()


def test_a_second_export_adds_nothing(exported, capsys):
    client, parent, arms, store = exported
    capsys.readouterr()
    assert main(["export", str(COFFEE), "--mlflow", str(store)]) == 0
    assert f"already exported as run {parent.info.run_id}" in capsys.readouterr().out
    assert len(client.search_runs([parent.info.experiment_id])) == 1 + len(arms)


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--mlflow", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run.json" in err and "Traceback" not in err
    broken = tmp_path / "run"
    shutil.copytree(COFFEE, broken)
    (broken / "accuracy.csv").write_text("nothing,useful\n1,2\n")
    assert main(["export", str(broken), "--mlflow", str(tmp_path / "store")]) == 2
    assert "accuracy.csv: no column knowledge, pipeline" in capsys.readouterr().err


def test_uris():
    assert tracking_uri("sqlite:///x/m.db")[0] == "sqlite:///x/m.db"
    uri, artifacts = tracking_uri(None)
    assert uri.endswith("/mlruns/mlflow.db") and artifacts.endswith("/mlruns/artifacts")
    assert tracking_uri("http://127.0.0.1:5000") == ("http://127.0.0.1:5000", None)


def test_run_offers_mlflow(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--mlflow [URI]" in capsys.readouterr().out
