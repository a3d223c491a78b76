"""The accuracy, cost and freshness tables, computed from saved predictions and costs alone.

Stable questions are reported in groups: all of them, then `taught` (the fine-tune saw the fact in its
hand-written training pairs), `taught (generated)` (only a pair generated from the documents covers it) and
`documents-only` (only the documents hold it), see harness/task/taught.py."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.config import METRICS
from harness.names import DEFAULT_PRICES, NOT_RETRAINED, PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT, PHASES
from harness.report.stats import bootstrap_ci, bootstrap_ci_seeds, holm, paired_p
from harness.task.taught import STABLE_LABELS

ALL = "all stable"  # the group of every stable question, before the split by label


def _mean_or_none(series: pd.Series) -> float | None:
    s = series.dropna()
    return float(s.astype(float).mean()) if len(s) else None


def average_seeds(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per (phase, arm, question): scores averaged over training seeds (a run with `--seeds N`), so
    every table compares arms on the same questions whatever the number of seeds behind each."""
    if "seed" not in preds or preds.groupby(["phase", "pipeline", "id"]).size().max() == 1:
        return preds
    scores = [c for c in (*METRICS, "seconds", "prompt_tokens", "new_tokens") if c in preds]
    first = preds.drop_duplicates(["phase", "pipeline", "id"]).set_index(["phase", "pipeline", "id"])
    means = preds.groupby(["phase", "pipeline", "id"])[scores].mean()
    first[scores] = means.loc[first.index, scores]
    return first.reset_index()


def seed_matrix(preds: pd.DataFrame, name: str, ids: list[str], metric: str) -> np.ndarray | None:
    """Training seeds x questions scores of one arm, or None when it ran with one seed."""
    if "seed" not in preds:
        return None
    g = preds[(preds.phase == PHASE_MAIN) & (preds.pipeline == name) & preds.id.isin(ids)]
    if g.seed.nunique() < 2:
        return None
    return g.pivot(index="seed", columns="id", values=metric)[ids].to_numpy(dtype=float)


def stable_main(preds: pd.DataFrame) -> pd.DataFrame:
    """Main-phase answers to the questions the original knowledge covers (all of them if none is fresh)."""
    main = preds[preds.phase == PHASE_MAIN]
    return main[~main.fresh] if (~main.fresh).any() else main


