"""Cost at your scale (issue 25): deployment profiles, and each arm's measured tokens projected onto one."""
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.run import preflight
from harness.cli import main
from harness.task.deployment import Deployment, Profile, builtin_names, from_option
from harness.report.projection import measured, project, projection_table
from test_task_errors import append
from test_untrusted import no_model, refused  # noqa: F401  (no_model is a fixture)

BUILTINS = Path(__file__).parents[1] / "harness" / "task" / "deployments"

PLAN = {"params": 1e9, "training": {"usd_per_gpu_hour": 3.6, "peak_flops": 1e12, "mfu": 0.5},
        "questions_per_day": 100, "updates_per_year": 12, "usd_per_written_pair": 0.5}
GPU = Profile("gpu", Deployment.model_validate(
    {**PLAN, "serving": {"kind": "gpu", "usd_per_gpu_hour": 3.6, "gpus": 2, "tokens_per_second": 1000}}))
API = Profile("api", Deployment.model_validate(
    {**PLAN, "serving": {"kind": "api", "usd_per_million_input_tokens": 2.0, "usd_per_million_output_tokens": 10.0}}))

FINETUNE = {"weights": "qa-lora", "context": "none", "prompt_tokens_mean": 80, "new_tokens_mean": 20,
            "train_tokens": 90_000, "train_examples": 40, "demonstrations_shown": 0,
            "build_usd": 0.01, "usd_per_1k_questions": 0.02}
FINETUNE_TIMING = {"rebuild_note": "continued: 8 new + 8 replayed examples", "rebuild_cost": {"train_tokens": 9_000}}
RAG = {"weights": "base", "context": "retrieved", "prompt_tokens_mean": 480, "new_tokens_mean": 20,
       "demonstrations_shown": 2, "build_usd": 0.0, "usd_per_1k_questions": 0.05,
       "demo_selection": [{"demonstrations": 2, "passages_each": 1, "eval_questions": 8, "chosen": True}]}
RAG_TIMING = {"rebuild_note": "re-indexed", "rebuild_cost": {}}


def test_projection_matches_hand_arithmetic():
    row = project(measured(FINETUNE, FINETUNE_TIMING), GPU)
    # Serving a question on a GPU: (80 + 20) tokens / 1000 tokens/s = 0.1 s of a 2-GPU replica at $3.6/GPU-hour
    # = 0.1 * 2 * 3.6 / 3600 = $0.0002; a month = 100 questions/day * 30 days * $0.0002 = $0.60.
    assert row["projected_usd_per_1k_questions"] == pytest.approx(0.2)
    assert row["projected_serving_usd_per_month"] == pytest.approx(0.60)
    # Build, LoRA: 4 * N * tokens = 4 * 1e9 * 90,000 = 3.6e14 FLOPs; / (1e12 FLOP/s * MFU 0.5) = 720 s
    # = 0.2 GPU-hours * $3.6 = $0.72.
    assert row["projected_build_usd"] == pytest.approx(0.72)
    # A rebuild continued on 9,000 tokens: a tenth of that, $0.072; 12 updates a year = $0.864.
    assert row["projected_rebuilds_usd_per_year"] == pytest.approx(0.864)
    # 40 written pairs * $0.5 = $20; a year = 0.72 + 12 * 0.60 + 0.864 + 20 = $28.784.
    assert row["projected_pairs_usd"] == pytest.approx(20.0)
    assert row["projected_usd_per_year"] == pytest.approx(28.784)
    # Through an API instead: (80 * $2 + 20 * $10) / 1e6 = $0.00036 a question.
    assert project(measured(FINETUNE, FINETUNE_TIMING), API)["projected_usd_per_1k_questions"] == pytest.approx(0.36)


def test_break_even_by_hand():
    saved = {"costs": {"finetune": FINETUNE, "rag": RAG}, "timings": {"finetune": FINETUNE_TIMING, "rag": RAG_TIMING}}
    cost = pd.DataFrame([{"pipeline": n, **c} for n, c in saved["costs"].items()])
    table = projection_table(saved, ["finetune", "rag"], GPU, cost).set_index("pipeline")
    # rag: no training, re-indexing unpriced; 2 shown + 8 held-out pairs that chose the format = 10 pairs = $5.
    # Serving (480 + 20) / 1000 s * 2 * 3.6 / 3600 = $0.001 a question.
    assert table.loc["rag", "projected_fixed_usd_per_year"] == pytest.approx(5.0)
    assert table.loc["rag", "projected_usd_per_1k_questions"] == pytest.approx(1.0)
    # finetune's fixed a year: 0.72 + 0.864 + 20 = $21.584, $16.584 more than rag's; each question $0.0008 cheaper.
    # Over a year of 12 x 30 days: 16.584 / (360 * 0.0008) = 57.58... questions a day.
    assert table.loc["finetune", "break_even"] == "cheaper than rag above 58 questions/day"
    assert pd.isna(table.loc["rag", "break_even"])
    assert table.loc["finetune", "measured_usd_build_plus_1k_questions"] == pytest.approx(0.03)  # beside, kept


