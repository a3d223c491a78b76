"""Where the arms stand on one set of questions (a knowledge group, or the fresh questions of one freshness
phase), and so what the report may say of them. Every sentence that names a best arm, a tie or an arm to act on
(the verdict, the opinion table's high/medium/low, the recommendation) reads a Standing; none decides alone.

The rule (issues 41 and 43): a team acts on the recommendation, so it names an arm only where the paired tests
carry it.
- An arm is *shown better than the untouched model* when it scores above it and, where the two were compared on
  the same questions, significantly so after Holm's correction.
- The *leader* scores highest among the arms other than the untouched model; the arms *tied* with it are those
  it is not significantly above (exactly equal scores included).
- The *pick* is the cheapest of the leader and the tied arms shown better than the untouched model; there is
  none when the leader itself is not shown better than it, however cheap the others.
- A "best" arm is named, in bold, only when nothing is tied with it and it is shown better than the untouched
  model; a tie is named as a tie."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.names import PHASE_MAIN, PHASE_NO_REBUILD, PHASE_REBUILT
from harness.report.scale import usd
from harness.report.stats import mcnemar_discordant, mcnemar_questions

NOTHING, NONE, TIE, LEAD = "nothing", "none", "tie", "lead"  # Standing.kind
FRESH_COLUMNS = {PHASE_MAIN: "fresh_before", PHASE_NO_REBUILD: "fresh_after_update_no_rebuild",
                 PHASE_REBUILT: "fresh_after_rebuild"}  # freshness.csv's score of each phase


@dataclass(frozen=True)
class Costs:
    """What each arm costs a team as the opinion table's cost row puts it (projected a year on `profile`, else
    measured for build + 1,000 questions), and how many settings it asks to tune: within a tie the cheapest
    arm is picked, then the simpler."""

    usd: dict[str, float]
    settings: dict[str, int]
    profile: str | None = None

    def words(self, arm: str) -> str:
        v = self.usd[arm]
        return f"{usd(v)} a year on {self.profile}" if self.profile else f"${v:.4f} for build + 1,000 questions"

    def order(self, arm: str) -> tuple[float, int]:
        """Cheaper first, then simpler; an arm with no cost (the untouched model) last."""
        return self.usd.get(arm, math.inf), self.settings.get(arm, 0)

    def cheapest(self, arms: list[str]) -> str:
        return min(arms, key=self.order)


def _pair(pairs: pd.DataFrame, a: str, b: str) -> pd.Series | None:
    row = pairs[((pairs.a == a) & (pairs.b == b)) | ((pairs.a == b) & (pairs.b == a))]
    return row.iloc[0] if len(row) else None


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Standing:
    """The arms on one set of questions, judged by the rule above (build one with `judge`)."""

    metric: str
    questions: int
    scores: dict[str, float]  # every arm answered, the untouched model included, in run order
    pairs: pd.DataFrame  # their paired tests: a, b, p_value, test, p_holm, significant
    control: str | None  # the untouched model, when the run has one
    costs: Costs
    leader: str | None
    tied: tuple[str, ...]  # arms the leader is not significantly above, best first
    shown: tuple[str, ...]  # arms shown better than the untouched model
    pick: str | None  # the arm to act on; None when the leader is not shown better than the untouched model

    @property
    def kind(self) -> str:
        """NOTHING: no arm answers any; NONE: the leader is not shown better than the untouched model; TIE: it
        is, but the paired tests cannot tell it from other arms; LEAD: a best arm."""
        if max(self.scores.values(), default=0.0) == 0:
            return NOTHING
        if self.leader not in self.shown:
            return NONE
        return TIE if self.tied else LEAD

    @property
    def floor(self) -> float:
        return self.scores[self.control] if self.control else 0.0

    def level(self, arm: str) -> str:
        """The opinion table's word: high for the leader and the arms tied with it (when the leader is shown
        better than the untouched model), low for an arm not shown better than the untouched model, medium for
        the rest."""
        if arm not in self.shown:
            return "low"
        return "high" if self.pick is not None and arm in (self.leader, *self.tied) else "medium"

    def headline(self) -> str:
        """Who leads: '**rag** scores best (contains 0.833)', 'raft and rag tie at the top (contains 0.182)',
        'no arm is shown better than the untouched model (...)' or 'no arm answers any correctly (...)'."""
        m, top = self.metric, self.scores.get(self.leader, 0.0)
        kind = self.kind
        if kind == NOTHING:
            return f"no arm answers any correctly ({m} 0.000 for every arm)"
        if kind == NONE:
            return f"no arm is shown better than the untouched model ({self.against_control()})"
        if kind == LEAD:
            return f"**{self.leader}** scores best ({m} {top:.3f})"
        if all(self.scores[n] == top for n in self.tied):
            return f"{_listed([self.leader, *self.tied])} tie at the top ({m} {top:.3f})"
        return (_listed([f"{self.leader} ({m} {top:.3f})"] + [f"{n} ({self.scores[n]:.3f})" for n in self.tied])
                + " tie at the top")

    def against_control(self) -> str:
        """The leader beside the untouched model: 'leader rag, contains 0.250, against base 0.000, Holm-corrected
        p = 0.50'."""
        top = self.scores[self.leader]
        first = [n for n in self.scores if n != self.control and self.scores[n] == top]
        who = (f"leader {first[0]}" if len(first) == 1 else
               "every other arm" if len(first) > 2 and len(first) == len(self.scores) - 1 else f"leaders {_listed(first)}")
        if top <= self.floor:
            where = "level with" if top == self.floor else "below"
            return f"{who}, {self.metric} {top:.3f}, {where} {self.control} {self.floor:.3f}"
        row = _pair(self.pairs, self.leader, self.control)
        holm = f", Holm-corrected p = {row.p_holm:.2f}" if row is not None else ""
        return f"{who}, {self.metric} {top:.3f}, against {self.control} {self.floor:.3f}{holm}"

    def to_beat_control(self) -> str:
        """How many questions would show whether the leader beats the untouched model ('' when it does not score
        above it: no number of questions shows that)."""
        if self.scores[self.leader] <= self.floor:
            return ""
        return self.questions_needed(self.leader, self.control, f"show whether {self.leader} beats {self.control}")

    def eligible(self) -> list[str]:
        """The arms tied with the leader that could be picked: those shown better than the untouched model."""
        return [n for n in self.tied if n in self.shown]

    def not_above(self, arms: list[str]) -> str:
        """'raft (contains 0.516) is not significantly above rag (0.452) after Holm correction'."""
        listed = [f"{n} ({self.scores[n]:.3f})" for n in arms]
        listed = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
        return (f"{self.leader} ({self.metric} {self.scores[self.leader]:.3f}) is not significantly above {listed} "
                "after Holm correction")

    def separating(self) -> str:
        """How many questions would tell the leader from the arm nearest it in the tie (the pick, when the pick
        is not the leader): what it would take to turn the tie into a ranking."""
        rival = self.eligible()[0] if self.pick == self.leader else self.pick
        return self.questions_needed(self.leader, rival)

    def left_out(self) -> str:
        """The tied arms not shown better than the untouched model, which no tie can make a choice: a team would
        not build an arm for no more than doing nothing gives."""
        dropped = [n for n in self.tied if n not in self.shown]
        one = len(dropped) == 1
        named = " and ".join(f"{n} ({self.scores[n]:.3f})" for n in dropped)
        return (f"{named}, also within the tie, {'is' if one else 'are'} not shown better than the untouched model "
                f"({self.control} {self.floor:.3f}) and {'is' if one else 'are'} left out")

    def tie_words(self) -> str:
        """The tie explained: who the leader is not told from, the cheapest of them and the questions it would
        take to separate them, and which tied arms are left out."""
        if not self.eligible():
            return f"{self.not_above(list(self.tied))}, and {self.left_out()}"
        dropped = f" ({self.left_out()})" if len(self.eligible()) < len(self.tied) else ""
        return (f"{self.not_above(self.eligible())}: of the tie, {self.pick} is the cheapest "
                f"({self.costs.words(self.pick)}), and {self.separating()}{dropped}")

    def questions_needed(self, best: str, rival: str, what: str = "") -> str:
        """How many more questions would tell `best` from `rival` at the difference seen, with McNemar's test at
        the level Holm's correction asks over these pairs."""
        what = what or f"tell {best} from {rival}"
        d, questions = self.scores[best] - self.scores[rival], self.questions
        if d == 0:
            return f"{best} and {rival} score the same, so no number of questions would tell them apart"
        row = _pair(self.pairs, best, rival)
        if row is None or row.test != "McNemar" or not questions:
            return f"how many more questions would {what} is not estimated (McNemar's power needs 0/1 scores)"
        discordant = mcnemar_discordant(float(row.p_value), round(abs(d) * questions), questions)
        # A margin of one question hides the count (p = 1 whatever it is); the fewest possible disagreements,
        # as many as the margin, give the fewest questions needed: a floor, and said to be one.
        share = discordant / questions if discordant else abs(d)
        need = math.ceil(mcnemar_questions(share, d, comparisons=len(self.pairs)))
        holm = f", Holm over {len(self.pairs)} pairs" if len(self.pairs) > 1 else ""
        how = f"at the observed difference of {d:.3f} (McNemar, 80% power{holm})"
        if need <= questions:  # only in a handful of questions that all go one way: the approximation fails there
            return (f"the normal approximation, which puts the questions needed to {what} {how} at {need:,}, is too "
                    f"loose at these {questions} to say how many more are needed")
        return (f"{'at least' if discordant is None else 'about'} {need - questions:,} more questions ({need:,} in "
                f"all) would {what} {how}")


