"""The blog post's comparison table (accuracy, flexibility, cost, complexity, freshness as high/medium/low),
rebuilt from this run's measurements: every cell carries the number behind it. Accuracy is split into facts the
fine-tune was taught and facts only the documents hold, and the recommendation is given for each."""
from __future__ import annotations

import math

import pandas as pd

from harness.arms.catalog import TUNED_BY
from harness.config import RetrievalConfig, TaskConfig
from harness.names import CONTINUED, NOT_RETRAINED, RETRAINED
from harness.report.roles import RETRIEVED, control
from harness.report.scale import opinion_cell, usd
from harness.report.stats import mcnemar_discordant, mcnemar_questions
from harness.report.tables import ALL
from harness.task.taught import DOCS_ONLY, STABLE_LABELS, TAUGHT, TAUGHT_GENERATED


def _level(values: dict[str, float]) -> dict[str, str]:
    """'high' for the largest value among the contenders, 'low' for the smallest (ties share a word)."""
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


def _best(values: dict[str, float], sig: pd.DataFrame, group: str) -> tuple[str, list[str]]:
    best = max(values, key=values.get)
    pair = sig[(sig.knowledge == group) & sig.a.isin(values) & sig.b.isin(values) & ((sig.a == best) | (sig.b == best))]
    ties = [r.b if r.a == best else r.a for _, r in pair.iterrows() if not r.significant]
    return best, ties


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


def opinion_table(acc: pd.DataFrame, sig: pd.DataFrame, cost: pd.DataFrame, fresh: pd.DataFrame, metric: str,
                  scale: tuple[str, pd.DataFrame] | None = None) -> tuple[pd.DataFrame, str, str | None] | None:
    """The table, a recommendation that cites its figures, and the deployment profile its cost row was projected
    on (None: measured on this machine); None without two contenders. `scale`: a profile's name and its
    cost_projection table, which the cost row uses when every contender has a projection."""
    names = [n for n in acc.pipeline.unique() if n != control(cost)]  # the untouched model is not a contender
    if len(names) < 2:
        return None
    c = cost.set_index("pipeline")
    f = fresh.set_index("pipeline") if len(fresh) else None
    has_fresh = f is not None and f.fresh_questions.max() > 0 and f.fresh_after_rebuild.notna().all()
    present = [g for g in STABLE_LABELS if (acc.knowledge == g).any()] or [ALL]

    def artifacts_mb(n: str) -> float:
        return sum(float(c.loc[n, k]) for k in ("adapter_mb", "index_mb") if k in c and pd.notna(c.loc[n, k]))

    rows: dict[str, tuple[dict[str, float], object]] = {}
    for group in present:
        a = acc[acc.knowledge == group].set_index("pipeline")
        label = "accuracy" if group == ALL else f"accuracy ({group})"
        rows[label] = ({n: float(a.loc[n, metric]) for n in names},
                       lambda n, v, a=a: f"{metric} {v:.3f} [{a.loc[n, f'{metric}_ci95_low']:.2f}, "
                                         f"{a.loc[n, f'{metric}_ci95_high']:.2f}] (n={int(a.loc[n, 'questions'])})")
    cost_values, cost_words, projected_on = _cost_row(c, names, scale)
    rows["cost"] = (cost_values, cost_words)
    rows["complexity"] = ({n: len(knobs(c.loc[n, "weights"], c.loc[n, "context"])) if "weights" in c else 0
                           for n in names},
                          lambda n, v: f"{v} settings to tune, "
                          + (f"{artifacts_mb(n):.1f} MB of artifacts" if artifacts_mb(n) else "no artifacts")
                          + (", a training run" if pd.notna(c.loc[n, "train_seconds"]) else ""))
    if has_fresh:
        rows["flexibility"] = ({n: float(f.loc[n, "fresh_after_update_no_rebuild"]) for n in names},
                               lambda n, v: f"{v:.3f} on new facts with no rebuild")

        def absorbed(n: str, v: float) -> str:
            if f.loc[n, "rebuild"] == NOT_RETRAINED:
                return f"{v:.3f} on new facts; {NOT_RETRAINED} (re-index only, {f.loc[n, 'rebuild_s']:.1f} s)"
            how = str(f.loc[n, "rebuild"]).split(":")[0]
            how = f" ({how})" if how in (CONTINUED, RETRAINED) else ""
            return f"{v:.3f} on new facts after a rebuild{how} costing {f.loc[n, 'rebuild_s']:.1f} s"
        rows["freshness"] = ({n: float(f.loc[n, "fresh_after_rebuild"]) for n in names}, absorbed)
    table = []
    order = [r for r in rows if r.startswith("accuracy")] + ["flexibility", "cost", "complexity", "freshness"]
    for row in order:
        if row not in rows:
            continue
        values, describe = rows[row]
        levels = _level(values)  # as in the article: high cost means expensive, high accuracy means good
        table.append({"": row, **{n: f"{levels[n]}: {describe(n, values[n])}" for n in names}})
    questions = {g: int(acc[acc.knowledge == g].questions.max()) for g in present}
    ctl = control(cost)
    controls = {g: (ctl, float(acc[(acc.knowledge == g) & (acc.pipeline == ctl)][metric].iloc[0]))
                for g in present if ctl in set(acc[acc.knowledge == g].pipeline)} if ctl else {}
    return (pd.DataFrame(table), recommendation(rows, sig, names, present, metric, projected_on, questions,
                                                controls), projected_on)


def _spent(value: float, profile: str | None) -> str:
    return f"{usd(value)} a year on {profile}" if profile else f"${value:.4f} for build + 1,000 questions"