def test_an_arm_is_projected_from_what_it_is_never_from_its_name():
    saved = {"costs": {"finetune": FINETUNE, "my-own-arm": FINETUNE},
             "timings": {"finetune": FINETUNE_TIMING, "my-own-arm": FINETUNE_TIMING}}
    cost = pd.DataFrame([{"pipeline": n, **c} for n, c in saved["costs"].items()])
    table = projection_table(saved, ["finetune", "my-own-arm"], GPU, cost).drop(columns="pipeline")
    assert table.iloc[0].equals(table.iloc[1])


def test_pairs_written_from_the_documents_cost_no_writing_hours():
    assert measured(FINETUNE, FINETUNE_TIMING).written_pairs == 40  # older runs: every pair by hand
    generated = {**FINETUNE, "training_pairs": {"generated": 40}}
    assert measured(generated, FINETUNE_TIMING).written_pairs == 0
    both = {**FINETUNE, "training_pairs": {"written": 25, "generated": 15}}
    assert measured(both, FINETUNE_TIMING).written_pairs == 25
    # A run whose pairs were all generated: the demonstrations rag shows were generated too.
    assert measured(RAG, RAG_TIMING).written_pairs == 10
    assert measured(RAG, RAG_TIMING, {"training_pairs": "generated"}).written_pairs == 0


GENERATION = {"training_pairs": "generated", "parts": {"original": {"prompt_tokens": 150_000, "new_tokens": 10_000},
                                                       "update": {"prompt_tokens": 15_000, "new_tokens": 1_000}}}


def test_generated_pairs_cost_their_generation_tokens_by_hand():
    tuned = {**FINETUNE, "training_pairs": {"generated": 40}}
    row = project(measured(tuned, FINETUNE_TIMING, GENERATION), GPU)
    # Writing the pairs from docs/ is serving the generator: (150,000 + 10,000) tokens / 1000 tokens/s = 160 s of a
    # 2-GPU replica at $3.6/GPU-hour = 160 * 2 * 3.6 / 3600 = $0.32, paid once; no pair was written by hand.
    assert row["projected_pair_generation_usd"] == pytest.approx(0.32)
    assert row["projected_pairs_usd"] == pytest.approx(0.32)
    # Each update: its pairs, (15,000 + 1,000) / 1000 = 16 s = $0.032, beside the continued training's $0.072;
    # 12 updates a year = 12 * (0.072 + 0.032) = $1.248.
    assert row["projected_rebuilds_usd_per_year"] == pytest.approx(1.248)
    # A year: 0.72 build + 12 * 0.60 serving + 1.248 rebuilds + 0.32 pairs = $9.488.
    assert row["projected_usd_per_year"] == pytest.approx(9.488)
    # rag showed demonstrations drawn from generated pairs: it owes their writing, not the update's (it re-indexes).
    rag = project(measured(RAG, RAG_TIMING, GENERATION), GPU)
    assert rag["projected_pairs_usd"] == pytest.approx(0.32) and rag["projected_rebuilds_usd_per_year"] == 0
    # An arm that used no pair owes nothing; hand-written runs owe no generation.
    bare = {**RAG, "demonstrations_shown": 0, "demo_selection": []}
    assert project(measured(bare, RAG_TIMING, GENERATION), GPU)["projected_pairs_usd"] == 0
    assert project(measured(FINETUNE, FINETUNE_TIMING), GPU)["projected_pair_generation_usd"] == 0
    # A run from before the generator's tokens were recorded: the pairs' cost, and so the year, is unknown.
    old = {"training_pairs": "generated", "parts": {"original": {"seconds": 60.0}}}
    assert project(measured(tuned, FINETUNE_TIMING, old), GPU)["projected_usd_per_year"] is None


def test_older_runs_without_training_tokens_project_what_they_can():
    old = {k: v for k, v in FINETUNE.items() if k != "train_tokens"}
    row = project(measured(old, {}), GPU)
    assert row["projected_build_usd"] is None and row["projected_usd_per_year"] is None
    assert row["projected_serving_usd_per_month"] == pytest.approx(0.60)


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_profiles_load(name):
    profile = from_option(name)
    assert profile.params > 1e9 and profile.spec.questions_per_day > 0 and profile.spec.description
    # Each number carries its assumption beside it, as a comment.
    values = [s for s in (BUILTINS / f"{name}.yaml").read_text().splitlines() if re.match(r"\s*\w+: [\d.]", s)]
    assert len(values) >= 8 and all("#" in s for s in values), name
    assert {"h100-8b", "h100x8-70b", "api-8b"} <= set(builtin_names())


