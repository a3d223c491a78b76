"""A real end-to-end run of the tiny task on the embedded SmolLM2 and MiniLM models."""
import json
import platform
from pathlib import Path

import pandas as pd
import psutil
import torch
import transformers

from harness.cli import main
from harness.arms.catalog import DEFAULT_ARMS

ARMS = list(DEFAULT_ARMS)

FIXTURES = Path(__file__).parent / "fixtures"
TIMING_KEYS = {"seconds"}
SUBSET = "prompt,finetune"  # a trained arm and a few-shot arm: enough to prove determinism and resume, cheaply


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def subset(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["pipeline"] in SUBSET.split(",")]


def predictions(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]


def test_run_writes_every_table_for_every_default_arm(tiny_run):
    for name in ("accuracy.csv", "cost.csv", "freshness.csv", "report.md", "predictions.jsonl", "run.json"):
        assert (tiny_run / name).is_file(), name
    acc = pd.read_csv(tiny_run / "accuracy.csv")
    whole = acc[acc.knowledge == "all stable"]
    assert list(whole.pipeline) == ARMS
    assert (whole.questions == 4).all()  # the stable questions; the fresh one is measured in freshness.csv
    # Reported apart: t1-t3 are taught by train.jsonl, t5 only the documents answer.
    assert set(acc.knowledge) == {"all stable", "taught", "documents-only"}
    assert (acc[acc.knowledge == "taught"].questions == 3).all() and (acc[acc.knowledge == "documents-only"].questions == 1).all()
    report = (tiny_run / "report.md").read_text()
    for heading in ("## Accuracy", "## Cost", "## Freshness", "## Verdict", "## The opinion table, measured",
                    "### Retrieval quality", "### By topic"):
        assert heading in report
    for png in ("accuracy.png", "accuracy_vs_cost.png", "freshness.png", "finetune_loss.png"):
        assert (tiny_run / png).stat().st_size > 1000 and f"]({png})" in report
    retrieval = pd.read_csv(tiny_run / "retrieval.csv").set_index("pipeline")
    assert list(retrieval.index) == ["rag", "raft"]  # only the arms that retrieve
    # With top_k 1 the gold passage is either first (reciprocal rank 1) or not retrieved (0): MRR is hit@k.
    assert 0 < retrieval.loc["rag", "mrr"] == retrieval.loc["rag", "hit_at_k"] <= 1
    assert not any(p.name.startswith(".") for p in tiny_run.parent.iterdir()), "a temp folder was left behind"


def test_every_pipeline_answers_the_same_questions(tiny_run):
    main_phase = [p for p in predictions(tiny_run) if p["phase"] == "main"]
    ids = {name: sorted(p["id"] for p in main_phase if p["pipeline"] == name) for name in ARMS}
    assert all(v == ["t1", "t2", "t3", "t4", "t5"] for v in ids.values())
    labels = {p["id"]: p["knowledge"] for p in main_phase}
    assert labels == {"t1": "taught", "t2": "taught", "t3": "taught", "t4": "fresh", "t5": "documents-only"}
    assert all(p["answer"] == p["answer"].strip() for p in main_phase)


def test_retrieval_sees_update_documents_only_after_they_arrive(tiny_run):
    rows = [p for p in predictions(tiny_run) if p["pipeline"] == "rag" and p["id"] == "t4"]
    by_phase = {p["phase"]: p for p in rows}
    assert by_phase["main"]["gold_retrieved"] is False
    assert by_phase["update_no_rebuild"]["gold_retrieved"] is True
    assert by_phase["update_rebuilt"]["gold_retrieved"] is True
    fresh = pd.read_csv(tiny_run / "freshness.csv").set_index("pipeline")
    assert fresh.loc["finetune", "retrain_s"] > 0 and pd.isna(fresh.loc["rag", "retrain_s"])


def demonstrations_by_phase(run_dir: Path) -> dict[tuple[str, str], dict]:
    """(arm, phase) -> the costs that arm recorded for the demonstrations it showed in that phase: costs.json holds
    the main build's (also shown in update_no_rebuild, which adds documents only) and the rebuild's."""
    saved = json.loads((run_dir / "costs.json").read_text())
    shown = {(arm, "main"): c for arm, c in saved["costs"].items()}
    shown |= {(arm, "update_rebuilt"): t["rebuild_cost"] for arm, t in saved["timings"].items() if t.get("rebuild_cost")}
    return shown


