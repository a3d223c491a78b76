"""The accuracy, cost and freshness tables, computed from saved predictions and costs alone."""
from __future__ import annotations

import pandas as pd

from .config import METRICS
from .stats import bootstrap_ci, paired_p
from .runner import PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT


def _mean_or_none(series: pd.Series) -> float | None:
    s = series.dropna()
    return float(s.astype(float).mean()) if len(s) else None


def stable_main(preds: pd.DataFrame) -> pd.DataFrame:
    """Main-phase answers to the questions the original knowledge covers (all of them if none is fresh)."""
    main = preds[preds.phase == PHASE_MAIN]
    return main[~main.fresh] if (~main.fresh).any() else main


def accuracy_table(preds: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> pd.DataFrame:
    """Mean of each metric on the stable questions, with a 95% bootstrap interval on the headline metric."""
    stable = stable_main(preds)
    rows = []
    for name in order:
        g = stable[stable.pipeline == name]
        lo, hi = bootstrap_ci(g[metric].to_numpy(), seed)
        rows.append({"pipeline": name, "questions": len(g), **{m: float(g[m].mean()) for m in METRICS},
                     f"{metric}_ci95_low": lo, f"{metric}_ci95_high": hi,
                     "retrieval_hit_rate": _mean_or_none(g["gold_retrieved"])})
    return pd.DataFrame(rows)


def significance_table(preds: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> pd.DataFrame:
    """Every pair of pipelines on the same stable questions: difference of means and a paired test."""
    wide = stable_main(preds).pivot(index="id", columns="pipeline", values=metric)
    rows = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            p, test = paired_p(wide[a].to_numpy(), wide[b].to_numpy(), seed)
            rows.append({"a": a, "b": b, f"{metric}_a": float(wide[a].mean()), f"{metric}_b": float(wide[b].mean()),
                         "difference": float(wide[a].mean() - wide[b].mean()), "p_value": p, "test": test,
                         "significant": p < 0.05})
    # Named columns even with no pairs (a one-pipeline run), so readers can filter on them.
    return pd.DataFrame(rows, columns=["a", "b", f"{metric}_a", f"{metric}_b", "difference", "p_value", "test",
                                       "significant"])


def slice_table(preds: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """Headline metric per question topic (stable questions): where each pipeline wins and loses."""
    stable = stable_main(preds)
    wide = stable.pivot_table(index="topic", columns="pipeline", values=metric, aggfunc="mean")
    counts = stable[stable.pipeline == order[0]].groupby("topic").size().rename("questions")
    return wide[order].join(counts).reset_index()


def retrieval_table(preds: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """For retrieving pipelines: hit@k, MRR of the gold document, and accuracy with and without it retrieved,
    which separates retrieval failures from generation failures."""
    rows = []
    for name in order:
        g = preds[(preds.phase == PHASE_MAIN) & (preds.pipeline == name) & preds.gold_retrieved.notna()]
        g = g[~g.fresh] if (~g.fresh).any() else g
        if g.empty:
            continue
        ranks = [next((i for i, p in enumerate(ps, 1) if p["doc"] == doc), None) for ps, doc in zip(g.passages, g.doc)]
        hit = g.gold_retrieved.astype(bool)
        rows.append({"pipeline": name, "questions": len(g), "k": int(max(len(ps) for ps in g.passages)),
                     "hit_at_k": float(hit.mean()), "hit_at_1": float(sum(r == 1 for r in ranks) / len(g)),
                     "mrr": float(sum(1 / r for r in ranks if r) / len(g)),
                     f"{metric}_gold_retrieved": float(g[hit][metric].mean()) if hit.any() else None,
                     f"{metric}_gold_missed": float(g[~hit][metric].mean()) if (~hit).any() else None})
    return pd.DataFrame(rows)


COST_COLUMNS = ["build_s", "train_seconds", "train_tokens", "epochs_run", "adapter_cached", "latency_mean_s",
                "latency_p95_s", "prompt_tokens_mean", "new_tokens_mean", "peak_rss_mb", "adapter_mb", "index_mb",
                "index_chunks", "index_kind"]


DEFAULT_PRICES = {"cpu_hour_usd": 0.10, "gpu_hour_usd": 2.50, "per_million_tokens_usd": 0.0}


def cost_table(costs: dict[str, dict], order: list[str], prices: dict[str, float]) -> pd.DataFrame:
    """Measured costs, and money: machine time at `hour_usd`, tokens at `per_million_tokens_usd`."""
    rows = []
    for n in order:
        c = costs[n]
        build_s = c.get("train_seconds") or c.get("build_s") or 0.0  # a cached adapter still cost its training
        tokens = (c["prompt_tokens_mean"] + c["new_tokens_mean"]) * 1000
        rows.append({"pipeline": n, **{k: c.get(k) for k in COST_COLUMNS},
                     "build_usd": build_s / 3600 * prices["hour_usd"],
                     "usd_per_1k_questions": c["latency_mean_s"] * 1000 / 3600 * prices["hour_usd"]
                     + tokens / 1e6 * prices["per_million_tokens_usd"]})
    return pd.DataFrame(rows)


def break_even(cost: pd.DataFrame, a: str, b: str) -> float | None:
    """Questions after which `a`'s larger up-front cost is paid back by its cheaper answers vs `b` (None: never)."""
    c = cost.set_index("pipeline")
    if a not in c.index or b not in c.index:
        return None
    extra_build = c.loc[a, "build_usd"] - c.loc[b, "build_usd"]
    saving = (c.loc[b, "usd_per_1k_questions"] - c.loc[a, "usd_per_1k_questions"]) / 1000
    if extra_build <= 0:
        return 0.0
    return float(extra_build / saving) if saving > 0 else None


def freshness_table(preds: pd.DataFrame, timings: dict[str, dict], order: list[str], metric: str) -> pd.DataFrame:
    rows = []
    for name in order:
        p = preds[preds.pipeline == name]

        def acc(phase: str, fresh: bool) -> float | None:
            g = p[(p.phase == phase) & (p.fresh == fresh)]
            return float(g[metric].mean()) if len(g) else None

        t = timings.get(name, {})
        rows.append({"pipeline": name, "fresh_questions": int(((p.phase == PHASE_MAIN) & p.fresh).sum()),
                     "fresh_before": acc(PHASE_MAIN, True),
                     "fresh_after_update_no_rebuild": acc(PHASE_NO_REBUILD, True),
                     "no_rebuild_s": t.get("add_documents_s"),
                     "fresh_after_rebuild": acc(PHASE_REBUILT, True),
                     "rebuild_s": t.get("rebuild_s"),
                     # Training time as measured when the adapter was trained, also when this run reused it.
                     "retrain_s": (t.get("rebuild_cost") or {}).get("train_seconds"),
                     "stable_before": acc(PHASE_MAIN, False),
                     "stable_after_rebuild": acc(PHASE_REBUILT, False)})
    return pd.DataFrame(rows)
