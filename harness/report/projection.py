"""Cost at your scale: each arm's measured token counts projected onto a deployment profile (deployment.py).

What carries over from this run to another model and machine is counted in tokens, not seconds: prompt and
generated tokens per question, training tokens per build and per rebuild (this run's tokenizer), and the
hand-written pairs an arm consumed. With N the profile's parameter count:

    serving $/question  GPU: (prompt + generated tokens) / tokens_per_second × gpus × $/GPU-hour / 3600
                        API: (prompt tokens × $/M input + generated tokens × $/M output) / 1e6
    serving $/month     questions_per_day × 30 × serving $/question
    training $          k·N·training tokens / (peak FLOP/s × MFU) / 3600 × $/GPU-hour, k = 6 for full
                        fine-tuning, 4 for LoRA (no weight gradients for the frozen base: 4/6 of the work)
    rebuilds $/year     updates_per_year × the training one rebuild did in this run (continued or retrained);
                        0 where it only re-indexed, since re-indexing and retrieval are not priced
    pairs $             written pairs × usd_per_written_pair + writing the generated pairs it used, priced as
                        serving the generator's prompt and generated tokens (again at each update whose rebuild
                        trained on the update's generated pairs, counted in rebuilds $/year)
    a year              build + 12 × serving $/month + rebuilds $/year + pairs $
    break-even          (fixed_a − fixed_b) / (360 × (per question_b − per question_a)) questions a day, where
                        fixed = build + rebuilds + pairs and a has the dearer fixed and the cheaper questions

Nothing is read from an arm's name, only its weights, what it was shown and what it measured, so an arm
declared in task.yaml is projected like a built-in one.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.arms.catalog import TRAINS_ON_PAIRS
from harness.task.deployment import GpuServing, Profile
from harness.names import NOT_RETRAINED

DAYS_PER_MONTH = 30
DAYS_PER_YEAR = 12 * DAYS_PER_MONTH  # the year the serving total counts, so break-even agrees with it
FLOPS_PER_TOKEN = {"full": 6, "lora": 4}  # × parameters: forward 2, backward 4 (2 without weight gradients)


@dataclass(frozen=True)
class Measured:
    """What the projection reads of one arm, all measured in the run."""

    prompt_tokens: float
    new_tokens: float
    build_tokens: float | None  # training tokens of the first build: 0 when nothing trains, None if not recorded
    rebuild_tokens: float | None  # of one rebuild after an update
    rebuild: str  # what that rebuild did in the run
    written_pairs: int
    # The generator's (prompt, generated) tokens for the generated pairs the arm used, at build and at a rebuild:
    # (0, 0) when it used none, None when the run did not record them.
    generation_tokens: tuple[float, float] | None = (0.0, 0.0)
    rebuild_generation_tokens: tuple[float, float] | None = (0.0, 0.0)


def _written_pairs(cost: dict) -> int:
    """Hand-written pairs the arm consumed: its training examples when its weights learn from pairs, and the
    demonstrations it shows plus the held-out pairs that chose their format; none when the task's pairs were all
    generated from the documents."""
    chosen = [r for r in cost.get("demo_selection") or [] if r.get("chosen")]
    shown = int(cost.get("demonstrations_shown") or 0) + (int(chosen[0].get("eval_questions") or 0) if chosen else 0)
    trained = int(cost.get("train_examples") or 0) if cost.get("weights") in TRAINS_ON_PAIRS else 0
    if "training_pairs" in cost:  # pairs written from the documents cost no one's hours (older runs: all by hand)
        by_kind = cost["training_pairs"]
        trained = min(trained, int(by_kind.get("written", 0))) if trained else 0
        shown = shown if by_kind.get("written") else 0
    return max(shown, trained)


def _tokens(part: dict | None) -> tuple[float, float] | None:
    if not part:
        return 0.0, 0.0
    p, n = part.get("prompt_tokens"), part.get("new_tokens")
    return None if p is None or n is None else (float(p), float(n))


def _generation(cost: dict, pairs: dict | None, rebuild_trains: bool) -> tuple[tuple | None, tuple | None]:
    """The generator's tokens an arm owes: writing the original documents' pairs if it trained on generated pairs
    or showed demonstrations from a pool that held some, and the update's when its rebuild trained on them."""
    if not pairs or pairs.get("training_pairs", "written") == "written":
        return (0.0, 0.0), (0.0, 0.0)
    trained = int((cost.get("training_pairs") or {}).get("generated", 0)) > 0
    if not (trained or cost.get("demonstrations_shown")):
        return (0.0, 0.0), (0.0, 0.0)
    parts = pairs.get("parts") or {}
    return _tokens(parts.get("original")), (_tokens(parts.get("update")) if trained and rebuild_trains
                                            else (0.0, 0.0))


def _rebuild(cost: dict, timing: dict, build: float | None) -> tuple[float | None, str]:
    note = timing.get("rebuild_note")
    if cost.get("weights", "base") == "base":
        return 0.0, note or "nothing trained"
    if note is None:  # no update in this run: a rebuild is priced as the first build again
        return build, "retraining assumed (no update measured)"
    if note == NOT_RETRAINED:  # the run re-indexed and kept the adapter (`rebuild_cost` still names it)
        return 0.0, note
    tokens = (timing.get("rebuild_cost") or {}).get("train_tokens")
    return (None if tokens is None else float(tokens)), note.split(":")[0]