def test_no_demonstration_of_any_phase_shows_a_test_answer(tiny_run):
    """The rebuild draws from the old and the update's pairs together, and the update's two pairs answer the fresh
    question (Mara Tessin): the rebuilt pool must leave them out like the six that answer stable questions."""
    from harness.text import normalize

    refs = [f" {normalize(a)} " for line in (FIXTURES / "tiny" / "test.jsonl").read_text().splitlines()
            for a in json.loads(line)["answers"]]
    shown = demonstrations_by_phase(tiny_run)
    assert shown[("prompt", "main")]["demonstrations"] and shown[("prompt", "update_rebuilt")]["demonstrations"]
    assert (shown[("prompt", "main")]["demo_pool"], shown[("prompt", "main")]["demo_pool_excluded"]) == (2, 6)
    assert (shown[("prompt", "update_rebuilt")]["demo_pool"], shown[("prompt", "update_rebuilt")]["demo_pool_excluded"]) == (2, 8)
    for (arm, phase), cost in shown.items():
        for d in cost["demonstrations"]:
            answer = f" {normalize(d['answer'])} "
            assert not any(r in answer or answer in r for r in refs), (arm, phase, d["answer"])


def test_costs_record_training_and_reuse_the_adapter(tiny_run):
    cost = pd.read_csv(tiny_run / "cost.csv").set_index("pipeline")
    assert cost.loc["finetune", "train_tokens"] > 0 and cost.loc["finetune", "adapter_mb"] > 0
    assert not cost.loc["finetune", "adapter_cached"]
    assert cost.loc["rag", "index_chunks"] == 3 and cost.loc["rag", "prompt_tokens_mean"] > cost.loc["base", "prompt_tokens_mean"]
    # A rebuild from nothing includes training: the trained arms cost at least their training time.
    for arm in ("finetune", "raft", "cpt"):
        assert cost.loc[arm, "build_total_s"] >= cost.loc[arm, "train_seconds"] > 0
    # Every arm answers with SmolLM2 loaded in float32 (134,515,008 parameters x 4 bytes = 513 MiB resident);
    # a peak in KiB or bytes instead of MiB would pass the machine's whole memory.
    assert (cost.latency_mean_s > 0).all() and (cost.peak_rss_mb > 134_515_008 * 4 / 2**20).all()
    assert (cost.peak_rss_mb < psutil.virtual_memory().total / 2**20).all()


def test_fine_tuning_lowers_eval_loss(tiny_run):
    costs = json.loads((tiny_run / "costs.json").read_text())["costs"]["finetune"]
    metas = list((tiny_run.parents[2] / "cache" / "adapters").glob("*/harness_meta.json"))
    metas = {m.parent.name: json.loads(m.read_text()) for m in metas}
    metas = {k: m for k, m in metas.items() if m["kind"] == "qa"}
    assert len(metas) == 2  # the original adapter and its continuation on the update
    (original,) = [k for k, m in metas.items() if m["start_from"] is None]
    (continued,) = [m for m in metas.values() if m["start_from"] is not None]
    assert continued["start_from"] == original  # the update trained on from the first adapter, not from scratch
    evals = [h["eval_loss"] for h in metas[original]["log_history"] if "eval_loss" in h]
    assert len(evals) >= 2 and min(evals) < evals[0]
    assert costs["best_eval_loss"] == min(evals)
    # Short Q&A pairs train padding-free in float32 (harness/arms/batches.py); a bf16 base pads (no faster flattened).
    layout = metas[original]["batches"]
    fp32 = json.loads((tiny_run / "run.json").read_text())["training_dtype"] == "torch.float32"
    assert (layout["flattened"] > 0 and layout["padded"] == 0) if fp32 else (layout["flattened"] == 0)


