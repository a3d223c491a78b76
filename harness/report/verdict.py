"""The verdict's sentences: who wins and who loses on each knowledge group, whether the run agrees with the
published direction (Ovadia et al. 2024), the freshness experiment, and how the test questions are covered."""
from __future__ import annotations

import pandas as pd

from harness.markdown import cell
from harness.names import NOTHING_TO_REBUILD, PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT, REINDEXED
from harness.report import roles
from harness.report.standing import LEAD, NONE, NOTHING, TIE, Standing, Standings
from harness.task.taught import DOCS_ONLY, TAUGHT, TAUGHT_GENERATED


def _the(n: int, group: str) -> str:
    """"the 10 taught", but "all 22 stable" for the group of every stable question."""
    return f"all {n} {group[4:]}" if group.startswith("all ") else f"the {n} {group}"


def ranking(acc: pd.DataFrame, standing: Standing, group: str, metric: str) -> list[str]:
    """Who leads `group`, as its Standing says, the ranking behind it, why a tie is one, and the arms not shown
    better than the untouched model."""
    # Stable: arms with equal scores keep run order, the order a tie names them in.
    part = acc[acc.knowledge == group].sort_values(metric, ascending=False, kind="stable")
    if part.empty:
        return []
    n, kind = int(part.questions.max()), standing.kind
    out = [f"On {_the(n, group)} questions, {standing.headline()}"
           + ("." if kind == NOTHING else "; ranking: " + ", ".join(f"{r.pipeline} {r[metric]:.3f}"
                                                                    for _, r in part.iterrows()) + ".")]
    why = _why(standing)
    if why:
        out.append(f"On {group} questions, {why}.")
    if kind in (TIE, LEAD) and standing.control:
        losers = [f"{r.pipeline} ({r[metric]:.3f})" for _, r in part.iterrows()
                  if r.pipeline != standing.control and r.pipeline not in standing.shown]
        if losers:
            out.append(f"On {group} questions, not shown better than the untouched base model "
                       f"({standing.floor:.3f}): " + ", ".join(losers) + ".")
    return out


def _why(standing: Standing) -> str:
    """What stands behind a headline that names no best arm: the questions that would show whether the leader
    beats the untouched model, or the tie explained."""
    if standing.kind == NONE:
        return standing.to_beat_control()
    return standing.tie_words() if standing.kind == TIE else ""


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


def freshness(fresh: pd.DataFrame, judged: Standings) -> list[str]:
    """The fresh questions in each phase of the update, worded by the phase's Standing as a knowledge group's is."""
    phases = [judged.fresh.get(p) for p in (PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT)]
    if any(s is None for s in phases):
        return []
    before, added, rebuilt = phases
    f = fresh.dropna(subset=["fresh_after_rebuild"]).set_index("pipeline")
    took = f", the documents added in {cell(f.loc[added.leader, 'no_rebuild_s'])} s" if added.kind == LEAD else ""
    rebuilds = ", ".join(f"{n} {cell(r.rebuild_s)} s"
                         + (f" ({r.rebuild})" if r.rebuild not in (REINDEXED, NOTHING_TO_REBUILD) else "")
                         for n, r in f.iterrows())
    out = [f"Fresh questions (the {rebuilt.questions} answered only by documents that arrive later): before the "
           f"update, {before.headline()}; with the new documents added and no rebuild, {added.headline()}{took}."]
    out += [f"{when}, {_why(s)}." for when, s in (("Before the update", before), ("With no rebuild", added)) if _why(s)]
    out.append(f"After a rebuild, on fresh questions {rebuilt.headline()}; rebuild costs (including the training "
               f"each depends on): {rebuilds}.")
    return out + ([f"After a rebuild, {_why(rebuilt)}."] if _why(rebuilt) else [])


def verdict(acc: pd.DataFrame, judged: Standings, fresh: pd.DataFrame, cost: pd.DataFrame, metric: str) -> list[str]:
    """Plain sentences that say who won and who lost, for each knowledge group and each phase of the update,
    from the tables and the Standings judged on them."""
    groups = list(dict.fromkeys(acc.knowledge))
    out = []
    for g in groups:
        out += ranking(acc, judged.groups[g], g, metric)
    if DOCS_ONLY not in groups:
        out.append("This task has no documents-only questions (every stable answer is taught by a training pair, "
                   "hand-written or generated), "
                   "so it cannot speak to knowledge the fine-tune was not given.")
    out += published_direction(acc, cost, metric)
    if len(fresh) and fresh.fresh_questions.sum() > 0:
        out += freshness(fresh, judged)
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
