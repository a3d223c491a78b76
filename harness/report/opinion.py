"""The blog post's comparison table (accuracy, flexibility, cost, complexity, freshness as high/medium/low),
rebuilt from this run's measurements: every cell carries the number behind it. Accuracy is split into facts the
fine-tune was taught and facts only the documents hold, and the recommendation is given for each. Which arm
leads, ties or may be recommended is the Standing's to say (standing.py): this module only words it."""
from __future__ import annotations

import pandas as pd

from harness.arms.catalog import TUNED_BY
from harness.config import RetrievalConfig, TaskConfig
from harness.names import CONTINUED, NOT_RETRAINED, PHASE_NO_REBUILD, PHASE_REBUILT, RETRAINED
from harness.report.roles import RETRIEVED, control
from harness.report.scale import opinion_cell, usd
from harness.report.standing import LEAD, NONE, NOTHING, Costs, Standing, Standings
from harness.report.tables import ALL
from harness.task.taught import DOCS_ONLY, STABLE_LABELS, TAUGHT, TAUGHT_GENERATED


def _level(values: dict[str, float]) -> dict[str, str]:
    """'high' for the largest value among the contenders, 'low' for the smallest (ties share a word): the cost and
    complexity rows, which no paired test speaks to."""
    distinct = sorted(set(values.values()), reverse=True)
    words = {1: ["same"], 2: ["high", "low"]}.get(len(distinct), ["high", "medium", "low"])
    return {k: words[min(distinct.index(v), len(words) - 1)] for k, v in values.items()}


def knobs(weights: str, context: str) -> list[str]:
    """Settings a team must choose and keep tuned for an arm: a measurable stand-in for "complexity"."""
    out = ["prompt.system", "prompt.few_shot"]
    if context == RETRIEVED:
        out += ["prompt.rag_instruction", "embedder"] + ["retrieval." + k for k in RetrievalConfig.model_fields]
    for section in TUNED_BY.get(weights, ()):
        out += [f"{section}.{k}" for k in TaskConfig.model_fields[section].annotation.model_fields]
    return out


def _cost_row(c: pd.DataFrame, names: list[str], scale: tuple[str, pd.DataFrame] | None
              ) -> tuple[dict, object, str | None]:
    """Projected cost a year on the deployment profile when one is given and every contender has a projection;
    else the cost measured on this machine for the build and 1,000 questions. Last: the profile used, if one."""
    if scale is not None:
        profile, proj = scale[0], scale[1].set_index("pipeline")
        if proj.loc[names, "projected_usd_per_year"].notna().all():
            return ({n: float(proj.loc[n, "projected_usd_per_year"]) for n in names},
                    lambda n, v: opinion_cell(proj.loc[n], profile), profile)
    return ({n: float(c.loc[n, "build_usd"] + c.loc[n, "usd_per_1k_questions"]) for n in names},
            lambda n, v: f"${v:.4f} for build + 1,000 questions (build ${c.loc[n, 'build_usd']:.4f}, "
                         f"{c.loc[n, 'latency_mean_s']:.3f} s/question incl. retrieval)", None)


def arm_costs(cost: pd.DataFrame, scale: tuple[str, pd.DataFrame] | None = None) -> Costs:
    """What each arm other than the untouched model costs, as the cost row gives it, and its settings to tune as
    the complexity row counts them: the order in which a tie's arms are preferred. `scale`: as opinion_table's."""
    c = cost.set_index("pipeline")
    names = [n for n in cost.pipeline if n != control(cost)]
    values, _, profile = _cost_row(c, names, scale)
    settings = {n: len(knobs(c.loc[n, "weights"], c.loc[n, "context"])) if "weights" in c else 0 for n in names}
    return Costs(values, settings, profile)


