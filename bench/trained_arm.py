"""What the training benches share: the embedded model loaded as `harness run` loads it, with the training copy
its precision rule gives, around a task config the bench has overridden."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_shared(task, cfg, cache_dir: Path | None = None):
    """(Shared, Precision) for `task` under `cfg`, with a throwaway adapter cache unless `cache_dir` is given
    (variants that share a build then train it once)."""
    from harness.arms.pipeline import Shared
    from harness.inference.models import DEFAULT_EMBEDDER, DEFAULT_MODEL, load_embedder, load_generator, resolve_model
    from harness.run.experiment import training_precision
    from harness.run.options import RunOptions

    src = resolve_model(DEFAULT_MODEL)
    model, tok = load_generator(src, "cpu")
    # The precision `harness run --task TASK` trains in on this CPU, by the same rule.
    train_model, precision = training_precision(RunOptions(task=task.name), "cpu", model, tok, task, cfg,
                                                ["finetune"])
    shared = Shared(model, tok, load_embedder(DEFAULT_EMBEDDER), cfg, src.fingerprint(),
                    cache_dir or Path(tempfile.mkdtemp()), train_model=train_model)
    return shared, precision


def variant_parser(doc: str, arms: list[str], default_arm: str) -> argparse.ArgumentParser:
    """The options every variant bench takes: the task, the arm, and the hidden `--one VARIANT` of a child."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="coffee")
    ap.add_argument("--arm", default=default_arm, choices=arms, help="the arm whose recipe varies")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    return ap


def each_variant(script: str, args: list[str], variants: list[str]) -> None:
    """`script ARGS --one VARIANT` per variant, each in its own process (so a peak RSS is that variant's alone);
    prints its RESULT line, or the tail of its error."""
    for v in variants:
        out = subprocess.run([sys.executable, script, *args, "--one", v], capture_output=True, text=True)
        print(next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), out.stderr[-1500:]), flush=True)
