"""Writes a run folder (CSV, Markdown, predictions, run.json) atomically, and re-renders one from its files."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.markdown import cell
from harness.names import NOTHING_TO_REBUILD, PHASE_MAIN, PHASE_REBUILT, REINDEXED
from harness.report import document, roles
from harness.report.html import write_report_html
from harness.report.loaded import LoadedRun, load
from harness.report.plots import draw_all
from harness.report.projection import projection_table
from harness.report.stats import paired_p
from harness.report.tables import (accuracy_table, cost_table, freshness_table, prices, retrieval_table,
                                   significance_table, slice_table)
from harness.task.deployment import Profile, from_record
from harness.task.taught import DOCS_ONLY, TAUGHT, TAUGHT_GENERATED


def _ranking(acc: pd.DataFrame, sig: pd.DataFrame, group: str, metric: str, base_arm: str | None) -> list[str]:
    part = acc[acc.knowledge == group].sort_values(metric, ascending=False)
    if part.empty:
        return []
    best = part.iloc[0]
    out = [f"On the {int(best.questions)} {group} questions, **{best.pipeline}** scores best ({metric} "
           f"{best[metric]:.3f}); ranking: " + ", ".join(f"{r.pipeline} {r[metric]:.3f}" for _, r in part.iterrows())
           + "."]
    g = sig[sig.knowledge == group]
    vs_best = g[(g.a == best.pipeline) | (g.b == best.pipeline)]
    unclear = [r.b if r.a == best.pipeline else r.a for _, r in vs_best.iterrows() if not r.significant]
    if unclear:
        out.append(f"On {group} questions the lead of {best.pipeline} over {', '.join(unclear)} is not significant "
                   "(paired test, Holm-corrected p ≥ 0.05): they cannot be told apart here.")
    base = part[part.pipeline == base_arm]
    if len(base):
        b = float(base[metric].iloc[0])
        losers = [f"{r.pipeline} ({r[metric]:.3f})" for _, r in part.iterrows()
                  if r.pipeline != base_arm and r[metric] <= b]
        if losers:
            out.append(f"On {group} questions, not better than the untouched base model ({b:.3f}): "
                       + ", ".join(losers) + ".")
    return out


def _published_direction(acc: pd.DataFrame, cost: pd.DataFrame, metric: str) -> list[str]:
    """Ovadia et al. (2024): on facts found only in documents, retrieval beats fine-tuning. Say whether this
    run agrees; a contradiction is a reason to look at the answers before trusting the ranking."""
    docs = acc[acc.knowledge == DOCS_ONLY].set_index("pipeline")
    tuned, readers = roles.pairs_finetune(cost), [n for n in roles.retrievers(cost, "base") if n in docs.index]
    if tuned not in docs.index or not readers:
        return []
    r = max(readers, key=lambda n: docs.loc[n, metric])
    ft = float(docs.loc[tuned, metric])
    if docs.loc[r, metric] > ft:
        return [f"On documents-only facts, {r} ({docs.loc[r, metric]:.3f}) beats {tuned} ({ft:.3f}): the direction "
                "Ovadia et al. (2024) report (retrieval over fine-tuning for knowledge not in the training pairs)."]
    return [f"**Check before trusting:** on documents-only facts {tuned} ({ft:.3f}) is not below {r} "
            f"({docs.loc[r, metric]:.3f}), against the published direction (Ovadia et al. 2024). Read the "
            "answers (report.html) and the retrieval table: a weak reader or a lenient metric can cause this."]


def _fresh_lead(preds: pd.DataFrame | None, best: str, others: list[str], metric: str) -> str:
    """Whether the best arm on fresh questions after the rebuild is told apart from the runner-up: 16 fresh
    questions and one training seed can hand first place to either (coffee's finetune scored 0.688 in a float32
    run and 0.375 in a bf16-trained one, where an early stop on 10 held-out pairs ended its update after one
    epoch)."""
    if preds is None or not others:
        return ""
    rows = preds[(preds.phase == PHASE_REBUILT) & preds.fresh.astype(bool)]
    wide = rows.groupby(["id", "pipeline"])[metric].mean().unstack()  # seeds averaged per question
    if best not in wide or len(wide) < 2:
        return ""
    runner = max(others, key=lambda p: wide[p].mean() if p in wide else -1.0)
    if runner not in wide:
        return ""
    p, test = paired_p(wide[best].to_numpy(), wide[runner].to_numpy())
    if p < 0.05:
        return f" {best} leads {runner} ({wide[runner].mean():.3f}) significantly ({test}, p = {p:.3f})."
    return (f" {best}'s lead over {runner} ({wide[runner].mean():.3f}) on {len(wide)} fresh questions is not "
            f"significant ({test}, p = {p:.2f}): another training seed could reverse it (`--seeds N`).")


def verdict(acc: pd.DataFrame, sig: pd.DataFrame, fresh: pd.DataFrame, cost: pd.DataFrame, metric: str,
            preds: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences that say who won and who lost, for each knowledge group, from the tables (and, for the
    fresh questions' paired test, the per-question scores in `preds`)."""
    groups = list(dict.fromkeys(acc.knowledge))
    out = []
    for g in groups:
        out += _ranking(acc, sig, g, metric, roles.control(cost))
    if DOCS_ONLY not in groups:
        out.append("This task has no documents-only questions (every stable answer is taught by a training pair, "
                   "hand-written or generated), "
                   "so it cannot speak to knowledge the fine-tune was not given.")
    out += _published_direction(acc, cost, metric)
    if len(fresh) and fresh.fresh_questions.sum() > 0:
        f = fresh.dropna(subset=["fresh_after_rebuild"])
        if len(f):
            nb = f.sort_values("fresh_after_update_no_rebuild", ascending=False).iloc[0]
            after = (f"**{nb.pipeline}** reaches {nb.fresh_after_update_no_rebuild:.3f} (in {cell(nb.no_rebuild_s)} s)"
                     if nb.fresh_after_update_no_rebuild > 0 else "no arm answers any of them")
            out.append(f"Fresh questions (answered only by documents that arrive later): before the update the best "
                       f"arm scores {f.fresh_before.max():.3f}; with the new documents added and no rebuild, {after}.")
            rb = f.sort_values("fresh_after_rebuild", ascending=False).iloc[0]
            out.append(f"After a rebuild, **{rb.pipeline}** scores best on fresh questions ({rb.fresh_after_rebuild:.3f});"
                       " rebuild costs (including the training each depends on): "
                       + ", ".join(f"{r.pipeline} {cell(r.rebuild_s)} s"
                                   + (f" ({r.rebuild})" if r.rebuild not in (REINDEXED, NOTHING_TO_REBUILD) else "")
                                   for _, r in f.iterrows()) + "."
                       + _fresh_lead(preds, rb.pipeline, [p for p in f.pipeline if p != rb.pipeline], metric))
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


