"""The one record of how a run was asked for: what `harness run` parses and `harness.run()` takes.

Below the CLI nothing reads argparse's namespace: every module gets this record, or a field of it. The task's
config (task.yaml, with `seed` applied) is derived from it once by preflight; a sweep point and a training
seed are derived from that config by name (`dataclasses.replace`, `model_copy`), never copied by hand."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.names import DEFAULT_EMBEDDER, DEFAULT_MODEL, DEFAULT_PRICES


@dataclass(frozen=True)
class RunOptions:
    task: str
    tasks_dir: str | None = None
    pipelines: str | None = None  # comma-separated arm names; None: every arm
    model: str = DEFAULT_MODEL
    embedder: str = DEFAULT_EMBEDDER
    generator: str | None = None
    seed: int | None = None  # overrides task.yaml's
    seeds: int = 1
    budget: float | None = None  # minutes; None: task.yaml's `budget:`, else no budget
    device: str = "auto"
    dtype: str = "auto"
    train_dtype: str = "auto"
    quantize: int | None = None
    no_freshness: bool = False
    cache_dir: str = dataclasses.field(default_factory=lambda: os.environ.get("HARNESS_CACHE", ".harness-cache"))
    results_dir: str = "results"
    trust_remote_code: bool = False
    updates_per_year: int = 12
    sweep: tuple[str, ...] | None = None
    engine: str = "auto"  # vllm on CUDA where installed, else transformers (vllm_engine.choose_engine)
    tensor_parallel_size: int | None = None  # vLLM's; None: every visible GPU that splits the model's heads
    gpu_memory_utilization: float | None = None  # vLLM's; None: what is free when it is built
    max_model_len: int | None = None  # vLLM's; None: the model's context, at most 8192
    cpu_hour_usd: float = DEFAULT_PRICES["cpu_hour_usd"]
    gpu_hour_usd: float = DEFAULT_PRICES["gpu_hour_usd"]
    hour_usd: float | None = None
    usd_per_million_tokens: float = DEFAULT_PRICES["per_million_tokens_usd"]
    deployment: str | None = None
    reanswer: bool = False
    mlflow: str | None = None  # "" is the default store (mlruns/)
    resume: bool = False
    fsdp: str = "auto"  # harness train under torchrun: auto | on | off (sharding.wants_fsdp)

    @property
    def freshness(self) -> bool:
        return not self.no_freshness

    @classmethod
    def of(cls, task: str, arms: list[str] | str | None = None, model: str | None = None,
           **options) -> RunOptions:
        """The API's spelling: `arms` as a list, the rest as the CLI's long options with underscores. An unknown
        option is an error that lists the known ones, not a silently ignored typo."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise HarnessError(f"unknown option(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}")
        if arms is not None:
            options["pipelines"] = arms if isinstance(arms, str) else ",".join(arms)
        if model is not None:
            options["model"] = model
        if options.get("sweep") is not None:
            options["sweep"] = tuple(options["sweep"])
        return cls(task=task, **options)

    @classmethod
    def from_namespace(cls, args) -> RunOptions:
        """From argparse's namespace: the parser's dest names are this record's field names."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        if values.get("sweep") is not None:
            values["sweep"] = tuple(values["sweep"])
        return cls(**values)

    def tasks_root(self) -> Path | None:
        return Path(self.tasks_dir) if self.tasks_dir else None
