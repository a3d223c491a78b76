"""The verdict's sentences: who wins and who loses on each knowledge group, whether the run agrees with the
published direction (Ovadia et al. 2024), the freshness experiment, and how the test questions are covered."""
from __future__ import annotations

import pandas as pd

from harness.markdown import cell
from harness.names import NOTHING_TO_REBUILD, PHASE_MAIN, PHASE_REBUILT, REINDEXED
from harness.report import roles
from harness.report.stats import paired_p
from harness.task.taught import DOCS_ONLY, TAUGHT, TAUGHT_GENERATED


def _the(n: int, group: str) -> str:
    """"the 10 taught", but "all 22 stable" for the group of every stable question."""
    return f"all {n} {group[4:]}" if group.startswith("all ") else f"the {n} {group}"


def ranking(acc: pd.DataFrame, sig: pd.DataFrame, group: str, metric: str, base_arm: str | None) -> list[str]:
    part = acc[acc.knowledge == group].sort_values(metric, ascending=False)
    if part.empty:
        return []
    best = part.iloc[0]
    n = int(best.questions)
    if best[metric] == 0:  # no winner to name when nothing scores
        return [f"On {_the(n, group)} questions, no arm answers any correctly ({metric} 0.000 for every arm)."]
    out = [f"On {_the(n, group)} questions, **{best.pipeline}** scores best ({metric} "
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


def published_direction(acc: pd.DataFrame, cost: pd.DataFrame, metric: str) -> list[str]:
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


def fresh_lead(preds: pd.DataFrame | None, best: str, others: list[str], metric: str) -> str:
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
        out += ranking(acc, sig, g, metric, roles.control(cost))
    if DOCS_ONLY not in groups:
        out.append("This task has no documents-only questions (every stable answer is taught by a training pair, "
                   "hand-written or generated), "
                   "so it cannot speak to knowledge the fine-tune was not given.")
    out += published_direction(acc, cost, metric)
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
                       + fresh_lead(preds, rb.pipeline, [p for p in f.pipeline if p != rb.pipeline], metric))
    return out


def coverage(info: dict, preds: pd.DataFrame) -> list[str]:
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