def test_params_come_from_a_model_folders_config(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({  # SmolLM2-135M's shape
        "hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536, "num_attention_heads": 9,
        "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True}))
    text = (BUILTINS / "h100-8b.yaml").read_text().replace("params: 8.03e+9", "model: model")
    (tmp_path / "p.yaml").write_text(text)
    assert from_option(str(tmp_path / "p.yaml")).params == 134_515_008


def _bad(tmp_path: Path, old: str, new: str, base: str = "h100-8b") -> tuple[Path, int]:
    text = (BUILTINS / f"{base}.yaml").read_text()
    assert old in text
    text = text.replace(old, new)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path, next(i for i, s in enumerate(text.splitlines(), 1) if new.split("#")[0].strip() in s)


@pytest.mark.parametrize("old,new,says", [
    ("usd_per_million_input_tokens: 0.20", "usd_per_million_input_tokens: -0.20", "greater than or equal to 0"),
    ("tokens_per_second: 5000", "tokens_per_second: 0", "greater than 0"),
    ("mfu: 0.3 ", "mfu: 3 ", "less than or equal to 1"),
    ("peak_flops: 9.89e+14", "peak_flop: 9.89e+14", "unknown key"),
])
def test_bad_profile_is_refused_in_one_line_before_any_model(tasks_dir, tmp_path, capsys, monkeypatch, no_model,
                                                             old, new, says):
    def resolved(*a, **k):
        raise AssertionError("MODEL LOADED")
    monkeypatch.setattr(preflight, "check_model", resolved)  # not even looked up
    path, line = _bad(tmp_path, old, new, "api-8b" if "input_tokens" in old else "h100-8b")
    msg = refused(capsys, tasks_dir, "--deployment", str(path))
    assert f"{path}:{line}: " in msg and says in msg


def test_task_yaml_names_a_profile_inside_the_task_folder_only(tasks_dir, capsys):
    append(tasks_dir / "tiny" / "task.yaml", "deployment: ../../outside.yaml")
    line = len((tasks_dir / "tiny" / "task.yaml").read_text().splitlines())
    assert f"task.yaml:{line}: deployment: '../../outside.yaml' leaves the task folder" in refused(
        capsys, tasks_dir, command="validate")
    text = (tasks_dir / "tiny" / "task.yaml").read_text().replace("../../outside.yaml", "h100x8-70b")
    (tasks_dir / "tiny" / "task.yaml").write_text(text)
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0
    assert "deployment profile h100x8-70b: ok" in capsys.readouterr().out


def test_report_with_a_deployment_writes_the_projection(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["report", str(run), "--deployment", "api-8b"]) == 0
    proj = pd.read_csv(run / "cost_projection.csv")
    info = json.loads((run / "run.json").read_text())
    assert list(proj.pipeline) == info["pipelines"] and (proj.profile == "api-8b").all()
    assert list(proj.columns[:4]) == ["pipeline", "projected_usd_per_year", "projected_serving_usd_per_month",
                                      "projected_build_usd"]
    assert proj.projected_usd_per_year.notna().all() and (proj.projected_usd_per_year > 0).all()
    report = (run / "report.md").read_text()
    section = report.split("## Cost at your scale (projection)")[1].split("\n## ")[0]
    assert "Projected, not measured" in section and "**api-8b**" in section and "measured here" in section
    assert len(section.strip().splitlines()) < 20  # one screen: one row per arm and a few lines
    assert "projected" in report.split("## The opinion table")[1].split("\n## ")[0]  # its cost row
    assert "Cost at your scale" in (run / "report.html").read_text()
    assert main(["report", str(run)]) == 0  # the run has no profile of its own: the projection goes
    assert not (run / "cost_projection.csv").exists() and "Cost at your scale" not in (run / "report.md").read_text()


def test_run_records_the_task_profile_and_report_projects_it_again(seeded_run, tmp_path):
    # A run of base and finetune whose task.yaml names deployment.yaml, a copy of the built-in h100-8b
    # (tests/conftest.py); copied, because `report` rewrites the folder another test reads.
    run = tmp_path / "run"
    shutil.copytree(seeded_run, run)
    assert json.loads((run / "run.json").read_text())["deployment"]["name"] == "deployment.yaml"
    before = pd.read_csv(run / "cost_projection.csv")
    assert before.set_index("pipeline").loc["finetune", "rebuild"] == "retraining assumed (no update measured)"
    assert main(["report", str(run)]) == 0
    assert pd.read_csv(run / "cost_projection.csv").equals(before)