def judge(scores: dict[str, float], pairs: pd.DataFrame, control: str | None, questions: int, metric: str,
          costs: Costs) -> Standing:
    """The Standing of arms with these `scores` on `questions` questions; `pairs`: their paired tests (rows of the
    significance table), `control`: the untouched model, `costs`: what each arm other than it costs."""
    control = control if control in scores and len(scores) > 1 else None
    contenders = [n for n in scores if n != control]
    floor = scores[control] if control else 0.0

    def shown_better(n: str) -> bool:
        row = _pair(pairs, n, control) if control else None
        return scores[n] > floor and (row is None or bool(row.significant))

    def told_apart(n: str, leader: str) -> bool:
        row = _pair(pairs, leader, n)
        return scores[n] < scores[leader] and (row is None or bool(row.significant))

    shown = tuple(n for n in contenders if shown_better(n))
    leader = max(contenders, key=lambda n: scores[n], default=None)  # the first in run order among equals
    tied = tuple(sorted((n for n in contenders if n != leader and not told_apart(n, leader)),
                        key=lambda n: -scores[n]))
    pick = costs.cheapest([leader, *(n for n in tied if n in shown)]) if leader in shown else None
    return Standing(metric, questions, scores, pairs, control, costs, leader, tied, shown, pick)


@dataclass(frozen=True)
class Standings:
    """Every Standing a report speaks of: each group of stable questions, and the fresh questions of each
    freshness phase the run measured."""

    groups: dict[str, Standing]  # knowledge group -> Standing, in the accuracy table's order
    fresh: dict[str, Standing]  # phase (harness.names.PHASES) -> Standing
    costs: Costs

    def useful(self) -> list[str]:
        """The arms shown better than the untouched model on some set of questions, in cost order."""
        every = [n for s in (*self.groups.values(), *self.fresh.values()) for n in s.shown]
        return sorted(dict.fromkeys(every), key=self.costs.order)


def judge_run(acc: pd.DataFrame, sig: pd.DataFrame, fresh: pd.DataFrame, fresh_pairs: pd.DataFrame,
              control: str | None, metric: str, costs: Costs) -> Standings:
    """The Standings of a run, from its accuracy and freshness tables and the paired tests on each (tables.py's
    significance_table and fresh_significance_table)."""
    groups = {}
    for group in dict.fromkeys(acc.knowledge):
        part = acc[acc.knowledge == group]
        groups[group] = judge(dict(zip(part.pipeline, part[metric].astype(float))), sig[sig.knowledge == group],
                              control, int(part.questions.max()), metric, costs)
    phases = {}
    n = int(fresh.fresh_questions.max()) if len(fresh) else 0
    for phase, column in FRESH_COLUMNS.items():
        part = fresh.dropna(subset=[column]) if n else fresh.iloc[:0]
        if len(part):
            phases[phase] = judge(dict(zip(part.pipeline, part[column].astype(float))),
                                  fresh_pairs[fresh_pairs.phase == phase], control, n, metric, costs)
    return Standings(groups, phases, costs)