def opinion_table(acc: pd.DataFrame, judged: Standings, cost: pd.DataFrame, fresh: pd.DataFrame, metric: str,
                  scale: tuple[str, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, str, str | None] | None:
    """The table, a recommendation that cites its figures, and the deployment profile its cost row was projected
    on (None: measured on this machine); None without two contenders. `judged`: the run's Standings, whose
    words the accuracy, flexibility and freshness cells take; `scale`: a profile's name and its cost_projection
    table, which the cost row uses when every contender has a projection (as arm_costs did for `judged`)."""
    names = [n for n in acc.pipeline.unique() if n != control(cost)]  # the untouched model is not a contender
    if len(names) < 2:
        return None
    c = cost.set_index("pipeline")
    f = fresh.set_index("pipeline") if len(fresh) else None
    has_fresh = f is not None and f.fresh_questions.max() > 0 and f.fresh_after_rebuild.notna().all()
    present = [g for g in STABLE_LABELS if (acc.knowledge == g).any()] or [ALL]

    def artifacts_mb(n: str) -> float:
        return sum(float(c.loc[n, k]) for k in ("adapter_mb", "index_mb") if k in c and pd.notna(c.loc[n, k]))

    # label -> (values, cell words, the Standing whose levels the cells take; None: ranked by value)
    rows: dict[str, tuple[dict[str, float], object, Standing | None]] = {}
    for group in present:
        a = acc[acc.knowledge == group].set_index("pipeline")
        label = "accuracy" if group == ALL else f"accuracy ({group})"
        rows[label] = ({n: float(a.loc[n, metric]) for n in names},
                       lambda n, v, a=a: f"{metric} {v:.3f} [{a.loc[n, f'{metric}_ci95_low']:.2f}, "
                                         f"{a.loc[n, f'{metric}_ci95_high']:.2f}] (n={int(a.loc[n, 'questions'])})",
                       judged.groups[group])
    rows["cost"] = (judged.costs.usd, _cost_row(c, names, scale)[1], None)
    rows["complexity"] = (judged.costs.settings,
                          lambda n, v: f"{v} settings to tune, "
                          + (f"{artifacts_mb(n):.1f} MB of artifacts" if artifacts_mb(n) else "no artifacts")
                          + (", a training run" if pd.notna(c.loc[n, "train_seconds"]) else ""), None)
    if has_fresh:
        rows["flexibility"] = ({n: float(f.loc[n, "fresh_after_update_no_rebuild"]) for n in names},
                               lambda n, v: f"{v:.3f} on new facts with no rebuild", judged.fresh[PHASE_NO_REBUILD])

        def absorbed(n: str, v: float) -> str:
            if f.loc[n, "rebuild"] == NOT_RETRAINED:
                return f"{v:.3f} on new facts; {NOT_RETRAINED} (re-index only, {f.loc[n, 'rebuild_s']:.1f} s)"
            how = str(f.loc[n, "rebuild"]).split(":")[0]
            how = f" ({how})" if how in (CONTINUED, RETRAINED) else ""
            return f"{v:.3f} on new facts after a rebuild{how} costing {f.loc[n, 'rebuild_s']:.1f} s"
        rows["freshness"] = ({n: float(f.loc[n, "fresh_after_rebuild"]) for n in names}, absorbed,
                             judged.fresh[PHASE_REBUILT])
    table = []
    order = [r for r in rows if r.startswith("accuracy")] + ["flexibility", "cost", "complexity", "freshness"]
    for row in order:
        if row not in rows:
            continue
        values, describe, standing = rows[row]
        # As in the article, high cost means expensive and high accuracy good; a score's word is the Standing's.
        levels = _level({n: values[n] for n in names}) if standing is None else {n: standing.level(n) for n in names}
        table.append({"": row, **{n: f"{levels[n]}: {describe(n, values[n])}" for n in names}})
    return pd.DataFrame(table), recommendation(judged, present, names), judged.costs.profile


WHAT = {TAUGHT: "facts the training pairs teach", TAUGHT_GENERATED: "facts only generated pairs cover",
        DOCS_ONLY: "facts only the documents hold", ALL: "these questions"}
FRESH = "documents that arrive after the build"


def advice(s: Standing, what: str) -> str:
    """The recommendation for one set of questions: the Standing's pick, or no arm, with the reason."""
    kind, m = s.kind, s.metric
    if kind == NOTHING:
        return f"for {what}, no arm (every one scores 0)"
    if kind == NONE:
        beat = s.to_beat_control()
        return (f"for {what}, no arm: none is shown better than the untouched model on these {s.questions} "
                f"questions ({s.against_control()})" + (f", and {beat}" if beat else ""))
    if kind == LEAD:
        return f"for {what}, **{s.leader}** ({m} {s.scores[s.leader]:.3f})"
    if not s.eligible():
        return f"for {what}, **{s.leader}** ({m} {s.scores[s.leader]:.3f}; {s.left_out()})"
    role = "the leader and the cheapest" if s.pick == s.leader else "the cheapest"
    dropped = len(s.eligible()) < len(s.tied)
    return (f"for {what}, **{s.pick}** ({s.costs.words(s.pick)}), {role} of a tie: {s.not_above(s.eligible())}, "
            f"and {s.separating()}" + (f" ({s.left_out()})" if dropped else ""))


def fresh_advice(s: Standing) -> str:
    """The recommendation for documents that arrive after the build, from the fresh questions answered with the
    new documents added and no rebuild."""
    if s.kind == LEAD:
        return (f"for {FRESH}, **{s.leader}** takes them in with no rebuild ({s.scores[s.leader]:.3f} on fresh "
                "questions)")
    return advice(s, f"{FRESH}, taken in with no rebuild")


def cost_advice(judged: Standings, names: list[str]) -> str:
    """The cheapest arm worth its cost: an arm no better than the untouched model is none, however cheap."""
    useful = judged.useful()
    if not useful:
        return ("no arm is shown better than the untouched model on any of these questions, so none is named for its "
                "cost")
    pick, costs = useful[0], judged.costs
    low = costs.usd[pick]
    said = (f"{pick} has the lowest projected cost a year on {costs.profile} ({usd(low)})" if costs.profile else
            f"{pick} is cheapest for build + 1,000 questions (${low:.4f})")
    return said if pick == costs.cheapest(names) else f"{said} of the arms shown better than the untouched model"


def recommendation(judged: Standings, present: list[str], names: list[str]) -> str:
    """For each group of stable questions in `present`, for documents that arrive after the build (when the
    update was measured) and for cost, what to build: the Standings' picks, in words. `names`: the contenders."""
    parts = [advice(judged.groups[g], WHAT[g]) for g in present]
    if PHASE_NO_REBUILD in judged.fresh and PHASE_REBUILT in judged.fresh:
        parts.append(fresh_advice(judged.fresh[PHASE_NO_REBUILD]))
    parts.append(cost_advice(judged, names))
    return "Recommendation: " + "; ".join(parts) + "."
