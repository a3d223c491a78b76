"""Deployment profiles: the model size, prices and volume a team plans for, onto which "Cost at your scale"
projects a run's measured token counts (harness/report/projection.py).

A profile is a small YAML file: `--deployment FILE` (or a built-in's name) on `harness run`/`report`/`validate`,
or `deployment:` in task.yaml (a built-in's name, or a path inside the task folder). Built-ins live in
harness/task/deployments/, each value with its assumption beside it. A profile from a task folder is untrusted like
the rest of the folder: it must stay inside it, is read without following links, and is plain YAML data.
Everything is checked before any model loads; a bad value is one line naming file:line and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError
from harness.task.model_size import params_of
from harness.task.folder import config_line
from harness.task.yaml_file import load_yaml_as, yaml_line

BUILTIN_DIR = Path(__file__).parent / "deployments"
MAX_PROFILE_BYTES = 64 * 2**10


class _Strict(BaseModel):
    # Unknown keys are typos; inf and nan would turn every figure into nonsense without an error.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GpuServing(_Strict):
    kind: Literal["gpu"]
    usd_per_gpu_hour: float = Field(gt=0)
    gpus: int = Field(1, ge=1, le=4096)  # GPUs one serving replica holds; all of them are paid for
    tokens_per_second: float = Field(gt=0)  # the replica's prompt + generated tokens a second, batched


class ApiServing(_Strict):
    kind: Literal["api"]
    # 0 is a real price (a free tier, cached input), so only negatives are refused.
    usd_per_million_input_tokens: float = Field(ge=0)
    usd_per_million_output_tokens: float = Field(ge=0)


class Training(_Strict):
    usd_per_gpu_hour: float = Field(gt=0)
    peak_flops: float = Field(gt=0)  # one GPU's dense peak in the training precision, FLOP/s
    mfu: float = Field(gt=0, le=1)  # model FLOPs utilisation: the share of peak training really reaches
    method: Literal["lora", "full"] = "lora"  # the harness trains LoRA; `full` prices full fine-tuning instead


class Deployment(_Strict):
    description: str = ""
    params: float | None = Field(None, gt=0)  # the served model's parameter count
    model: str | None = None  # or a folder / cached hub id whose config.json gives it
    serving: Annotated[GpuServing | ApiServing, Field(discriminator="kind")]
    training: Training
    questions_per_day: float = Field(ge=0)
    updates_per_year: float = Field(ge=0, le=366)
    usd_per_written_pair: float = Field(0.0, ge=0)  # what a hand-written training pair costs the team


@dataclass(frozen=True)
class Profile:
    """A checked profile: its name (a built-in's, or the file as given), and values with `params` resolved."""

    name: str
    spec: Deployment

    @property
    def params(self) -> float:
        assert self.spec.params is not None  # resolved when loaded
        return self.spec.params

    def record(self) -> dict[str, Any]:
        """What run.json keeps, so `harness report` projects again without the file."""
        return {"name": self.name, **self.spec.model_dump()}


_HINTS = {
    "extra_forbidden": lambda m: "unknown key (check the spelling: the built-ins in harness/task/deployments/ show "
                                 "every key, with a GPU's serving keys in h100-8b.yaml and an API's in api-8b.yaml)",
    "missing": lambda m: "missing: every profile states it (see harness/task/deployments/*.yaml)",
    "union_tag_not_found": lambda m: "needs `kind: gpu` ($/GPU-hour and tokens_per_second) or `kind: api` "
                                     "($ per million input and output tokens)",
    "union_tag_invalid": lambda m: "kind must be gpu or api",
    "greater_than": lambda m: m + " (a price, throughput, size or MFU of 0 or less projects nothing; give a "
                                  "positive number)",
    "greater_than_equal": lambda m: m + " (a negative price or volume is not one; give 0 or more)",
    "less_than_equal": lambda m: m + " (MFU is a share of peak: at most 1, typically 0.3-0.5)",
    "finite_number": lambda m: m + " (give a finite number)",
}


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_profile(path: Path, name: str, inside: Path | None = None) -> Profile:
    """Reads and checks one profile file; `inside`: the task folder an untrusted profile must stay in."""
    spec, root = load_yaml_as(path, MAX_PROFILE_BYTES, Deployment, "params:, serving:, training:", _HINTS)
    if (spec.params is None) == (spec.model is None):
        key = "model" if spec.model is not None else "params"
        raise HarnessError("give either params: (the parameter count, e.g. 8.0e+9) or model: (a folder or cached "
                           "hub id whose config.json gives it), not both or neither", path, yaml_line(root, (key,)))
    if spec.params is None:
        n = params_of(str(spec.model), path.parent, inside, path, yaml_line(root, ("model",)))
        spec = spec.model_copy(update={"params": n})
    return Profile(name, spec)


def _builtin(name: str) -> Profile | None:
    return load_profile(BUILTIN_DIR / f"{name}.yaml", name) if name in builtin_names() else None


def from_option(spec: str) -> Profile:
    """--deployment: a profile file, or a built-in's name."""
    path = Path(spec).expanduser()
    if path.is_file():
        return load_profile(path, spec)
    found = _builtin(spec)
    if found is None:
        raise HarnessError(f"--deployment {spec!r}: no such file and no built-in profile of that name; built-ins: "
                           f"{', '.join(builtin_names())}, or pass a YAML file like harness/task/deployments/h100-8b.yaml")
    return found


def from_task(value: str, task_root: Path, task_yaml: Path, line: int | None) -> Profile:
    """`deployment:` in task.yaml: a built-in's name, or a profile file inside the task folder."""
    found = _builtin(value)
    if found is not None:
        return found
    path = task_root / value
    root = task_root.resolve()
    if Path(value).is_absolute() or not path.resolve().is_relative_to(root) or path.is_symlink():
        raise HarnessError(f"deployment: {value!r} leaves the task folder; name a built-in "
                           f"({', '.join(builtin_names())}) or a YAML file inside the task folder", task_yaml, line)
    if not path.is_file():
        raise HarnessError(f"deployment: {value!r} is neither a built-in ({', '.join(builtin_names())}) nor a file "
                           "in the task folder", task_yaml, line)
    return load_profile(path, value, inside=task_root)


def resolve(option: str | None, task_root: Path, named: str | None) -> Profile | None:
    """The run's profile: `--deployment` when given, else task.yaml's `deployment:` (`named`), else none."""
    if option:
        return from_option(option)
    if named:
        task_yaml = task_root / "task.yaml"
        return from_task(named, task_root, task_yaml, config_line(task_yaml, ("deployment",)))
    return None


def from_record(record: dict[str, Any], where: Path) -> Profile:
    """A profile as run.json recorded it."""
    data = {k: v for k, v in record.items() if k != "name"}
    try:
        return Profile(str(record.get("name", "recorded")), Deployment.model_validate(data))
    except ValidationError as e:
        raise HarnessError(f'"deployment" is not a valid profile ({e.errors()[0]["msg"]}); re-render with '
                           "--deployment", where) from None