def test_run_json_records_what_reproduces_the_run(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["seed"] == 0 and info["model"] == "smollm2-135m" and info["model_file"].endswith(".gguf")
    assert info["versions"]["torch"] == torch.__version__ and info["versions"]["transformers"] == transformers.__version__
    assert info["versions"]["python"] == platform.python_version() and info["config"]["retrieval"]["top_k"] == 1
    # --dtype auto on a CPU: answers in float32; training in the precision it says it took, and why (precision.py).
    assert info["dtype"] == "torch.float32"
    assert info["dtype_choice"].split(":")[0] == info["training_dtype"].removeprefix("torch.")
    assert info["started"] < info["finished"]  # stamped before training and answering, not with the report


def test_killed_run_resumes_to_the_same_report(tiny_run, tmp_path):
    """Kill a real run once fine-tuning has checkpointed, resume it, and get the uninterrupted run's answers.

    The run has its own cache, so its adapter is trained from scratch across two processes (the first epoch in
    the killed one, the rest in the test's own): equal answers also prove that a seed reproduces training and
    answering across processes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # Without the update phases: a resume is proven once the killed training finishes, and they would double it.
    args = [sys.executable, "-m", "harness", "run", "--task", "tiny", "--tasks-dir", str(FIXTURES),
            "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "cache"), "--pipelines", SUBSET,
            "--no-freshness"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list((tmp_path / "cache" / "adapters").glob("*.tmp/checkpoints/checkpoint-*/trainer_state.json")):
        assert proc.poll() is None and time.time() < deadline, "run ended before fine-tuning checkpointed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (partial,) = (tmp_path / "r" / "tiny").iterdir()
    assert partial.name.startswith(".") and partial.name.endswith(".partial")  # nothing looks complete
    logged = len((partial / "answers.log.jsonl").read_text().splitlines())
    assert logged >= 4  # prompt had answered before the kill
    # ...and its partial report is there to read: the finished arm's table, the missing one named.
    report = (partial / "report.md").read_text()
    assert "Partial report: 1 of 2 arms; finetune still to come" in report and "| prompt |" in report
    assert "finetune" not in (partial / "accuracy.csv").read_text()
    assert "Partial report" in (partial / "report.html").read_text()

    # The resume runs in this process: a fresh interpreter would cost seconds and prove nothing more.
    assert main(args[3:] + ["--resume"]) == 0
    (done,) = (tmp_path / "r" / "tiny").iterdir()
    assert not done.name.startswith(".")
    main_phase = [r for r in subset(predictions(tiny_run)) if r["phase"] == "main"]
    assert strip(predictions(done)) == strip(main_phase)
    from harness.report.compare import compare
    assert "## Answers: 0 of 10 differ" in compare(tiny_run, done)  # 2 arms x 5 questions

    # Equal answers alone would also follow from training again from scratch (training is deterministic). The
    # resume took the checkpoint: the same adapter (same cache key) in the uninterrupted run collated every
    # epoch's batches in one process, while the resumed process collated only those after the checkpoint.
    (resumed,) = (tmp_path / "cache" / "adapters").glob("*/harness_meta.json")
    whole = json.loads((tiny_run.parents[2] / "cache" / "adapters" / resumed.parent.name / "harness_meta.json").read_text())
    resumed = json.loads(resumed.read_text())
    assert resumed["epochs_run"] == whole["epochs_run"] == 2
    assert 0 < sum(resumed["batches"].values()) < sum(whole["batches"].values())


def test_a_rerun_answers_from_the_answer_cache(tiny_run, tmp_path, capsys):
    """A warm re-run (same model, same prompts) takes its answers from --cache-dir/answers/ and says so."""
    cache = tiny_run.parents[2] / "cache"
    command = ["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(tmp_path / "r"),
               "--cache-dir", str(cache), "--pipelines", SUBSET]
    assert main(command) == 0
    assert "ran these same inputs" not in capsys.readouterr().out  # no finished run of them in this results dir
    (again,) = (tmp_path / "r" / "tiny").iterdir()
    info = json.loads((again / "run.json").read_text())
    n = info["answers_logged"]  # distinct (model, prompt) pairs: a question asked twice of one model counts once
    assert info["answers_reused"] == n >= 10  # none generated anew
    assert predictions(again) == subset(predictions(tiny_run))  # the same answers, and the seconds first timed
    assert f"{n} of {n} answers came from the answer cache" in (again / "report.md").read_text()
    # A third run of the same inputs: the cold forecast is followed by the warning that it will be far quicker.
    assert main(command) == 0
    assert f"but {again} ran these same inputs" in capsys.readouterr().out


def test_resume_with_nothing_to_resume_is_an_error(tmp_path, capsys):
    code = main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c"), "--resume"])
    assert code == 2 and "nothing to resume" in capsys.readouterr().err


def test_seeds_train_each_trained_arm_again_and_widen_the_interval(seeded_run):
    run = seeded_run  # base and finetune with --seeds 2 (tests/conftest.py)
    rows = predictions(run)
    assert {r["seed"] for r in rows if r["pipeline"] == "finetune"} == {0, 1}
    assert {r["seed"] for r in rows if r["pipeline"] == "base"} == {0}  # nothing to train: answered once
    acc = pd.read_csv(run / "accuracy.csv").set_index(["knowledge", "pipeline"]).loc["all stable"]
    assert acc.loc["finetune", "seeds"] == 2 and acc.loc["base", "seeds"] == 1
    assert acc.loc["finetune", "contains_seed_spread"] >= 0 and pd.isna(acc.loc["base", "contains_seed_spread"])
    assert acc.loc["finetune", "questions"] == 4  # seeds are averaged per question, not counted as questions


def test_a_run_leaves_nothing_frozen_for_the_collector(tiny_run):
    """run_task freezes what is loaded out of the garbage collector's scans for the run's length (runner.py); a
    process that goes on after the run (this suite, a notebook) must have those objects collectable again."""
    import gc

    assert (tiny_run / "report.md").is_file()  # the session's run happened in this process
    assert gc.get_freeze_count() == 0
