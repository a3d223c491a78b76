"""The blog post's comparison table (accuracy, flexibility, cost, complexity, freshness as high/medium/low),
rebuilt from this run's measurements: every cell carries the number behind it."""
from __future__ import annotations

import pandas as pd

from .config import FinetuneConfig, PromptConfig, RetrievalConfig

CONTENDERS = ["finetune", "prompt", "rag"]  # the three columns of the article's table


def _level(values: dict[str, float]) -> dict[str, str]:
    """'high' for the largest value among the contenders, 'low' for the smallest (ties share a word)."""
    distinct = sorted(set(values.values()), reverse=True)
    words = {1: ["same"], 2: ["high", "low"]}.get(len(distinct), ["high", "medium", "low"])
    return {k: words[min(distinct.index(v), len(words) - 1)] for k, v in values.items()}


# Settings a team must choose and keep tuned for each approach: a measurable stand-in for "complexity".
KNOBS = {
    "prompt": ["prompt." + k for k in PromptConfig.model_fields if k != "rag_instruction"],
    "rag": ["prompt.rag_instruction", "embedder"] + ["retrieval." + k for k in RetrievalConfig.model_fields],
    "finetune": ["prompt.system"] + ["finetune." + k for k in FinetuneConfig.model_fields],
}


def opinion_table(acc: pd.DataFrame, sig: pd.DataFrame, cost: pd.DataFrame, fresh: pd.DataFrame, metric: str
                  ) -> tuple[pd.DataFrame, str] | None:
    """The table and a one-sentence recommendation that cites its figures; None without two contenders."""
    names = [n for n in CONTENDERS if n in set(acc.pipeline)]
    if len(names) < 2:
        return None
    a, c = acc.set_index("pipeline"), cost.set_index("pipeline")
    f = fresh.set_index("pipeline") if len(fresh) else None
    # Needs the update experiment to have run (not skipped with --no-freshness).
    has_fresh = f is not None and f.fresh_questions.max() > 0 and f.fresh_after_rebuild.notna().all()

    def absorb_s(n: str) -> float:
        t = f.loc[n, "retrain_s"]
        return float(t) if pd.notna(t) else float(f.loc[n, "rebuild_s"])

    def artifacts_mb(n: str) -> float:
        return sum(float(c.loc[n, k]) for k in ("adapter_mb", "index_mb") if pd.notna(c.loc[n, k]))

    rows = {
        "accuracy": ({n: float(a.loc[n, metric]) for n in names},
                     lambda n, v: f"{metric} {v:.3f} [{a.loc[n, f'{metric}_ci95_low']:.2f}, "
                                  f"{a.loc[n, f'{metric}_ci95_high']:.2f}]"),
        "cost": ({n: float(c.loc[n, "build_usd"] + c.loc[n, "usd_per_1k_questions"]) for n in names},
                 lambda n, v: f"${v:.4f} for build + 1,000 questions (build ${c.loc[n, 'build_usd']:.4f}, "
                              f"{c.loc[n, 'latency_mean_s']:.3f} s/question)"),
        "complexity": ({n: len(KNOBS[n]) for n in names},
                       lambda n, v: f"{v} settings to tune, "
                       + (f"{artifacts_mb(n):.1f} MB of artifacts" if artifacts_mb(n) else "no artifacts")
                       + (", a training run" if pd.notna(c.loc[n, "train_seconds"]) else "")),
    }
    if has_fresh:
        rows["flexibility"] = ({n: float(f.loc[n, "fresh_after_update_no_rebuild"]) for n in names},
                               lambda n, v: f"{v:.3f} on new facts with no rebuild")
        rows["freshness"] = ({n: float(f.loc[n, "fresh_after_rebuild"]) for n in names},
                             lambda n, v: f"{v:.3f} on new facts after a rebuild taking {absorb_s(n):.1f} s")
    table = []
    for row in ("accuracy", "flexibility", "cost", "complexity", "freshness"):
        if row not in rows:
            continue
        values, describe = rows[row]
        levels = _level(values)  # as in the article: high cost means expensive, high accuracy means good
        table.append({"": row, **{n: f"{levels[n]}: {describe(n, values[n])}" for n in names}})

    best = max(names, key=lambda n: rows["accuracy"][0][n])
    why = [f"it has the highest {metric} ({rows['accuracy'][0][best]:.3f})"]
    pair = sig[sig.a.isin(names) & sig.b.isin(names) & ((sig.a == best) | (sig.b == best))]
    ties = [r.b if r.a == best else r.a for _, r in pair.iterrows() if not r.significant]
    if ties:
        why[0] += f", though not significantly above {' or '.join(ties)}"
    flex = rows.get("flexibility", ({}, None))[0]
    nb = max(flex, key=flex.get) if flex else None
    if nb and sorted(flex.values())[-2] < flex[nb]:  # only a strict leader is worth a sentence
        why.append(f"{nb} takes in new documents without a rebuild "
                   f"({rows['flexibility'][0][nb]:.3f} on fresh questions vs "
                   + ", ".join(f"{n} {rows['flexibility'][0][n]:.3f}" for n in names if n != nb) + ")")
    cheapest = min(names, key=lambda n: rows["cost"][0][n])
    why.append(f"{cheapest} is cheapest for build + 1,000 questions (${rows['cost'][0][cheapest]:.4f})")
    recommendation = f"For this task: **{best}**, because " + "; ".join(why) + "."
    return pd.DataFrame(table), recommendation
