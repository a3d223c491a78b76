"""Data-parallel fine-tuning for real: two processes on the gloo backend, launched by torchrun."""
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


def _train(tasks_dir: Path, cache: Path, processes: int) -> dict:
    args = ["train", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--cache-dir", str(cache), "--no-freshness",
            *DTYPE]
    if processes == 1:  # in this process: the reference needs no launcher, and a fresh interpreter costs seconds
        assert main(args) == 0
    else:
        launcher = [str(BIN / "torchrun"), "--nproc_per_node", str(processes), "-m", "harness"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        out = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
    (adapter,) = (cache / "adapters").iterdir()  # one adapter, written once: rank 1 wrote nothing beside it
    return json.loads((adapter / "harness_meta.json").read_text())


def test_two_process_training_matches_one_process_and_run_reuses_it(tasks_dir, tmp_path):
    # 6 training pairs in global batches of 2: every step sees whole batches on 1 process and on 2
    # (one example per process), so the two runs differ only in which pairs share a step.
    yaml = tasks_dir / "tiny" / "task.yaml"
    yaml.write_text(yaml.read_text().replace("batch_size: 4\n  learning_rate", "batch_size: 2\n  learning_rate"))
    one = _train(tasks_dir, tmp_path / "one", 1)
    two = _train(tasks_dir, tmp_path / "two", 2)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["n_train"] == two["n_train"] == 6
    first = [h["eval_loss"] for h in two["log_history"] if "eval_loss" in h][0]
    # Both epochs ran (patience 2 cannot stop 2 epochs early) and the held-out loss fell below the first epoch's.
    assert one["epochs_run"] == two["epochs_run"] == 2 and two["best_eval_loss"] < first
    assert abs(one["best_eval_loss"] - two["best_eval_loss"]) / one["best_eval_loss"] < 0.05

    # `harness run` finds the adapter the two processes trained instead of training its own.
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--results-dir", str(tmp_path / "res"),
                 "--cache-dir", str(tmp_path / "two"), "--pipelines", "finetune", "--no-freshness", *DTYPE]) == 0
    (run_dir,) = (tmp_path / "res" / "tiny").iterdir()
    cost = json.loads((run_dir / "costs.json").read_text())["costs"]["finetune"]
    assert cost["adapter_cached"] is True
    shutil.rmtree(tmp_path / "one")
