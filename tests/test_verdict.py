"""The verdict and the recommendation of report.md, from small hand-built run folders whose right wording is
known: each folder is rendered through `harness report`, as a user would re-render a run.

Every fixture has 10 taught and 12 documents-only questions and four arms. Costs (at $0.10 an hour, tokens
free): prompt $0.0050 for build + 1,000 questions (0.18 s a question), rag $0.0110 (0.36 s, a 36 s index),
finetune $0.0150 (0.18 s, 360 s of training); base is the control and never recommended."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report.opinion import recommendation

TAUGHT, DOCS = 10, 12
COSTS = {  # arm: (weights, context, build_total_s, latency_mean_s)
    "base": ("base", "none", 0.0, 0.18),
    "prompt": ("base", "none", 0.0, 0.18),
    "rag": ("base", "retrieved", 36.0, 0.36),
    "finetune": ("qa-lora", "none", 360.0, 0.18),
}


def hits(n: int, right: list[int]) -> list[int]:
    """0/1 scores of n questions, 1 at the (1-based) question numbers in `right`."""
    return [int(i in right) for i in range(1, n + 1)]


def first(n: int, k: int) -> list[int]:
    return hits(n, list(range(1, k + 1)))


def run_folder(tmp_path: Path, scores: dict[str, tuple[list[int], list[int]]], name: str = "run") -> Path:
    """A run folder with run.json, costs.json and predictions.jsonl; `scores`: arm -> (taught, documents-only)
    0/1 scores, one per question."""
    run = tmp_path / name
    run.mkdir()
    info = {"task": "tiny", "model": "tiny-model", "embedder": "tiny-embedder", "seed": 0, "device": "cpu",
            "pipelines": list(scores), "seeds": 1, "freshness": False, "started": "2026-12-02T00:00:00",
            "sizes": {"train": 20}, "prices": {"hour_usd": 0.1, "per_million_tokens_usd": 0.0},
            "config": {"metric": "contains", "generation": {"max_new_tokens": 24, "batch_size": 16}}}
    (run / "run.json").write_text(json.dumps(info))
    costs = {arm: {"weights": w, "context": c, "build_total_s": build, "build_s": build, "latency_mean_s": lat,
                   "latency_p95_s": lat, "prompt_tokens_mean": 40.0, "new_tokens_mean": 8.0, "seeds": 1}
             for arm, (w, c, build, lat) in COSTS.items() if arm in scores}
    (run / "costs.json").write_text(json.dumps({"costs": costs, "timings": {a: {} for a in scores}}))
    with open(run / "predictions.jsonl", "w") as f:
        for arm, (taught, docs) in scores.items():
            assert len(taught) == TAUGHT and len(docs) == DOCS
            for knowledge, prefix, row in (("taught", "t", taught), ("documents-only", "d", docs)):
                for i, s in enumerate(row, 1):
                    f.write(json.dumps({
                        "phase": "main", "pipeline": arm, "id": f"{prefix}{i:02d}", "question": f"Q {prefix}{i}?",
                        "fresh": False, "knowledge": knowledge, "topic": "t", "doc": f"docs/{prefix}{i}.md",
                        "answer": "yes" if s else "no", "references": ["yes"], "contains": float(s),
                        "gold_retrieved": None, "passages": [], "prompt_tokens": 40, "new_tokens": 8,
                        "seconds": COSTS[arm][3], "seed": 0}) + "\n")
    return run


def report(run: Path) -> tuple[list[str], str]:
    """(the verdict's sentences, the recommendation) of the folder's report.md, rendered afresh."""
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text().split("\n")
    start = md.index("## Verdict") + 2
    end = next(i for i in range(start, len(md)) if not md[i].startswith("- "))
    rec = [line for line in md if line.startswith("Recommendation: ")]
    assert len(rec) == 1
    return [line[2:] for line in md[start:end]], rec[0]


# Documents-only facts where rag is told apart from every other arm: 10 of 12 against 0 for the rest. Each of
# its three pairs is 10 discordant questions to 0, p = 2 / 2^10 = 0.00195, Holm x 6 = 0.0117 < 0.05.
RAG_DOCS = first(DOCS, 10)
NONE_DOCS = [0] * DOCS


def test_ranking_follows_the_scores(tmp_path):
    # taught: finetune 8/10, rag 5/10, prompt 2/10, base 0/10; swapping rag's and prompt's taught scores must
    # swap them in the ranking.
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 2), NONE_DOCS),
              "rag": (first(TAUGHT, 5), RAG_DOCS), "finetune": (first(TAUGHT, 8), NONE_DOCS)}
    said, _ = report(run_folder(tmp_path, scores, "as-is"))
    assert ("On the 10 taught questions, **finetune** scores best (contains 0.800); ranking: finetune 0.800, "
            "rag 0.500, prompt 0.200, base 0.000.") in said
    assert ("On the 12 documents-only questions, **rag** scores best (contains 0.833); ranking: rag 0.833, "
            "base 0.000, prompt 0.000, finetune 0.000.") in said

    scores["rag"], scores["prompt"] = (first(TAUGHT, 2), RAG_DOCS), (first(TAUGHT, 5), NONE_DOCS)
    said, _ = report(run_folder(tmp_path, scores, "swapped"))
    assert ("On the 10 taught questions, **finetune** scores best (contains 0.800); ranking: finetune 0.800, "
            "prompt 0.500, rag 0.200, base 0.000.") in said


def test_a_clear_leader_keeps_the_plain_wording(tmp_path):
    # rag leads documents-only facts significantly (see RAG_DOCS): no tie, the wording of before
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 2), NONE_DOCS),
              "rag": (first(TAUGHT, 5), RAG_DOCS), "finetune": (first(TAUGHT, 8), NONE_DOCS)}
    _, rec = report(run_folder(tmp_path, scores))
    assert "for facts only the documents hold, **rag** (contains 0.833);" in rec
    assert rec.endswith("; prompt is cheapest for build + 1,000 questions ($0.0050).")


def test_retrieval_above_fine_tuning_on_documents_only_facts_agrees_with_ovadia(tmp_path):
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "rag": (first(TAUGHT, 3), first(DOCS, 6)),
              "finetune": (first(TAUGHT, 8), first(DOCS, 2))}
    said, _ = report(run_folder(tmp_path, scores))
    assert ("On documents-only facts, rag (0.500) beats finetune (0.167): the direction Ovadia et al. (2024) "
            "report (retrieval over fine-tuning for knowledge not in the training pairs).") in said
    assert not any("Check before trusting" in s for s in said)


def test_fine_tuning_above_retrieval_on_documents_only_facts_is_flagged(tmp_path):
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "rag": (first(TAUGHT, 3), first(DOCS, 2)),
              "finetune": (first(TAUGHT, 8), first(DOCS, 6))}
    said, _ = report(run_folder(tmp_path, scores))
    assert any(s.startswith("**Check before trusting:** on documents-only facts finetune (0.500) is not below "
                            "rag (0.167), against the published direction (Ovadia et al. 2024).") for s in said)
    assert not any("the direction Ovadia" in s for s in said)


def test_a_tie_names_the_tie_recommends_the_cheapest_and_says_how_many_more_questions(tmp_path):
    # taught: finetune 6/10 (questions 1-6), rag 4/10 (1-4), prompt 3/10 (1, 2, 7), base 0/10. With 10 questions
    # and 6 pairs nothing survives Holm (the strongest, finetune vs base at 6 to 0, p = 2/64, x 6 = 0.19):
    # finetune leads a tie with rag and prompt, and prompt is the cheapest of the three.
    # finetune vs prompt: only finetune right on 3, 4, 5, 6; only prompt on 7: 5 discordant of 10,
    # p_disc = 0.5, d = 0.6 - 0.3 = 0.3; Holm over 6 pairs: alpha 0.05 / 6, z_{1-0.05/12} = 2.63798, z_0.8 = 0.84162
    #   2.63798 * sqrt(0.5) = 1.86534; 0.84162 * sqrt(0.5 - 0.09) = 0.84162 * 0.64031 = 0.53890
    #   (1.86534 + 0.53890)^2 / 0.09 = 2.40424^2 / 0.09 = 5.78037 / 0.09 = 64.23 -> 65 questions, 55 more
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (hits(TAUGHT, [1, 2, 7]), NONE_DOCS),
              "rag": (first(TAUGHT, 4), RAG_DOCS), "finetune": (first(TAUGHT, 6), NONE_DOCS)}
    _, rec = report(run_folder(tmp_path, scores))
    assert rec.startswith(
        "Recommendation: for facts the training pairs teach, **prompt** ($0.0050 for build + 1,000 questions), "
        "the cheapest of a tie: finetune (contains 0.600) is not significantly above rag (0.400) or prompt (0.300) "
        "after Holm correction, and about 55 more questions (65 in all) would tell finetune from prompt at the "
        "observed difference of 0.300 (McNemar, 80% power, Holm over 6 pairs); ")
    assert "for facts only the documents hold, **rag** (contains 0.833);" in rec  # the clear leader stays plain


def test_a_leader_that_is_also_the_cheapest_is_measured_against_the_runner_up(tmp_path):
    # documents-only: prompt 5/12 (1-5), rag 3/12 (1-3), finetune 0/12: no pair survives Holm (prompt vs
    # finetune: 5 to 0, p = 0.0625). prompt is the cheapest: it is named, and the extra questions are counted
    # against rag, the runner-up: 2 discordant of 12, both for prompt, a margin of 2: p_disc = d = 1/6;
    #   z_{1-0.05/12} = 2.63798: 2.63798 * sqrt(1/6) = 1.07695; 0.84162 * sqrt(1/6 - 1/36) = 0.84162 * 0.37268
    #   = 0.31366; (1.07695 + 0.31366)^2 * 36 = 1.39061^2 * 36 = 69.62 -> 70 questions, 58 more
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 1), first(DOCS, 5)),
              "rag": (first(TAUGHT, 1), first(DOCS, 3)), "finetune": (first(TAUGHT, 1), NONE_DOCS)}
    _, rec = report(run_folder(tmp_path, scores))
    assert ("for facts only the documents hold, **prompt** ($0.0050 for build + 1,000 questions), the leader and "
            "the cheapest of a tie: prompt (contains 0.417) is not significantly above rag (0.250) or finetune "
            "(0.000) after Holm correction, and about 58 more questions (70 in all) would tell prompt from rag at "
            "the observed difference of 0.167 (McNemar, 80% power, Holm over 6 pairs);") in rec


def test_all_arms_at_zero_name_no_winner(tmp_path):
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": ([0] * TAUGHT, NONE_DOCS),
              "rag": ([0] * TAUGHT, RAG_DOCS), "finetune": ([0] * TAUGHT, NONE_DOCS)}
    said, rec = report(run_folder(tmp_path, scores))
    assert rec.startswith("Recommendation: for facts the training pairs teach, no arm (every one scores 0); ")
    # The verdict names no winner either, and says nothing of an untouched base no arm could fall below.
    assert "On the 10 taught questions, no arm answers any correctly (contains 0.000 for every arm)." in said
    assert not any(s.startswith("On taught questions") for s in said)
    assert any(s.startswith("On all 22 stable questions, **rag** scores best") for s in said)
    assert "**" not in rec.split(";")[0]


def test_arms_not_above_the_untouched_base_are_named(tmp_path):
    # documents-only: base 4/12; prompt 2/12 is below it and finetune 4/12 level with it: neither is better
    scores = {"base": ([0] * TAUGHT, first(DOCS, 4)), "prompt": (first(TAUGHT, 2), first(DOCS, 2)),
              "rag": (first(TAUGHT, 5), RAG_DOCS), "finetune": (first(TAUGHT, 8), first(DOCS, 4))}
    said, _ = report(run_folder(tmp_path, scores))
    assert ("On documents-only questions, not better than the untouched base model (0.333): finetune (0.333), "
            "prompt (0.167).") in said
    assert not any(s.startswith("On taught questions, not better than the untouched base") for s in said)


# The recommendation's other branches, through the public function with the tables it is given.

def tables(scores: dict[str, float], pairs: list[tuple[str, str, str, float]], cost: dict[str, float]
           ) -> tuple[dict, pd.DataFrame]:
    """(rows, significance table) for the taught group; `pairs`: (a, b, test, raw p), none significant."""
    rows = {"accuracy (taught)": (scores, None), "cost": (cost, None), "complexity": ({n: 2 for n in scores}, None)}
    sig = pd.DataFrame([{"knowledge": "taught", "a": a, "b": b, "test": test, "p_value": p, "significant": False}
                        for a, b, test, p in pairs])
    return rows, sig


def test_a_tie_priced_on_a_deployment_profile_and_a_margin_of_one_question():
    # rag 3/10 against prompt 2/10: a margin of one question gives p = 1 whatever the disagreements, so the
    # fewest possible (1 of 10: p_disc = d = 0.1) give a floor; 3 pairs: z_{1-0.05/6} = 2.39398:
    #   (2.39398 * sqrt(0.1) + 0.84162 * sqrt(0.1 - 0.01))^2 / 0.01 = (0.75704 + 0.25249)^2 / 0.01
    #   = 1.00953^2 / 0.01 = 101.9 -> 102 questions, at least 92 more
    pairs = [("base", "prompt", "McNemar", 0.5), ("base", "rag", "McNemar", 0.25), ("prompt", "rag", "McNemar", 1.0)]
    rows, sig = tables({"prompt": 0.2, "rag": 0.3}, pairs, {"prompt": 1500.0, "rag": 400.0})
    rec = recommendation(rows, sig, ["prompt", "rag"], ["taught"], "contains", "h100-8b", {"taught": 10})
    assert rec == ("Recommendation: for facts the training pairs teach, **rag** ($400 a year on h100-8b), the leader "
                   "and the cheapest of a tie: rag (contains 0.300) is not significantly above prompt (0.200) after "
                   "Holm correction, and at least 92 more questions (102 in all) would tell rag from prompt at the "
                   "observed difference of 0.100 (McNemar, 80% power, Holm over 3 pairs); rag has the lowest "
                   "projected cost a year on h100-8b ($400).")


@pytest.mark.parametrize("scores, test, metric, says", [
    ({"prompt": 0.4, "rag": 0.4}, "McNemar", "contains",
     "**prompt** ($1.0000 for build + 1,000 questions), the leader and the cheapest of a tie: prompt (contains "
     "0.400) is not significantly above rag (0.400) after Holm correction, and prompt and rag score the same, so "
     "no number of questions would tell them apart;"),
    ({"prompt": 0.41, "rag": 0.52}, "permutation", "f1",
     "the cheapest of a tie: rag (f1 0.520) is not significantly above prompt (0.410) after Holm correction, and "
     "how many more questions would tell rag from prompt is not estimated (McNemar's power needs 0/1 scores);"),
], ids=["equal scores", "graded scores"])
def test_a_tie_at_equal_scores_or_on_graded_scores_gives_no_count(scores, test, metric, says):
    rows, sig = tables(scores, [("prompt", "rag", test, 1.0)], {"prompt": 1.0, "rag": 2.0})
    assert says in recommendation(rows, sig, ["prompt", "rag"], ["taught"], metric, None, {"taught": 10})


def test_a_tie_in_a_handful_of_questions_admits_the_approximation_fails():
    # 5 questions, rag right on all, prompt on none: exact p = 2 / 32 = 0.0625, not significant; the normal
    # approximation (p_disc = d = 1) asks (1.95996 * 1 + 0)^2 / 1 = 3.84 -> 4 questions, fewer than asked
    rows, sig = tables({"prompt": 0.0, "rag": 1.0}, [("prompt", "rag", "McNemar", 0.0625)], {"prompt": 1.0, "rag": 2.0})
    assert recommendation(rows, sig, ["prompt", "rag"], ["taught"], "contains", None, {"taught": 5}) == (
        "Recommendation: for facts the training pairs teach, **prompt** ($1.0000 for build + 1,000 questions), the "
        "cheapest of a tie: rag (contains 1.000) is not significantly above prompt (0.000) after Holm correction, and "
        "the normal approximation, which puts the questions needed to tell rag from prompt at the observed difference "
        "of 1.000 (McNemar, 80% power) at 4, is too loose at these 5 to say how many more are needed; prompt is "
        "cheapest for build + 1,000 questions ($1.0000).")


def test_a_tied_arm_below_the_untouched_model_is_never_the_pick():
    # coffee-from-documents' taught (generated) questions: finetune scores 0 and is the cheapest, but rag's lead
    # over it is not significant on 28 questions. The untouched model (base, not a contender) scores 0.071:
    # finetune is left out of the tie, and rag, tied with nothing else, is named.
    scores = {"prompt": 0.1, "rag": 0.179, "finetune": 0.0}
    pairs = [("rag", "finetune", "McNemar", 0.0625), ("prompt", "rag", "McNemar", 0.01)]
    rows, sig = tables(scores, pairs, {"prompt": 2.0, "rag": 5.0, "finetune": 1.0})
    sig["significant"] = sig.p_value < 0.05
    base = {"taught": ("base", 0.071)}
    rec = recommendation(rows, sig, list(scores), ["taught"], "contains", None, {"taught": 28}, base)
    assert rec.startswith("Recommendation: for facts the training pairs teach, **rag** (contains 0.179; finetune "
                          "(0.000), also within the tie, scores below the untouched model (base 0.071) and is left out)")
    # Were finetune above the untouched model, it would be the cheapest of the tie and the pick.
    scores["finetune"] = 0.1
    rec = recommendation(rows, sig, list(scores), ["taught"], "contains", None, {"taught": 28}, base)
    assert "**finetune** ($1.0000 for build + 1,000 questions), the cheapest of a tie" in rec
