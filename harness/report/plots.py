"""PNG figures beside the report, drawn only from the run's saved tables and costs."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def accuracy_bars(acc: pd.DataFrame, metric: str, path: Path) -> str:
    """Grouped bars: each arm on all stable questions, then taught and documents-only ones, with 95% CIs."""
    groups = list(dict.fromkeys(acc.knowledge)) if "knowledge" in acc else [None]
    arms = list(dict.fromkeys(acc.pipeline))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.2 * len(arms) * max(1, len(groups)) / 2), 3.6))
    width = 0.8 / len(groups)
    for j, (g, color) in enumerate(zip(groups, ["#4C72B0", "#DD8452", "#55A868"])):
        part = acc if g is None else acc[acc.knowledge == g]
        part = part.set_index("pipeline").reindex(arms)
        err = [part[metric] - part[f"{metric}_ci95_low"], part[f"{metric}_ci95_high"] - part[metric]]
        xs = [i + (j - (len(groups) - 1) / 2) * width for i in range(len(arms))]
        ax.bar(xs, part[metric], width, yerr=err, capsize=3, color=color, label=g)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel(f"{metric} (95% CI)")
    ax.set_ylim(0, 1.05)
    if groups != [None]:
        ax.legend(fontsize=8)
    ax.set_title("Accuracy on stable questions")
    return _save(fig, path)


def accuracy_vs_cost(acc: pd.DataFrame, cost: pd.DataFrame, metric: str, path: Path) -> str:
    """Each pipeline at (seconds per question, accuracy); the Pareto front joins those nothing beats on both."""
    if "knowledge" in acc:
        acc = acc[acc.knowledge == acc.knowledge.iloc[0]]  # all stable questions
    d = acc.merge(cost, on="pipeline")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.scatter(d.latency_mean_s, d[metric], color="#DD8452", zorder=3)
    for _, r in d.iterrows():
        ax.annotate(r.pipeline, (r.latency_mean_s, r[metric]), textcoords="offset points", xytext=(5, 4))
    front, best = [], -1.0
    for _, r in d.sort_values(["latency_mean_s", metric], ascending=[True, False]).iterrows():
        if r[metric] > best:
            front.append((r.latency_mean_s, r[metric]))
            best = r[metric]
    ax.plot(*zip(*front), "--", color="grey", label="Pareto front")
    ax.set_xlabel("seconds per question (amortised)")
    ax.set_ylabel(metric)
    ax.legend(loc="lower right")
    ax.set_title("Accuracy vs cost per question")
    return _save(fig, path)


def freshness_bars(fresh: pd.DataFrame, path: Path) -> str:
    cols = ["fresh_before", "fresh_after_update_no_rebuild", "fresh_after_rebuild"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    fresh.set_index("pipeline")[cols].plot.bar(ax=ax, rot=0, color=["#C44E52", "#DD8452", "#55A868"])
    ax.set_ylabel("accuracy on fresh questions")
    ax.set_ylim(0, 1.05)
    ax.legend(["before update", "update, no rebuild", "after rebuild"], fontsize=8)
    ax.set_title("Freshness: questions only the update answers")
    return _save(fig, path)


def loss_curves(histories: dict[str, list[dict]], path: Path) -> str | None:
    if not histories:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (label, hist), color in zip(histories.items(), ["#4C72B0", "#55A868", "#C44E52", "#8172B3", "#937860",
                                                         "#DA8BC3", "#8C8C8C", "#CCB974"]):
        train = [(h["epoch"], h["loss"]) for h in hist if "loss" in h and "epoch" in h]
        evals = [(h["epoch"], h["eval_loss"]) for h in hist if "eval_loss" in h]
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.6, label=f"{label} train")
        if evals:
            ax.plot(*zip(*evals), "o-", color=color, label=f"{label} eval")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Training loss of each adapter")
    return _save(fig, path)


def draw_all(run_dir: Path, acc, cost, fresh, metric: str, histories: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """Returns (caption, file name) for each figure written."""
    figs = [("Accuracy with 95% intervals", accuracy_bars(acc, metric, run_dir / "accuracy.png")),
            ("Accuracy vs cost per question", accuracy_vs_cost(acc, cost, metric, run_dir / "accuracy_vs_cost.png"))]
    if len(fresh) and fresh.fresh_questions.max() > 0:
        figs.append(("Freshness before and after the update", freshness_bars(fresh, run_dir / "freshness.png")))
    loss = loss_curves(histories, run_dir / "finetune_loss.png")
    if loss:
        figs.append(("Fine-tuning train and eval loss", loss))
    return figs