def _projection(run_dir: Path, info: dict, saved: dict, cost: pd.DataFrame,
                deployment: Profile | None) -> tuple[Profile | None, pd.DataFrame | None]:
    """The profile (`--deployment`, else the one run.json recorded) and cost_projection.csv, written here; a
    run with none loses a stale projection rather than keep one report.md no longer shows."""
    profile = deployment or (from_record(info["deployment"], run_dir / "run.json") if info.get("deployment")
                             else None)
    if profile is None:
        (run_dir / "cost_projection.csv").unlink(missing_ok=True)
        return None, None
    proj = projection_table(saved, info["pipelines"], profile, cost, info.get("pair_generation"))
    proj.to_csv(run_dir / "cost_projection.csv", index=False)
    return profile, proj


def _coverage_sentence(info: dict, preds: pd.DataFrame) -> list[str]:
    main = preds[(preds.phase == PHASE_MAIN) & ~preds.fresh].drop_duplicates("id")
    if "knowledge" not in main:
        return []
    taught = int((main.knowledge == TAUGHT).sum())
    covered = int((main.knowledge == TAUGHT_GENERATED).sum())
    sizes = info.get("sizes") or {}
    pairs, generated = sizes.get("train"), sizes.get("generated")
    source = (info.get("pair_generation") or {}).get("training_pairs", "written")
    out = []
    if pairs and source != "generated":
        per = f", {pairs / taught:.1f} pairs per taught fact" if taught else ""
        out.append(f"The fine-tuning arms used hand-written training pairs: this task has {pairs}{per}; {taught} of "
                   f"{len(main)} stable test questions are taught by them.")
    if generated is not None:
        out.append(f"{generated} training pairs were generated from the documents; they cover {covered} of "
                   f"{len(main)} stable test questions that no hand-written pair teaches (`{TAUGHT_GENERATED}`).")
    if out:
        out.append(f"{int((main.knowledge == DOCS_ONLY).sum())} stable test questions are documents-only.")
    return out