def _more_questions(best: str, rival: str, values: dict[str, float], pairs: pd.DataFrame,
                    questions: int | None) -> str:
    """How many more questions would tell the leader from `rival` at the difference seen, with McNemar's test
    at the level Holm's correction asks over this group's pairs: what it would take to turn the tie into a
    ranking."""
    d = values[best] - values[rival]
    if d == 0:
        return f"{best} and {rival} score the same, so no number of questions would tell them apart"
    row = pairs[((pairs.a == best) & (pairs.b == rival)) | ((pairs.a == rival) & (pairs.b == best))]
    if row.empty or row.test.iloc[0] != "McNemar" or not questions:
        return (f"how many more questions would tell {best} from {rival} is not estimated (McNemar's power needs "
                "0/1 scores)")
    discordant = mcnemar_discordant(float(row.p_value.iloc[0]), round(abs(d) * questions), questions)
    # A margin of one question hides the count (p = 1 whatever it is); the fewest possible disagreements,
    # as many as the margin, give the fewest questions needed: a floor, and said to be one.
    share = discordant / questions if discordant else abs(d)
    need = math.ceil(mcnemar_questions(share, d, comparisons=len(pairs)))
    holm = f", Holm over {len(pairs)} pairs" if len(pairs) > 1 else ""
    how = f"at the observed difference of {d:.3f} (McNemar, 80% power{holm})"
    if need <= questions:  # only in a handful of questions that all go one way: the approximation fails there
        return (f"the normal approximation, which puts the questions needed to tell {best} from {rival} {how} at "
                f"{need:,}, is too loose at these {questions} to say how many more are needed")
    return (f"{'at least' if discordant is None else 'about'} {need - questions:,} more questions ({need:,} in all) "
            f"would tell {best} from {rival} {how}")


def _tie(what: str, best: str, ties: list[str], rows: dict, pairs: pd.DataFrame, questions: int | None,
         metric: str, values: dict[str, float], profile: str | None, floor: tuple[str, float] | None) -> str:
    """A leader the paired tests cannot tell from other arms is no winner: the tie is what a team can act on,
    and within it the cheapest arm (then the one with fewer settings to tune)."""
    cost, settings = rows["cost"][0], rows["complexity"][0]
    # An arm that scores below the untouched model is no choice, however cheap and however wide the tie: a team
    # would not build it for less than doing nothing gives.
    dropped = [n for n in ties if floor is not None and values[n] < floor[1]]
    tied = sorted([n for n in ties if n not in dropped], key=lambda n: -values[n])
    if not tied:
        return f"for {what}, **{best}** ({metric} {values[best]:.3f}; " + _below(dropped, floor, values) + ")"
    pick = min([best, *tied], key=lambda n: (cost[n], settings[n]))
    rival = tied[0] if pick == best else pick
    listed = [f"{n} ({values[n]:.3f})" for n in tied]
    listed = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
    role = "the leader and the cheapest" if pick == best else "the cheapest"
    return (f"for {what}, **{pick}** ({_spent(cost[pick], profile)}), {role} of a tie: {best} ({metric} "
            f"{values[best]:.3f}) is not significantly above {listed} after Holm correction, and "
            + _more_questions(best, rival, values, pairs, questions)
            + (f" ({_below(dropped, floor, values)})" if dropped else ""))


def _below(dropped: list[str], floor: tuple[str, float], values: dict[str, float]) -> str:
    one = len(dropped) == 1
    named = " and ".join(f"{n} ({values[n]:.3f})" for n in dropped)
    return (f"{named}, also within the tie, {'scores' if one else 'score'} below the untouched model "
            f"({floor[0]} {floor[1]:.3f}) and {'is' if one else 'are'} left out")


def recommendation(rows: dict, sig: pd.DataFrame, names: list[str], present: list[str], metric: str,
                   profile: str | None = None, questions: dict[str, int] | None = None,
                   controls: dict[str, tuple[str, float]] | None = None) -> str:
    """`profile`: the deployment profile the cost row was projected on, if it was. `questions`: how many
    questions each knowledge group has, for the estimate of how many more would break a tie. `controls`: per
    group, the untouched model and its score, below which no tied arm is recommended."""
    parts = []
    for group in present:
        label = "accuracy" if group == ALL else f"accuracy ({group})"
        values = rows[label][0]
        best, ties = _best(values, sig, group)
        what = {TAUGHT: "facts the training pairs teach", TAUGHT_GENERATED: "facts only generated pairs cover",
                DOCS_ONLY: "facts only the documents hold", ALL: "these questions"}[group]
        if values[best] == 0:
            parts.append(f"for {what}, no arm (every one scores 0)")
            continue
        if ties:
            parts.append(_tie(what, best, ties, rows, sig[sig.knowledge == group], (questions or {}).get(group),
                              metric, values, profile, (controls or {}).get(group)))
            continue
        parts.append(f"for {what}, **{best}** ({metric} {values[best]:.3f})")
    flex = rows.get("flexibility", ({}, None))[0]
    if flex:
        nb = max(flex, key=flex.get)
        if sorted(flex.values())[-2] < flex[nb]:  # only a strict leader is worth a sentence
            parts.append(f"for documents that arrive after the build, **{nb}** takes them in with no rebuild "
                         f"({flex[nb]:.3f} on fresh questions)")
    cheapest = min(names, key=lambda n: rows["cost"][0][n])
    low = rows["cost"][0][cheapest]
    parts.append(f"{cheapest} has the lowest projected cost a year on {profile} ({usd(low)})" if profile else
                 f"{cheapest} is cheapest for build + 1,000 questions (${low:.4f})")
    return "Recommendation: " + "; ".join(parts) + "."
