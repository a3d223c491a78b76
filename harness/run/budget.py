"""Fit a run into a time budget, before any model loads.

Every arm, every freshness phase and every test question stay: the test set is the measurement, and an arm or a
phase dropped would be a different experiment. Only training material shrinks, in this order, each cut only as
far as the budget needs before the next one starts:

    1. cpt's document tokens  (its blocks, sampled over every document)
    2. generated pairs        (facts sampled evenly across documents, every phrasing of a fact kept together)
    3. RAFT examples

cpt first because on a large corpus it is the biggest part (1.15M tokens of the gnuplot manual: 46 of a
77-minute forecast, issue 44) and the documents stay in front of the retrieving arms whatever it drops;
hand-written pairs are never cut (someone wrote each one). A part's time is its answering, which no cut
touches, plus its training, taken as proportional to the material it trains on (forecast.py counts tokens).

Pure arithmetic on the forecast (harness/run/forecast.py): the same forecast and budget give the same plan.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.run.forecast import LOAD_SECONDS, ArmForecast
from harness.sampling import MIN_FACTS, MIN_ROWS
from harness.text import percent


@dataclass(frozen=True)
class Material:
    """The training material of the full plan, as the forecast counts it before the tokenizer loads."""

    cpt_blocks: int = 0  # cpt's blocks of the original documents
    cpt_tokens: int = 0
    written: int = 0  # hand-written training pairs: never cut
    generated: int = 0  # pairs made from the documents
    facts: int = 0  # the facts those pairs ask about
    raft_cap: int = 128  # raft.max_examples
    update_written: int = 0  # the update's pairs, which its continuations train on: sampled by the same share
    update_generated: int = 0

    def raft_examples(self, facts: float = 1.0) -> int:
        """RAFT's examples with this share of the generated facts: its pairs, up to raft.max_examples."""
        return _kept(self.written, self.generated, facts, self.raft_cap)

    def update_pairs(self, facts: float = 1.0, cap: int | None = None) -> int:
        """The update's new pairs with this share of the generated facts, up to `cap` (RAFT's)."""
        return _kept(self.update_written, self.update_generated, facts, cap)


def _kept(written: int, generated: int, facts: float, cap: int | None) -> int:
    """Pairs a sample keeps: every written one and this share of the generated, up to `cap`."""
    n = written + round(facts * generated)
    return n if cap is None else min(cap, n)


@dataclass(frozen=True)
class Plan:
    """What the run keeps: a share of cpt's blocks, a share of the generated facts, and at most `raft` RAFT
    examples (None: raft.max_examples)."""

    cpt: float = 1.0
    facts: float = 1.0
    raft: int | None = None

    @property
    def whole(self) -> bool:
        return self.cpt >= 1 and self.facts >= 1 and self.raft is None


def _build_scale(part: ArmForecast, m: Material, plan: Plan) -> float:
    """The share of its build's training a part keeps under `plan`."""
    if part.weights == "cpt-lora":
        return plan.cpt
    pairs = m.written + m.generated
    if part.weights == "qa-lora" and pairs:
        return (m.written + plan.facts * m.generated) / pairs
    if part.weights == "raft-lora" and m.raft_examples():
        return _raft_share(m.raft_examples(plan.facts), m.raft_examples(), plan)
    return 1.0


def _raft_share(kept: int, full: int, plan: Plan) -> float:
    """RAFT's share of `full` examples when the facts share leaves `kept`, under the plan's own RAFT cut."""
    return (kept if plan.raft is None else min(kept, plan.raft)) / full


def _update_scale(part: ArmForecast, m: Material, plan: Plan) -> float:
    """The share of its update continuation's training a part keeps under `plan`: the update's pairs are sampled
    by the facts share like the build's, and RAFT's stay under its cap, so its continuation shrinks only once the
    sample falls below the cap (xorg-docs: 24 of ~150 new pairs kept, where the build's share was 86 of 128)."""
    if part.weights == "cpt-lora":
        return plan.cpt
    raft = part.weights == "raft-lora"
    full = m.update_pairs(cap=m.raft_cap if raft else None)
    if part.weights not in ("qa-lora", "raft-lora") or not full:
        return 1.0
    if raft:
        return _raft_share(m.update_pairs(plan.facts, m.raft_cap), full, plan)
    return m.update_pairs(plan.facts) / full


def _scale(part: ArmForecast, m: Material, plan: Plan) -> float:
    """The share of its full training a part keeps under `plan`, its build and its update continuation apart."""
    update = part.update_train_tokens / part.train_tokens if part.train_tokens else 0.0
    return (1 - update) * _build_scale(part, m, plan) + update * _update_scale(part, m, plan)