def _tables(run: LoadedRun, run_dir: Path) -> dict[str, pd.DataFrame]:
    """The run's tables, each also written as NAME.csv."""
    info, preds = run.info, run.preds
    order, metric, seed = info["pipelines"], info["config"]["metric"], info["seed"]
    tables = {"accuracy": accuracy_table(preds, order, metric, seed),
              "significance": significance_table(preds, order, metric, seed),
              "slices": slice_table(preds, order, metric), "retrieval": retrieval_table(preds, order, metric),
              "cost": cost_table(run.saved["costs"], order, prices(info), run.saved["timings"]),
              "freshness": freshness_table(preds, run.saved["timings"], order, metric)}
    for name, df in tables.items():
        df.to_csv(run_dir / f"{name}.csv", index=False)
    return tables


def render(run_dir: Path, deployment: Profile | None = None) -> list[str]:
    """(Re)writes the CSV tables, figures, report.md and report.html from the run's saved files; with
    `deployment` (else the profile run.json recorded), cost_projection.csv and Cost at your scale too.

    Returns the verdict sentences, for the one-screen summary."""
    run = load(run_dir)
    info, metric = run.info, run.info["config"]["metric"]
    t = _tables(run, run_dir)
    acc, cost, fresh = t["accuracy"], t["cost"], t["freshness"]
    profile, proj = _projection(run_dir, info, run.saved, cost, deployment)
    said = verdict(acc, t["significance"], fresh, cost, metric, run.preds) + _coverage_sentence(info, run.preds)
    figures = draw_all(run_dir, acc, cost, fresh, metric, _loss_histories(run.saved))
    text = document.markdown(document.context(run, t, said, figures, profile, proj))
    (run_dir / "report.md").write_text(text)
    write_report_html(run_dir, run, text)
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


def _write_files(tmp: Path, results: list, info: dict) -> list[str]:
    with open(tmp / "predictions.jsonl", "w") as f:
        for r in results:
            for p in r.predictions:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    (tmp / "costs.json").write_text(json.dumps({"costs": {r.name: r.cost for r in results},
                                                "timings": {r.name: r.timings for r in results}}, indent=1))
    (tmp / "run.json").write_text(json.dumps(info, indent=1))
    return render(tmp)


def write_partial(tmp: Path, results: list, info: dict, planned: list[str]) -> None:
    """The report of the arms done so far, in the run's hidden folder, marked partial: readable minutes into a
    run (and after a kill, where `--resume` goes on from the same folder)."""
    done = [r.name for r in results]
    order = [n for n in planned if n in done]
    _write_files(tmp, sorted(results, key=lambda r: order.index(r.name)),
                 {**info, "pipelines": order, "partial": {"done": order,
                                                          "pending": [n for n in planned if n not in done]}})


def finish_run(tmp: Path, results: list, info: dict) -> tuple[Path, list[str]]:
    """Writes the run's files into its hidden folder, then renames it into place: only complete runs show."""
    said = _write_files(tmp, results, {**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for scratch in ("answers.log.jsonl", "resume_key"):
        (tmp / scratch).unlink(missing_ok=True)
    final = tmp.with_name(tmp.name[1:-len(".partial")])
    tmp.rename(final)
    return final, said
