"""Data-parallel fine-tuning for real: two processes on the gloo backend, launched by torchrun; and `harness run`
reusing what `harness train` trained, on any number of processes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.cli import main

BIN = Path(sys.executable).parent
# --dtype auto picks the training precision by timing bf16 against float32 in each process, and the adapter's
# cache key holds it: on a loaded machine the ranks (one thread each) and this process disagreed, so the ranks'
# gradients no longer matched in size (gloo aborted) or `run` missed the ranks' adapter. A fixed precision makes
# every process train the same way; what is tested here is the data-parallel split, not that choice.
DTYPE = ["--dtype", "float32"]


def _train(tasks_dir: Path, cache: Path, processes: int, *options: str) -> dict[str, dict]:
    """`harness train` on the tiny task; every adapter in the cache afterwards, by folder name."""
    args = ["train", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--cache-dir", str(cache), *DTYPE, *options]
    if processes == 1:  # in this process: the reference needs no launcher, and a fresh interpreter costs seconds
        assert main(args) == 0
    else:
        launcher = [str(BIN / "torchrun"), "--nproc_per_node", str(processes), "-m", "harness"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        out = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
    return _adapters(cache)


def _adapters(cache: Path) -> dict[str, dict]:
    return {a.name: json.loads((a / "harness_meta.json").read_text()) for a in (cache / "adapters").iterdir()}


def _run(tasks_dir: Path, cache: Path, results: Path, arms: str, *options: str) -> dict:
    """`harness run` of `arms` on `cache`: its costs.json."""
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--results-dir", str(results),
                 "--cache-dir", str(cache), "--pipelines", arms, *DTYPE, *options]) == 0
    (run_dir,) = (results / "tiny").iterdir()
    return json.loads((run_dir / "costs.json").read_text())


def _every_adapter_cached(costs: dict, arms: list[str], rebuilt: bool) -> None:
    for arm in arms:
        assert costs["costs"][arm]["adapter_cached"] is True, arm
        if rebuilt:  # the update's adapter, continued from the first as `run` continues it
            again = costs["timings"][arm]
            assert again["rebuild_note"].startswith("continued"), again["rebuild_note"]
            assert again["rebuild_cost"]["adapter_cached"] is True, arm


def test_two_process_training_matches_one_process_and_run_reuses_every_adapter(tasks_dir, tmp_path):
    # 6 training pairs in global batches of 2: every step sees whole batches on 1 process and on 2
    # (one example per process), so the two runs differ only in which pairs share a step.
    yaml = tasks_dir / "tiny" / "task.yaml"
    yaml.write_text(yaml.read_text().replace("batch_size: 4\n  learning_rate", "batch_size: 2\n  learning_rate"))
    (key, one), = _train(tasks_dir, tmp_path / "one", 1, "--pipelines", "finetune", "--no-freshness").items()
    # On two processes: finetune and raft (whose index one process builds while the other waits), each with the
    # update's adapter, continued from the first.
    two = _train(tasks_dir, tmp_path / "two", 2, "--pipelines", "finetune,raft")
    assert sorted((m["kind"], m["start_from"] is not None) for m in two.values()) == [
        ("qa", False), ("qa", True), ("raft", False), ("raft", True)]
    assert all(m["processes"] == 2 for m in two.values())
    # One cache key whatever the world size: the one-process adapter's name is the two-process one's.
    assert key in two
    assert (one["processes"], two[key]["processes"]) == (1, 2)
    assert one["n_train"] == two[key]["n_train"] == 6
    first = [h["eval_loss"] for h in two[key]["log_history"] if "eval_loss" in h][0]
    # Both epochs ran (patience 2 cannot stop 2 epochs early) and the held-out loss fell below the first epoch's.
    assert one["epochs_run"] == two[key]["epochs_run"] == 2 and two[key]["best_eval_loss"] < first
    assert abs(one["best_eval_loss"] - two[key]["best_eval_loss"]) / one["best_eval_loss"] < 0.05
    shutil.rmtree(tmp_path / "one")

    # `harness run` finds every adapter the two processes trained, the update's too, and trains none of its own.
    costs = _run(tasks_dir, tmp_path / "two", tmp_path / "res", "finetune,raft")
    _every_adapter_cached(costs, ["finetune", "raft"], rebuilt=True)
    assert _adapters(tmp_path / "two").keys() == two.keys()


def test_one_process_train_then_run_trains_nothing(tasks_dir, tmp_path):
    """Every kind of trained weights, as `harness train` in one process leaves them, is what `harness run` looks
    up: cpt (documents) and finetune (pairs), each with its update adapter."""
    made = _train(tasks_dir, tmp_path / "cache", 1, "--pipelines", "cpt,finetune")
    assert sorted((m["kind"], m["start_from"] is not None) for m in made.values()) == [
        ("cpt", False), ("cpt", True), ("qa", False), ("qa", True)]
    costs = _run(tasks_dir, tmp_path / "cache", tmp_path / "res", "cpt,finetune")
    _every_adapter_cached(costs, ["cpt", "finetune"], rebuilt=True)
    assert _adapters(tmp_path / "cache").keys() == made.keys()