def scales(parts: Sequence[ArmForecast], m: Material, plan: Plan) -> dict[str, float]:
    """Each part's share of its full training under `plan`."""
    return {p.name: _scale(p, m, plan) for p in parts}


def seconds(parts: Sequence[ArmForecast], m: Material, plan: Plan) -> dict[str, float]:
    """Each part's forecast seconds under `plan`."""
    return {p.name: p.seconds - p.train_seconds * (1 - _scale(p, m, plan)) for p in parts}


def total(parts: Sequence[ArmForecast], m: Material, plan: Plan) -> float:
    """The whole run's forecast seconds under `plan`, loading included."""
    return LOAD_SECONDS + sum(seconds(parts, m, plan).values())


def _knobs(m: Material) -> list[tuple[str, Callable[[Plan], int], int, Callable[[int], float | int]]]:
    """The cuts in order: (field of Plan, how many items the plan so far has of it, the fewest a sample keeps
    (harness/sampling.py), the field's value for n items)."""
    return [("cpt", lambda p: m.cpt_blocks, MIN_ROWS, lambda n: n / m.cpt_blocks),
            ("facts", lambda p: m.facts, MIN_FACTS, lambda n: n / m.facts),
            ("raft", lambda p: m.raft_examples(p.facts), MIN_ROWS, lambda n: n)]


def _most(fits: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest n in [lo, hi] that fits, given that lo does and that a larger n never fits more easily."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _cut(parts: Sequence[ArmForecast], m: Material, fits: Callable[[Plan], bool]) -> tuple[Plan, bool]:
    """The largest plan that `fits`, cutting in the module's order, each cut a whole number of items, and whether
    it fits; when none does, the smallest plan and False."""
    plan = Plan()
    if fits(plan):
        return plan, True
    for knob, count, fewest, value in _knobs(m):
        full = count(plan)
        at = functools.partial(lambda p, k, v, n: dataclasses.replace(p, **{k: v(n)}), plan, knob, value)
        # Nothing to cut, or no selected arm trains on it (a cut would only make the record say it was cut).
        if full <= fewest or total(parts, m, at(fewest)) >= total(parts, m, plan):
            continue
        if fits(at(fewest)):
            return at(_most(lambda n: fits(at(n)), fewest, full - 1)), True
        plan = at(fewest)
    return plan, False


def smallest(parts: Sequence[ArmForecast], m: Material) -> Plan:
    """Answering alone, with the least training: every cut at the fewest items a sample keeps."""
    return _cut(parts, m, lambda p: False)[0]


def least_budget(parts: Sequence[ArmForecast], m: Material) -> float:
    """The least budget the smallest plan fits, in minutes rounded up to a tenth."""
    return math.ceil(total(parts, m, smallest(parts, m)) / 6 - 1e-9) / 10


def fit(parts: Sequence[ArmForecast], m: Material, budget_minutes: float) -> Plan:
    """The largest plan whose forecast fits `budget_minutes`: the whole plan when it fits already. Raises
    HarnessError, with the least budget that would fit, when even the smallest plan does not."""
    # A hair of slack: the least budget the refusal names, a tenth of a minute, must fit its own plan.
    plan, fitted = _cut(parts, m, lambda p: total(parts, m, p) <= budget_minutes * 60 + 1e-6)
    if not fitted:
        raise HarnessError(f"a budget of {budget_minutes:g} min is too small: answering alone, with the least "
                           f"training ({describe(plan, m)}), is forecast at {total(parts, m, plan) / 60:.2f} min on "
                           f"this CPU; give --budget {least_budget(parts, m):g} or more, or fewer arms with "
                           "--pipelines")
    return plan


def describe(plan: Plan, m: Material) -> str:
    """The plan's cuts in words: 'cpt on 9% of ~1.15M document tokens, 650 of 9,800 facts, raft on 64 of 128
    examples'; 'nothing cut' for the whole plan."""
    out = []
    if plan.cpt < 1:
        out.append(f"cpt on {percent(plan.cpt)} of ~{_tokens(m.cpt_tokens)} document tokens")
    if plan.facts < 1:
        out.append(f"~{round(plan.facts * m.facts):,} of ~{m.facts:,} generated facts (every phrasing)")
    if plan.raft is not None:
        out.append(f"raft on {plan.raft:,} of {m.raft_examples():,} examples")
    return ", ".join(out) or "nothing cut"


def _tokens(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 10**6 else f"{n / 1e3:.0f}k" if n >= 10**3 else str(n)