def groups(preds: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(name, main-phase stable rows) for all stable questions, then each knowledge group present."""
    stable = stable_main(preds)
    out = [(ALL, stable)]
    if "knowledge" in stable:
        out += [(g, stable[stable.knowledge == g]) for g in STABLE_LABELS if (stable.knowledge == g).any()]
    return out


def metrics_present(preds: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in preds]  # older runs have no `recall`


def accuracy_table(preds: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> pd.DataFrame:
    """Mean of each metric per group of stable questions, with a 95% bootstrap interval on the headline."""
    rows = []
    for group, stable in groups(average_seeds(preds)):
        for name in order:
            g = stable[stable.pipeline == name]
            per_seed = seed_matrix(preds, name, list(g.id), metric)
            lo, hi = bootstrap_ci(g[metric].to_numpy(), seed) if per_seed is None else \
                bootstrap_ci_seeds(per_seed, seed)
            rows.append({"knowledge": group, "pipeline": name, "questions": len(g),
                         **{m: float(g[m].mean()) for m in metrics_present(preds)},
                         f"{metric}_ci95_low": lo, f"{metric}_ci95_high": hi,
                         "seeds": 1 if per_seed is None else len(per_seed),
                         f"{metric}_seed_spread": None if per_seed is None else
                         float(per_seed.mean(1).max() - per_seed.mean(1).min()),
                         "retrieval_hit_rate": _mean_or_none(g["gold_retrieved"])})
    return pd.DataFrame(rows)


def pairwise(wide: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> list[dict]:
    """Every pair of `order`'s arms on the questions of `wide` (question x arm scores): difference of means, a
    paired test, and the Holm-adjusted p-value over these pairs, which is what `significant` uses."""
    batch = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            p, test = paired_p(wide[a].to_numpy(), wide[b].to_numpy(), seed)
            batch.append({"a": a, "b": b, f"{metric}_a": float(wide[a].mean()), f"{metric}_b": float(wide[b].mean()),
                          "difference": float(wide[a].mean() - wide[b].mean()), "p_value": p, "test": test})
    for r, adj in zip(batch, holm([r["p_value"] for r in batch])):
        r.update(p_holm=adj, significant=adj < 0.05)
    return batch


def significance_table(preds: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> pd.DataFrame:
    """Every pair of arms on the same questions, per group (see pairwise); Holm runs over each group's pairs."""
    rows = []
    for group, stable in groups(average_seeds(preds)):
        wide = stable.pivot(index="id", columns="pipeline", values=metric)
        rows += [{"knowledge": group, **r} for r in pairwise(wide, order, metric, seed)]
    return pd.DataFrame(rows, columns=_pair_columns("knowledge", metric))


def fresh_significance_table(preds: pd.DataFrame, order: list[str], metric: str, seed: int = 0) -> pd.DataFrame:
    """The same pairs on the fresh questions, per phase (before the update, no rebuild, rebuilt), among the arms
    answered in that phase; Holm runs over each phase's pairs. Not written as a CSV: the verdict reads it."""
    rows = []
    preds = average_seeds(preds)
    for phase in PHASES:
        fresh = preds[(preds.phase == phase) & preds.fresh.astype(bool)]
        wide = fresh.pivot(index="id", columns="pipeline", values=metric)
        rows += [{"phase": phase, **r} for r in pairwise(wide, [n for n in order if n in wide], metric, seed)]
    return pd.DataFrame(rows, columns=_pair_columns("phase", metric))


def _pair_columns(label: str, metric: str) -> list[str]:
    # Named columns even with no pairs (a one-arm run), so readers can filter on them.
    return [label, "a", "b", f"{metric}_a", f"{metric}_b", "difference", "p_value", "test", "p_holm", "significant"]


def slice_table(preds: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """Headline metric per topic and knowledge group (stable questions): where each arm wins and loses."""
    parts = []
    for group, stable in groups(average_seeds(preds)):
        wide = stable.pivot_table(index="topic", columns="pipeline", values=metric, aggfunc="mean")
        counts = stable[stable.pipeline == order[0]].groupby("topic").size().rename("questions")
        part = wide[order].join(counts).reset_index()
        part.insert(0, "knowledge", group)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def retrieval_table(preds: pd.DataFrame, order: list[str], metric: str) -> pd.DataFrame:
    """For retrieving arms: hit@k, MRR of the gold document, and accuracy with and without it retrieved,
    which separates retrieval failures from generation failures."""
    rows = []
    preds = average_seeds(preds)
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


def prices(info: dict) -> dict[str, float]:
    """The run's prices for the money columns (run.json), else the `run` options' defaults."""
    return info.get("prices") or {"hour_usd": DEFAULT_PRICES["cpu_hour_usd"],
                                  "per_million_tokens_usd": DEFAULT_PRICES["per_million_tokens_usd"]}


COST_COLUMNS = ["weights", "context", "build_s", "build_total_s", "train_seconds", "train_tokens", "train_examples", "epochs_run", "best_eval_loss",
                "adapter_cached", "index_s", "demonstrations_shown", "latency_mean_s", "latency_p95_s",
                "prompt_tokens_mean", "new_tokens_mean", "peak_rss_mb", "peak_gpu_mb", "adapter_mb", "index_mb",
                "index_chunks", "index_kind"]


def cost_table(costs: dict[str, dict], order: list[str], prices: dict[str, float],
               timings: dict[str, dict] | None = None) -> pd.DataFrame:
    """Measured costs, and money: machine time at `hour_usd`, tokens at `per_million_tokens_usd`.

    `build_total_s` is what building costs from nothing: index, demonstrations and the training the arm
    depends on, as measured when the adapter was trained (also when this run found it in the cache).
    `rebuild_usd` prices one rebuild after an update, as measured in the freshness experiment."""
    rows = []
    for n in order:
        c = costs[n]
        build_s = c.get("build_total_s") or c.get("train_seconds") or c.get("build_s") or 0.0
        t = (timings or {}).get(n, {})
        rebuild_s = t.get("rebuild_s")
        tokens = (c["prompt_tokens_mean"] + c["new_tokens_mean"]) * 1000
        rows.append({"pipeline": n, **{k: c.get(k) for k in COST_COLUMNS},
                     "build_usd": build_s / 3600 * prices["hour_usd"],
                     "rebuild_usd": rebuild_s / 3600 * prices["hour_usd"] if rebuild_s is not None else None,
                     "usd_per_1k_questions": c["latency_mean_s"] * 1000 / 3600 * prices["hour_usd"]
                     + tokens / 1e6 * prices["per_million_tokens_usd"]})
    return pd.DataFrame(rows)


def yearly_usd(cost: pd.DataFrame, name: str, questions: float, updates_per_year: int) -> float:
    """A year of one arm: the first build, one rebuild per update, and the questions."""
    c = cost.set_index("pipeline").loc[name]
    rebuild = c.rebuild_usd if pd.notna(c.rebuild_usd) else c.build_usd
    return float(c.build_usd + updates_per_year * rebuild + questions / 1000 * c.usd_per_1k_questions)


def break_even(cost: pd.DataFrame, a: str, b: str, updates_per_year: int = 12) -> float | None:
    """Questions per year above which `a` (its builds and rebuilds dearer) costs less than `b` in a year,
    counting a rebuild at every update (None: never; 0: `a` is never dearer)."""
    c = cost.set_index("pipeline")
    if a not in c.index or b not in c.index:
        return None
    fixed = yearly_usd(cost, a, 0, updates_per_year) - yearly_usd(cost, b, 0, updates_per_year)
    saving = (c.loc[b, "usd_per_1k_questions"] - c.loc[a, "usd_per_1k_questions"]) / 1000
    if fixed <= 0:
        return 0.0
    return float(fixed / saving) if saving > 0 else None


def freshness_table(preds: pd.DataFrame, timings: dict[str, dict], order: list[str], metric: str) -> pd.DataFrame:
    rows = []
    preds = average_seeds(preds)
    for name in order:
        p = preds[preds.pipeline == name]

        def acc(phase: str, fresh: bool) -> float | None:
            g = p[(p.phase == phase) & (p.fresh == fresh)]
            return float(g[metric].mean()) if len(g) else None

        t = timings.get(name, {})
        note = t.get("rebuild_note")
        rc = t.get("rebuild_cost") or {}
        rows.append({"pipeline": name, "fresh_questions": int(((p.phase == PHASE_MAIN) & p.fresh).sum()),
                     "fresh_before": acc(PHASE_MAIN, True),
                     "fresh_after_update_no_rebuild": acc(PHASE_NO_REBUILD, True),
                     "no_rebuild_s": t.get("add_documents_s"),
                     "rebuild": note,
                     "fresh_after_rebuild": acc(PHASE_REBUILT, True),
                     "rebuild_s": t.get("rebuild_s"),
                     # Training time as measured when the adapter was trained, also when this run reused it;
                     # none where nothing was retrained.
                     "retrain_s": None if note == NOT_RETRAINED else rc.get("train_seconds"),
                     "stable_before": acc(PHASE_MAIN, False),
                     "stable_after_rebuild": acc(PHASE_REBUILT, False)})
    return pd.DataFrame(rows)
