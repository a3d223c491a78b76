"""Writes a run folder (CSV, Markdown, predictions, run.json) atomically, and re-renders one from its files."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from .errors import HarnessError
from .opinion import opinion_table
from .plots import draw_all
from .runfiles import load_run
from .runner import PipelineResult
from .tables import (DEFAULT_PRICES, accuracy_table, break_even, cost_table, freshness_table, retrieval_table,
                     significance_table, slice_table)

METRIC_NOTES = {
    "exact_match": "the normalised answer equals a reference",
    "contains": "a reference appears, as whole words, in the normalised answer",
    "f1": "token-overlap F1 with the best reference (SQuAD style)",
    "rouge_l": "ROUGE-L F-measure (longest common subsequence)",
    "semantic": "cosine similarity of answer and reference embeddings",
}


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.astype(object).itertuples(index=False)]
    return "\n".join(lines)


def verdict(acc: pd.DataFrame, sig: pd.DataFrame, fresh: pd.DataFrame, metric: str) -> list[str]:
    """Plain sentences that say who won and who lost, from the tables alone."""
    out = []
    ranked = acc.sort_values(metric, ascending=False)
    best = ranked.iloc[0]
    out.append(f"On the {int(best.questions)} stable questions, **{best.pipeline}** scores best "
               f"({metric} {best[metric]:.3f}); ranking: "
               + ", ".join(f"{r.pipeline} {r[metric]:.3f}" for _, r in ranked.iterrows()) + ".")
    vs_best = sig[((sig.a == best.pipeline) | (sig.b == best.pipeline))]
    unclear = [r.b if r.a == best.pipeline else r.a for _, r in vs_best.iterrows() if not r.significant]
    if unclear:
        out.append(f"The lead of {best.pipeline} over {', '.join(unclear)} is not significant (paired test, "
                   "p ≥ 0.05): on these questions they cannot be told apart.")
    base = acc[acc.pipeline == "base"]
    if len(base):
        b = float(base[metric].iloc[0])
        losers = [f"{r.pipeline} ({r[metric]:.3f})" for _, r in acc.iterrows()
                  if r.pipeline != "base" and r[metric] <= b]
        if losers:
            out.append(f"Not better than the untouched base model ({b:.3f}): " + ", ".join(losers) + ".")
    if len(fresh) and fresh.fresh_questions.sum() > 0:
        f = fresh.dropna(subset=["fresh_after_rebuild"])
        if len(f):
            nb = f.sort_values("fresh_after_update_no_rebuild", ascending=False).iloc[0]
            after = (f"**{nb.pipeline}** reaches {nb.fresh_after_update_no_rebuild:.3f} (in {_fmt(nb.no_rebuild_s)} s)"
                     if nb.fresh_after_update_no_rebuild > 0 else "no pipeline answers any of them")
            out.append(f"Fresh questions (answered only by documents that arrive later): before the update the best "
                       f"pipeline scores {f.fresh_before.max():.3f}; with the new documents added and no rebuild, "
                       f"{after}.")
            rb = f.sort_values("fresh_after_rebuild", ascending=False).iloc[0]
            out.append(f"After a full rebuild (re-index, retrain), **{rb.pipeline}** scores best on fresh questions "
                       f"({rb.fresh_after_rebuild:.3f}); rebuild wall times: "
                       + ", ".join(f"{r.pipeline} {_fmt(r.rebuild_s)} s" for _, r in f.iterrows()) + ".")
    return out


def _loss_histories(saved: dict) -> dict[str, list[dict]]:
    """Training logs of each distinct adapter in the run (a shared adapter appears once)."""
    out, seen = {}, set()
    for name, c in saved["costs"].items():
        for label, cost in ((name, c), (f"{name}, rebuilt", saved["timings"].get(name, {}).get("rebuild_cost"))):
            if cost and cost.get("log_history") and cost.get("adapter") not in seen:
                seen.add(cost["adapter"])
                out[label] = cost["log_history"]
    return out


def _opinion_section(acc, sig, cost, fresh, metric: str) -> list[str]:
    made = opinion_table(acc, sig, cost, fresh, metric)
    if made is None:
        return []
    table, recommendation = made
    return ["## The opinion table, measured", "",
            "The rows of the usual blog comparison, each cell filled from this run: accuracy (headline metric, 95% "
            "interval), flexibility (new facts answered with no rebuild), cost (build + 1,000 questions), "
            "complexity (settings to tune, artifacts), freshness (new facts after a rebuild, and its time). "
            "high/medium/low rank the three against each other.", "",
            markdown_table(table), "", recommendation, ""]


def render(run_dir: Path) -> list[str]:
    """(Re)writes accuracy.csv, cost.csv, freshness.csv and report.md from the run's saved files.

    Returns the verdict sentences, for the one-screen summary."""
    info, saved, preds = load_run(run_dir)  # each file checked: a damaged run is one clear error
    order, metric = info["pipelines"], info["config"]["metric"]
    acc = accuracy_table(preds, order, metric, info["seed"])
    sig = significance_table(preds, order, metric, info["seed"])
    slices = slice_table(preds, order, metric)
    retrieval = retrieval_table(preds, order, metric)
    prices = info.get("prices") or {"hour_usd": DEFAULT_PRICES["cpu_hour_usd"],
                                     "per_million_tokens_usd": DEFAULT_PRICES["per_million_tokens_usd"]}
    cost = cost_table(saved["costs"], order, prices)
    n_even = break_even(cost, "finetune", "rag")
    fresh = freshness_table(preds, saved["timings"], order, metric)
    for name, df in (("accuracy", acc), ("significance", sig), ("slices", slices), ("retrieval", retrieval),
                     ("cost", cost), ("freshness", fresh)):
        df.to_csv(run_dir / f"{name}.csv", index=False)
    said = verdict(acc, sig, fresh, metric)
    if info.get("train_answer_coverage") is not None:
        said.append(f"Context for fine-tuning's score: {info['train_answer_coverage']:.0%} of the stable test questions "
                    "have their answer among the training answers (asked in other words), so fine-tuning was "
                    "taught those facts; on facts it was never shown it can only guess.")
    figures = draw_all(run_dir, acc, cost, fresh, metric, _loss_histories(saved))
    n_stable, n_fresh = int(acc.questions.max()), int(fresh.fresh_questions.max() if len(fresh) else 0)
    md = [f"# {info['task']}: fine-tuning vs RAG vs prompting, measured", "",
          f"Model `{info['model']}` · embedder `{info['embedder']}` · seed {info['seed']} · "
          f"{n_stable} stable + {n_fresh} fresh held-out questions · primary metric **{metric}** "
          f"({METRIC_NOTES[metric]}) · run {info['started']} · commit `{info.get('git_commit') or 'n/a'}`", "",
          "## Verdict", "", *[f"- {s}" for s in said], "",
          *_opinion_section(acc, sig, cost, fresh, metric),
          "## Accuracy (stable questions, before the update)", "", markdown_table(acc), "",
          "Metrics: " + "; ".join(f"**{k}**: {v}" for k, v in METRIC_NOTES.items()) + ". "
          f"`{metric}_ci95_low/high`: 95% bootstrap interval over questions (2,000 resamples, seeded). "
          "`retrieval_hit_rate`: share of questions whose source document was among the retrieved passages.", "",
          f"### Which differences are real ({metric}, paired on the same questions)", "",
          markdown_table(sig), "",
          "McNemar's exact test for 0/1 scores, a sign-flip permutation test otherwise; `significant` at p < 0.05, "
          "uncorrected for the number of pairs.", "",
          f"### By topic ({metric}, stable questions)", "", markdown_table(slices), "",
          *([f"### Retrieval quality (stable questions)", "", markdown_table(retrieval), "",
             "`hit_at_k`: the source document is among the k passages; `mrr`: mean reciprocal rank of its first "
             f"passage; `{metric}_gold_retrieved` / `_gold_missed`: accuracy when retrieval found the source "
             "and when it did not (a low first number means the generator failed, a low hit rate that the "
             "retriever did).", ""] if len(retrieval) else []),
          "## Cost", "", markdown_table(cost), "",
          "`build_s`: wall time to build in this run (a cached adapter costs only its load); `train_seconds`: "
          "training time measured when the adapter was trained. Latency is per question, amortised over a "
          "batch of generation (greedy, batch size "
          f"{info['config']['generation']['batch_size']}, max {info['config']['generation']['max_new_tokens']} "
          "new tokens). `peak_rss_mb`: the process's peak resident memory while the pipeline ran. Money at "
          f"${prices['hour_usd']}/hour of this machine ({info['device']}) and ${prices['per_million_tokens_usd']} per "
          "million prompt+generated tokens (`--hour-usd`, `--usd-per-million-tokens`).", "",
          ("Break-even: " + ("fine-tuning never pays back its training against RAG here: its answers are not "
                             "cheaper." if n_even is None else
                             f"fine-tuning's training pays back against RAG's longer prompts after "
                             f"**{n_even:,.0f} questions**.")) if "finetune" in order and "rag" in order else "",
          "",
          f"## Freshness ({metric})", ""]
    if n_fresh and not info.get("freshness", True):
        md += [markdown_table(fresh), "", "The update experiment was skipped in this run (`--no-freshness`): "
               "only the fresh questions' scores before any update are measured."]
    elif n_fresh:
        md += [markdown_table(fresh), "",
               "`fresh_before`: built on the original knowledge. `fresh_after_update_no_rebuild`: the update's "
               "documents handed to the pipeline with no retraining and no re-index (a retriever adds them to its "
               "index; weights stay as they are). `fresh_after_rebuild`: rebuilt from scratch on original + update "
               "(re-index, retrain); `rebuild_s` its wall time, `retrain_s` the measured training time. "
               "`stable_after_rebuild` checks that absorbing the update did not cost the old knowledge."]
    else:
        md += ["This task has no `updates/` and no fresh questions, so freshness was not measured."]
    md += ["", "## Figures", ""] + [f"![{caption}]({name})" for caption, name in figures]
    md += ["", "Per-question answers, references, retrieved passages and scores: `predictions.jsonl`. "
           "Config, seed, versions and commit: `run.json`.", ""]
    (run_dir / "report.md").write_text("\n".join(md))
    from .html_report import write_report_html  # imported here: modules that only import report skip Jinja
    write_report_html(run_dir)
    return said


def start_run(results_dir: Path, task_name: str, resume_key: str, resume: bool, must_resume: bool = True) -> Path:
    """The hidden folder a run works in. With `resume`, the newest unfinished one with the same inputs
    (in a sweep, points that never started just start: `must_resume` False)."""
    parent = results_dir / task_name
    if resume:
        for tmp in sorted(parent.glob(".*.partial"), reverse=True):
            if (tmp / "resume_key").is_file() and (tmp / "resume_key").read_text() == resume_key:
                print(f"resuming {tmp}", flush=True)
                return tmp
    if resume and must_resume:
        raise HarnessError(f"nothing to resume: no unfinished run in {parent} with the same task data, config, "
                           "models and pipelines (drop --resume to start a new run)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = parent / f".{stamp}.partial"
    n = 1
    while tmp.exists() or (parent / tmp.name[1:-len(".partial")]).exists():
        n += 1
        tmp = parent / f".{stamp}-{n}.partial"
    tmp.mkdir(parents=True)
    (tmp / "resume_key").write_text(resume_key)
    return tmp


def finish_run(tmp: Path, results: list[PipelineResult], info: dict) -> tuple[Path, list[str]]:
    """Writes the run's files into its hidden folder, then renames it into place: only complete runs show."""
    with open(tmp / "predictions.jsonl", "w") as f:
        for r in results:
            for p in r.predictions:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    (tmp / "costs.json").write_text(json.dumps({"costs": {r.name: r.cost for r in results},
                                                "timings": {r.name: r.timings for r in results}}, indent=1))
    (tmp / "run.json").write_text(json.dumps({**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    said = render(tmp)
    for scratch in ("answers.log.jsonl", "resume_key"):
        (tmp / scratch).unlink(missing_ok=True)
    final = tmp.with_name(tmp.name[1:-len(".partial")])
    tmp.rename(final)
    return final, said
