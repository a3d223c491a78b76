"""`harness validate`: what `run` checks before loading a model, minus the model's own, said as a few lines.

Missing training pairs only warn here: validating a half-written task should list every problem it can."""
from __future__ import annotations

from harness.arms.catalog import arm_names, demonstration_pool, needs_pairs, pair_users
from harness.pairs.source import PARSE, POOL_MARGIN, plan
from harness.run.preflight import preflight, warn_all
from harness.task.demo_pool import demo_pool
from harness.task.registry import tasks_dir
from harness.task.taught import knowledge_labels


def validate(task: str, tasks_root: str | None = None, deployment: str | None = None,
             pipelines: str | None = None) -> list[str]:
    """The task's sizes and labels, the pairs a run would make and which arms read them, and the deployment
    profile; raises HarnessError (one line) at the first problem."""
    checked = preflight(task, tasks_dir(tasks_root), arm_names, needs_pairs, strict=False, deployment=deployment,
                        pipelines=pipelines)
    warn_all(checked)
    t = checked.task
    labels = list(knowledge_labels(t.test, t.knowledge.pairs).values())
    pool = demo_pool(t.knowledge.pairs, t.test)
    lines = [f"{t.name}: ok ({', '.join(f'{k} {v}' for k, v in t.sizes.items())}; stable questions: "
             f"{labels.count('taught')} taught by train.jsonl, {labels.count('documents-only')} documents-only; "
             f"{len(pool.pairs)} training pairs free of test answers for demonstrations)"]
    said = plan(t, checked.config)
    if said:
        users = pair_users(checked.config, checked.names)
        need = demonstration_pool([checked.config], checked.names) if users else None
        lines += [said, "arms that read training pairs: " + ("; ".join(f"{n} {why}" for n, why in users.items()) or
                                                            "none of those selected, so a run of them makes no pairs")
                  + (f"; only as demonstrations, so a run of them makes a pool from at most {POOL_MARGIN * need} "
                     f"{'facts' if checked.config.pair_generation.writer == PARSE else 'candidate answers'} "
                     f"({POOL_MARGIN} x the {need} pairs they read), spread over every document" if need else "")]
    profile = checked.deployment
    if profile is not None:
        lines.append(f"deployment profile {profile.name}: ok ({profile.spec.description or 'no description'})")
    return lines