def measured(cost: dict, timing: dict, pairs: dict | None = None) -> Measured:
    """One arm's numbers from costs.json; runs from before training tokens were recorded give None. `pairs`:
    run.json's `pair_generation` (None: the run's pairs were all written by hand, as in older runs)."""
    trained = cost.get("weights", "base") != "base"
    build = (None if cost.get("train_tokens") is None else float(cost["train_tokens"])) if trained else 0.0
    rebuild_tokens, rebuild = _rebuild(cost, timing, build)
    by_hand = (pairs or {}).get("training_pairs", "written") != "generated"
    generation, rebuild_generation = _generation(cost, pairs, rebuild_tokens != 0.0)
    return Measured(float(cost["prompt_tokens_mean"]), float(cost["new_tokens_mean"]), build, rebuild_tokens,
                    rebuild, _written_pairs(cost) if by_hand else 0, generation, rebuild_generation)


def serving_usd(profile: Profile, prompt_tokens: float, new_tokens: float) -> float:
    """Serving one question; a GPU's throughput counts prompt and generated tokens alike."""
    s = profile.spec.serving
    if isinstance(s, GpuServing):
        return (prompt_tokens + new_tokens) / s.tokens_per_second * s.gpus * s.usd_per_gpu_hour / 3600
    return (prompt_tokens * s.usd_per_million_input_tokens + new_tokens * s.usd_per_million_output_tokens) / 1e6


def training_usd(profile: Profile, tokens: float | None) -> float | None:
    t = profile.spec.training
    if tokens is None:
        return None
    flops = FLOPS_PER_TOKEN[t.method] * profile.params * tokens
    return flops / (t.peak_flops * t.mfu) / 3600 * t.usd_per_gpu_hour


def project(m: Measured, profile: Profile) -> dict:
    """One arm's projection: the decision's figures first, then what they were computed from."""
    p = profile.spec
    per_question = serving_usd(profile, m.prompt_tokens, m.new_tokens)
    monthly = p.questions_per_day * DAYS_PER_MONTH * per_question
    build, rebuild = training_usd(profile, m.build_tokens), training_usd(profile, m.rebuild_tokens)
    writing = None if m.generation_tokens is None else serving_usd(profile, *m.generation_tokens)
    rewriting = None if m.rebuild_generation_tokens is None else serving_usd(profile, *m.rebuild_generation_tokens)
    rebuilds = None if rebuild is None or rewriting is None else p.updates_per_year * (rebuild + rewriting)
    pairs = None if writing is None else m.written_pairs * p.usd_per_written_pair + writing
    fixed = None if build is None or rebuilds is None or pairs is None else build + rebuilds + pairs
    return {"projected_usd_per_year": None if fixed is None else fixed + 12 * monthly,
            "projected_serving_usd_per_month": monthly, "projected_build_usd": build,
            "projected_rebuilds_usd_per_year": rebuilds, "projected_pairs_usd": pairs,
            "projected_pair_generation_usd": writing,
            "projected_usd_per_1k_questions": per_question * 1000, "projected_fixed_usd_per_year": fixed,
            "rebuild": m.rebuild, "prompt_tokens_mean": m.prompt_tokens, "new_tokens_mean": m.new_tokens,
            "train_tokens_build": m.build_tokens, "train_tokens_rebuild": m.rebuild_tokens,
            "written_pairs": m.written_pairs,
            "generation_tokens_build": None if m.generation_tokens is None else sum(m.generation_tokens),
            "generation_tokens_rebuild": (None if m.rebuild_generation_tokens is None
                                          else sum(m.rebuild_generation_tokens))}


def break_evens(table: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(a, b, questions a day) for every pair where a's fixed costs are dearer and its questions cheaper:
    above that volume a costs less than b over a year."""
    rows = table.set_index("pipeline")
    out = []
    for a, ra in rows.iterrows():
        for b, rb in rows.iterrows():
            if pd.isna(ra.projected_fixed_usd_per_year) or pd.isna(rb.projected_fixed_usd_per_year):
                continue
            saving = (rb.projected_usd_per_1k_questions - ra.projected_usd_per_1k_questions) / 1000
            extra = ra.projected_fixed_usd_per_year - rb.projected_fixed_usd_per_year
            if extra > 0 and saving > 0:
                out.append((str(a), str(b), float(extra / (DAYS_PER_YEAR * saving))))
    return out


def projection_table(saved: dict, order: list[str], profile: Profile, cost: pd.DataFrame,
                     pairs: dict | None = None) -> pd.DataFrame:
    """cost_projection.csv: one row per arm, projected on `profile`, beside the cost measured on this machine
    (`cost`: the run's cost table), with each arm's break-even volumes against the others. `pairs`: run.json's
    `pair_generation` (None when every pair was written by hand)."""
    measured_here = cost.set_index("pipeline")
    rows = [{"pipeline": n, **project(measured(saved["costs"][n], saved["timings"].get(n, {}), pairs), profile),
             "measured_usd_build_plus_1k_questions": float(measured_here.loc[n, "build_usd"]
                                                           + measured_here.loc[n, "usd_per_1k_questions"]),
             "profile": profile.name} for n in order]
    table = pd.DataFrame(rows)
    evens = break_evens(table)
    table["break_even"] = [
        "; ".join(f"cheaper than {b} above {q:,.0f} questions/day" for a, b, q in evens if a == n) or None
        for n in order]
    return table
