"""The words and figures of "Cost at your scale" in report.md (and so report.html), from cost_projection.csv's
table: one row per arm, the figures a decision turns on first, each one called a projection and shown beside the
cost measured on this machine."""
from __future__ import annotations

import math

import pandas as pd

from harness.task.deployment import GpuServing, Profile
from harness.report.projection import DAYS_PER_MONTH, FLOPS_PER_TOKEN, break_evens


def usd(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if v == 0:
        return "$0"
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}" if v >= 1 else f"${v:.4f}" if v >= 1e-4 else f"${v:.1e}"


def _count(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The section's table: projected money first, then the measured tokens it comes from, then the cost
    measured on this machine."""
    return pd.DataFrame({
        "arm": table.pipeline,
        "projected $/year": table.projected_usd_per_year.map(usd),
        "serving $/month": table.projected_serving_usd_per_month.map(usd),
        "build $ (once)": table.projected_build_usd.map(usd),
        "rebuilds $/year": [f"{usd(v)} ({how})" for v, how in zip(table.projected_rebuilds_usd_per_year,
                                                                     table.rebuild)],
        "tokens/question (prompt + generated)": [f"{_count(p)} + {_count(n)}" for p, n in
                                                 zip(table.prompt_tokens_mean, table.new_tokens_mean)],
        "training tokens (build / rebuild)": [f"{_count(b)} / {_count(r)}" for b, r in
                                              zip(table.train_tokens_build, table.train_tokens_rebuild)],
        "pairs: written / generating $": [f"{w} / {usd(g)}" for w, g in
                                          zip(table.written_pairs, table.projected_pair_generation_usd)],
        "measured here: build + 1k questions": table.measured_usd_build_plus_1k_questions.map(usd),
    })


def assumptions(profile: Profile) -> str:
    """The profile's numbers inside the formulas they enter, in one paragraph."""
    p, t = profile.spec, profile.spec.training
    s = p.serving
    if isinstance(s, GpuServing):
        serving = (f"(prompt + generated tokens) ÷ {s.tokens_per_second:,g} tokens/s × {s.gpus} GPU(s) × "
                   f"${s.usd_per_gpu_hour:g}/GPU-hour")
    else:
        serving = (f"prompt tokens × ${s.usd_per_million_input_tokens:g}/M + generated tokens × "
                   f"${s.usd_per_million_output_tokens:g}/M")
    k = FLOPS_PER_TOKEN[t.method]
    return (f"Projected, not measured: this run's token counts priced on profile **{profile.name}** "
            f"({p.description or 'no description'}; N = {profile.params:.3g} parameters), "
            f"{p.questions_per_day:,g} questions a day, {p.updates_per_year:g} updates a year. "
            f"Serving a question = {serving}; a month = {DAYS_PER_MONTH} days. Training = {k}·N·tokens "
            f"({t.method}) ÷ ({t.peak_flops:.3g} FLOP/s × MFU {t.mfu:g}) × ${t.usd_per_gpu_hour:g}/GPU-hour; "
            "rebuilds = updates a year × the training one rebuild did in this run (none where it only "
            "re-indexed). Pairs = pairs written × "
            f"${p.usd_per_written_pair:g} + writing the generated pairs the arm used, priced as serving the "
            "generator's prompt and generated tokens (again at each update whose rebuild trained on the update's "
            "generated pairs). A year = build + 12 × serving a month + rebuilds + pairs. Token counts are this run's (its tokenizer, its model's answer lengths); "
            "re-indexing and retrieval are not priced. The last column is the cost measured on this machine "
            "(see Cost). Every figure: `cost_projection.csv`; formulas: `harness/report/projection.py`.")


def break_even_text(table: pd.DataFrame) -> str:
    evens = break_evens(table)
    if not evens:
        return "Break-even: none; no arm with dearer fixed costs answers more cheaply."
    return ("Break-even, questions a day above which the first arm costs less over a year than the second: "
            + "; ".join(f"{a} vs {b} {_count(q)}" for a, b, q in sorted(evens, key=lambda e: e[2])) + ".")


def opinion_cell(row: pd.Series, profile_name: str) -> str:
    """The opinion table's cost cell when a profile is given: the projection, and the measured cost beside it."""
    return (f"projected {usd(row.projected_usd_per_year)}/year on {profile_name} (serving "
            f"{usd(row.projected_serving_usd_per_month)}/month, build {usd(row.projected_build_usd)}); measured "
            f"here {usd(row.measured_usd_build_plus_1k_questions)} for build + 1,000 questions")
