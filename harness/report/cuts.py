"""The report's account of what a time budget cut (run.json's `budget`, harness/run/planning.py): a trained
arm's score speaks for the sample it trained on, so the reader must know the sample."""
from __future__ import annotations

from harness.text import percent


def _n(x: int) -> str:
    """'105k', '1.15M', '950': token counts as a reader takes them in at a glance."""
    return f"{x / 1e6:.2f}M" if x >= 10**6 else f"{x / 1e3:.0f}k" if x >= 10**4 else f"{x:,}"


def _arms(s: dict, default: str) -> str:
    return " and ".join(s.get("arms") or []) or default


def _sampled(sampled: dict) -> list[str]:
    """'cpt trained on 9% of the documents' tokens (105k of 1.15M)', one clause per sample the run drew."""
    out = []
    if cpt := sampled.get("cpt"):
        out.append(f"{_arms(cpt, 'cpt')} trained on {percent(cpt['tokens'] / max(1, cpt['of_tokens']))} of the documents' "
                   f"tokens ({_n(cpt['tokens'])} of {_n(cpt['of_tokens'])})")
    if pairs := sampled.get("pairs"):
        out.append(f"{_arms(pairs, 'the pair-trained arms')} on {pairs['pairs']:,} of {pairs['of_pairs']:,} generated "
                   f"pairs (every phrasing of {pairs['facts']:,} facts, of {pairs['of_facts']:,})")
    if raft := sampled.get("raft"):
        out.append(f"{_arms(raft, 'raft')} on {raft['examples']:,} of {raft['of']:,} examples")
    return out


def _planned(plan: dict) -> list[str]:
    """The plan's shares, for a partial report written before the samples are counted."""
    out = []
    if plan.get("cpt_tokens", 1) < 1:
        out.append(f"cpt on {percent(plan['cpt_tokens'])} of the documents' blocks")
    if plan.get("facts", 1) < 1:
        out.append(f"the pair-trained arms on {percent(plan['facts'])} of the generated facts (every phrasing of each)")
    if plan.get("raft_examples") is not None:
        out.append(f"raft on {plan['raft_examples']:,} examples")
    return out


def trust_note(info: dict) -> list[str]:
    """What the budget cut, in one sentence for "How far to trust these numbers"; [] when nothing was."""
    b = info.get("budget")
    if not isinstance(b, dict):
        return []
    clauses = _sampled(b.get("sampled") or {}) or _planned(b.get("plan") or {})
    if not clauses:
        return []
    full = (b.get("forecast_minutes") or {}).get("full")
    why = "As task.yaml's `sampling` sets it"
    if b.get("minutes") is not None:
        why = f"To fit a budget of {b['minutes']:g} minutes" + (
            f" (the full plan was forecast at {full:.0f})" if full and full >= 10 else
            f" (the full plan was forecast at {full:.1f})" if full else "")
    return [f"{why}, the training material was sampled with seed {b.get('seed')}, spread over every document: "
            + "; ".join(clauses) + ". Every arm, freshness phase and test question was kept. Labels follow what "
            "was trained on: a test question whose fact's pairs were not sampled counts as documents-only here, so "
            "a trained arm's score speaks for this sample, not for all of the material (run.json `budget`)."]
