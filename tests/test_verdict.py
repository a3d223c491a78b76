"""The verdict and the recommendation of report.md, from small hand-built run folders whose right wording is
known: each folder is rendered through `harness report`, as a user would re-render a run.

Every fixture has 10 taught and 12 documents-only questions and three to five arms; one that measured the update
has 16 fresh questions too. Costs (at $0.10 an hour, tokens free): prompt $0.0050 for build + 1,000 questions
(0.18 s a question), rag $0.0110 (0.36 s, a 36 s index), finetune $0.0150 (0.18 s, 360 s of training), raft
$0.0300 (0.36 s, 720 s of training); base is the control and never recommended.

An arm is recommended only when it is shown better than base (significantly, after Holm's correction over the
group's pairs), and a lead the paired tests do not carry is a tie (harness/report/standing.py). With four arms a
group has 6 pairs, so the smallest p-value must be under 0.05 / 6: a McNemar test of k discordant questions all
one way has p = 2 / 2^k, under 0.0083 from k = 8."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report.opinion import recommendation

TAUGHT, DOCS, FRESH = 10, 12, 16
COSTS = {  # arm: (weights, context, build_total_s, latency_mean_s)
    "base": ("base", "none", 0.0, 0.18),
    "prompt": ("base", "none", 0.0, 0.18),
    "rag": ("base", "retrieved", 36.0, 0.36),
    "finetune": ("qa-lora", "none", 360.0, 0.18),
    "raft": ("raft-lora", "retrieved", 720.0, 0.36),
}
REBUILDS = {"base": "nothing to rebuild", "prompt": "nothing to rebuild", "rag": "re-indexed",
            "finetune": "continued: 8 new + 8 replayed examples", "raft": "continued: 8 new + 8 replayed examples"}


def hits(n: int, right: list[int]) -> list[int]:
    """0/1 scores of n questions, 1 at the (1-based) question numbers in `right`."""
    return [int(i in right) for i in range(1, n + 1)]


def first(n: int, k: int) -> list[int]:
    return hits(n, list(range(1, k + 1)))


def _row(arm: str, phase: str, qid: str, knowledge: str, s: int) -> dict:
    return {"phase": phase, "pipeline": arm, "id": qid, "question": f"Q {qid}?", "fresh": knowledge == "fresh",
            "knowledge": knowledge, "topic": "t", "doc": f"docs/{qid}.md", "answer": "yes" if s else "no",
            "references": ["yes"], "contains": float(s), "gold_retrieved": None, "passages": [], "prompt_tokens": 40,
            "new_tokens": 8, "seconds": COSTS[arm][3], "seed": 0}


def run_folder(tmp_path: Path, scores: dict[str, tuple[list[int], list[int]]], name: str = "run",
               fresh: dict[str, tuple[list[int], list[int], list[int]]] | None = None) -> Path:
    """A run folder with run.json, costs.json and predictions.jsonl; `scores`: arm -> (taught, documents-only)
    0/1 scores, one per question; `fresh`, for a run that measured the update: arm -> 0/1 scores on the fresh
    questions before the update, with the new documents and no rebuild, and after a rebuild."""
    run = tmp_path / name
    run.mkdir()
    info = {"task": "tiny", "model": "tiny-model", "embedder": "tiny-embedder", "seed": 0, "device": "cpu",
            "pipelines": list(scores), "seeds": 1, "freshness": fresh is not None, "started": "2026-12-02T00:00:00",
            "sizes": {"train": 20}, "prices": {"hour_usd": 0.1, "per_million_tokens_usd": 0.0},
            "config": {"metric": "contains", "generation": {"max_new_tokens": 24, "batch_size": 16}}}
    (run / "run.json").write_text(json.dumps(info))
    costs = {arm: {"weights": w, "context": c, "build_total_s": build, "build_s": build, "latency_mean_s": lat,
                   "latency_p95_s": lat, "prompt_tokens_mean": 40.0, "new_tokens_mean": 8.0, "seeds": 1}
             for arm, (w, c, build, lat) in COSTS.items() if arm in scores}
    timings = {a: {} if fresh is None else {"add_documents_s": 0.01, "rebuild_s": 2.0, "rebuild_note": REBUILDS[a]}
               for a in scores}
    (run / "costs.json").write_text(json.dumps({"costs": costs, "timings": timings}))
    with open(run / "predictions.jsonl", "w") as f:
        for arm, (taught, docs) in scores.items():
            assert len(taught) == TAUGHT and len(docs) == DOCS
            for knowledge, prefix, row in (("taught", "t", taught), ("documents-only", "d", docs)):
                f.writelines(json.dumps(_row(arm, "main", f"{prefix}{i:02d}", knowledge, s)) + "\n"
                             for i, s in enumerate(row, 1))
        for arm, phases in (fresh or {}).items():
            for phase, row in zip(("main", "update_no_rebuild", "update_rebuilt"), phases):
                assert len(row) == FRESH
                f.writelines(json.dumps(_row(arm, phase, f"f{i:02d}", "fresh", s)) + "\n"
                             for i, s in enumerate(row, 1))
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


def opinion_cells(run: Path) -> dict[str, dict[str, str]]:
    """The opinion table of the folder's report.md (rendered by `report`): row -> arm -> the cell's level word."""
    md = (run / "report.md").read_text().split("\n")
    top = md.index("## The opinion table, measured")
    lines = [line for line in md[top:md.index("## Accuracy (stable questions, before the update)")]
             if line.startswith("| ")]
    arms = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    return {cells[0]: dict(zip(arms, (c.split(":")[0] for c in cells[1:])))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}


# Documents-only facts where rag is told apart from every other arm: 10 of 12 against 0 for the rest. Each of
# its three pairs is 10 discordant questions to 0, p = 2 / 2^10 = 0.00195, Holm x 6 = 0.0117 < 0.05.
RAG_DOCS = first(DOCS, 10)
NONE_DOCS = [0] * DOCS
# Taught facts where finetune is told apart from base, prompt (9 to 0, p = 0.0039) and rag (right on the first
# only: 8 to 0, p = 0.0078): Holm x 6, x 5, x 4 gives 0.023, 0.023, 0.031.
FT_TAUGHT, ONE_TAUGHT = first(TAUGHT, 9), first(TAUGHT, 1)


def test_ranking_follows_the_scores(tmp_path):
    # taught: finetune 8/10, rag 5/10, prompt 2/10, base 0/10; swapping rag's and prompt's taught scores must
    # swap them in the ranking.
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 2), NONE_DOCS),
              "rag": (first(TAUGHT, 5), RAG_DOCS), "finetune": (first(TAUGHT, 8), NONE_DOCS)}
    said, _ = report(run_folder(tmp_path, scores, "as-is"))
    assert any(s.startswith("On the 10 taught questions, ")
               and s.endswith("; ranking: finetune 0.800, rag 0.500, prompt 0.200, base 0.000.") for s in said)
    assert ("On the 12 documents-only questions, **rag** scores best (contains 0.833); ranking: rag 0.833, "
            "base 0.000, prompt 0.000, finetune 0.000.") in said

    scores["rag"], scores["prompt"] = (first(TAUGHT, 2), RAG_DOCS), (first(TAUGHT, 5), NONE_DOCS)
    said, _ = report(run_folder(tmp_path, scores, "swapped"))
    assert any(s.startswith("On the 10 taught questions, ")
               and s.endswith("; ranking: finetune 0.800, prompt 0.500, rag 0.200, base 0.000.") for s in said)


def test_a_significant_leader_is_recommended_as_before_and_no_arm_below_it_for_its_cost(tmp_path):
    # finetune leads the taught facts and rag the documents-only ones, each significantly above every other arm
    # (FT_TAUGHT, RAG_DOCS): named best in bold and recommended in the plain wording. prompt, the cheapest,
    # answers nothing: the cost clause names the cheapest arm shown better than base instead, and the opinion
    # table calls an arm not shown better than base low, not medium.
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": ([0] * TAUGHT, NONE_DOCS),
              "rag": (ONE_TAUGHT, RAG_DOCS), "finetune": (FT_TAUGHT, NONE_DOCS)}
    run = run_folder(tmp_path, scores)
    said, rec = report(run)
    assert rec == ("Recommendation: for facts the training pairs teach, **finetune** (contains 0.900); for facts only "
                   "the documents hold, **rag** (contains 0.833); rag is cheapest for build + 1,000 questions "
                   "($0.0110) of the arms shown better than the untouched model.")
    assert ("On the 10 taught questions, **finetune** scores best (contains 0.900); ranking: finetune 0.900, "
            "rag 0.100, base 0.000, prompt 0.000.") in said
    cells = opinion_cells(run)
    assert cells["accuracy (taught)"] == {"prompt": "low", "rag": "low", "finetune": "high"}
    assert cells["accuracy (documents-only)"] == {"prompt": "low", "rag": "high", "finetune": "low"}


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
    # taught: finetune 10/10, rag 9/10 (1-9), prompt 8/10 (1-8), base 0/10. Each is shown better than base (10, 9
    # and 8 to 0: p = 0.00195, 0.0039, 0.0078, Holm x 6, x 5, x 4 = 0.012, 0.020, 0.031), but finetune is told
    # from neither rag (1 to 0) nor prompt (2 to 0, p = 0.5): a tie of three, whose cheapest is prompt.
    # finetune vs prompt: 2 discordant of 10, both finetune's: p_disc = d = 0.2; Holm over 6 pairs: alpha
    # 0.05 / 6, z_{1-0.05/12} = 2.63826, z_0.8 = 0.84162
    #   2.63826 * sqrt(0.2) = 1.17987; 0.84162 * sqrt(0.2 - 0.04) = 0.84162 * 0.4 = 0.33665
    #   (1.17987 + 0.33665)^2 / 0.04 = 1.51652^2 / 0.04 = 2.29983 / 0.04 = 57.50 -> 58 questions, 48 more
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 8), NONE_DOCS),
              "rag": (first(TAUGHT, 9), RAG_DOCS), "finetune": ([1] * TAUGHT, NONE_DOCS)}
    run = run_folder(tmp_path, scores)
    said, rec = report(run)
    assert rec.startswith(
        "Recommendation: for facts the training pairs teach, **prompt** ($0.0050 for build + 1,000 questions), "
        "the cheapest of a tie: finetune (contains 1.000) is not significantly above rag (0.900) or prompt (0.800) "
        "after Holm correction, and about 48 more questions (58 in all) would tell finetune from prompt at the "
        "observed difference of 0.200 (McNemar, 80% power, Holm over 6 pairs); ")
    assert "for facts only the documents hold, **rag** (contains 0.833);" in rec  # the clear leader stays plain
    # The verdict names the same tie, with no best arm, and the same cheapest arm and count.
    assert ("On the 10 taught questions, finetune (contains 1.000), rag (0.900) and prompt (0.800) tie at the top; "
            "ranking: finetune 1.000, rag 0.900, prompt 0.800, base 0.000.") in said
    assert ("On taught questions, finetune (contains 1.000) is not significantly above rag (0.900) or prompt (0.800) "
            "after Holm correction: of the tie, prompt is the cheapest ($0.0050 for build + 1,000 questions), and "
            "about 48 more questions (58 in all) would tell finetune from prompt at the observed difference of 0.200 "
            "(McNemar, 80% power, Holm over 6 pairs).") in said
    assert set(opinion_cells(run)["accuracy (taught)"].values()) == {"high"}  # a tie shares the word


def test_a_leader_that_is_also_the_cheapest_is_measured_against_the_runner_up(tmp_path):
    # documents-only: prompt 12/12, rag 10/12 (1-10), finetune and base 0/12: both are shown better than base
    # (12 and 10 to 0), but prompt is not told from rag (2 to 0, p = 0.5). prompt is the cheapest: it is named,
    # and the extra questions are counted against rag, the runner-up: 2 discordant of 12, both for prompt, a
    # margin of 2: p_disc = d = 1/6;
    #   z_{1-0.05/12} = 2.63826: 2.63826 * sqrt(1/6) = 1.07707; 0.84162 * sqrt(1/6 - 1/36) = 0.84162 * 0.37268
    #   = 0.31366; (1.07707 + 0.31366)^2 * 36 = 1.39073^2 * 36 = 69.63 -> 70 questions, 58 more
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": (first(TAUGHT, 1), [1] * DOCS),
              "rag": (first(TAUGHT, 1), RAG_DOCS), "finetune": (first(TAUGHT, 1), NONE_DOCS)}
    _, rec = report(run_folder(tmp_path, scores))
    assert ("for facts only the documents hold, **prompt** ($0.0050 for build + 1,000 questions), the leader and "
            "the cheapest of a tie: prompt (contains 1.000) is not significantly above rag (0.833) after Holm "
            "correction, and about 58 more questions (70 in all) would tell prompt from rag at the observed "
            "difference of 0.167 (McNemar, 80% power, Holm over 6 pairs);") in rec


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


def test_arms_not_shown_better_than_the_untouched_base_are_named(tmp_path):
    # documents-only: base 2/12 (1-2); finetune 2/12 (1-2) level with it; prompt 3/12 (1-3) above it by one
    # question, p = 1: none of the three is shown better than base. rag 12/12 is, and leads (10, 10 and 9 to 0).
    scores = {"base": ([0] * TAUGHT, first(DOCS, 2)), "prompt": ([0] * TAUGHT, first(DOCS, 3)),
              "rag": (ONE_TAUGHT, [1] * DOCS), "finetune": (FT_TAUGHT, first(DOCS, 2))}
    said, _ = report(run_folder(tmp_path, scores))
    assert ("On documents-only questions, not shown better than the untouched base model (0.167): prompt (0.250), "
            "finetune (0.167).") in said


def test_no_arm_is_recommended_when_the_leader_is_not_shown_better_than_the_untouched_model(tmp_path):
    # taught: rag 3/10, every other arm 0; documents-only: every arm 0. rag's lead over base is 3 to 0, p = 0.25,
    # Holm x 6 = 1.0: nothing is shown better than base, so nothing is recommended, not even for its cost.
    # The questions that would show whether rag beats base: 3 discordant of 10, all rag's: p_disc = d = 0.3;
    #   2.63826 * sqrt(0.3) = 1.44503; 0.84162 * sqrt(0.3 - 0.09) = 0.84162 * 0.45826 = 0.38568
    #   (1.44503 + 0.38568)^2 / 0.09 = 1.83071^2 / 0.09 = 3.35150 / 0.09 = 37.24 -> 38 questions, 28 more
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": ([0] * TAUGHT, NONE_DOCS),
              "rag": (first(TAUGHT, 3), NONE_DOCS), "finetune": ([0] * TAUGHT, NONE_DOCS)}
    run = run_folder(tmp_path, scores)
    said, rec = report(run)
    assert rec == (
        "Recommendation: for facts the training pairs teach, no arm: none is shown better than the untouched model "
        "on these 10 questions (leader rag, contains 0.300, against base 0.000, Holm-corrected p = 1.00), and about "
        "28 more questions (38 in all) would show whether rag beats base at the observed difference of 0.300 "
        "(McNemar, 80% power, Holm over 6 pairs); for facts only the documents hold, no arm (every one scores 0); "
        "no arm is shown better than the untouched model on any of these questions, so none is named for its cost.")
    assert any(s.startswith("On the 10 taught questions, no arm is shown better than the untouched model (leader "
                            "rag, contains 0.300, against base 0.000, Holm-corrected p = 1.00); ranking: rag 0.300, ")
               for s in said)
    assert ("On taught questions, about 28 more questions (38 in all) would show whether rag beats base at the "
            "observed difference of 0.300 (McNemar, 80% power, Holm over 6 pairs).") in said
    assert not any("**" in s for s in said if not s.startswith("**Check before trusting")) and "**" not in rec
    assert set(opinion_cells(run)["accuracy (taught)"].values()) == {"low"}


# With the update measured: fresh questions, 16 of them, in three phases.
NO_FRESH = ([0] * FRESH,) * 3


def test_an_arm_level_with_the_untouched_model_is_never_recommended(tmp_path):
    # prompt, the cheapest arm, scores what base scores wherever it is asked, on other questions: documents-only
    # base d1-d2, prompt d11-d12; fresh with no rebuild base f1-f2, prompt f15-f16. rag leads both (d1-d10,
    # f1-f10) and is shown better than base there (8 to 0, p = 0.0078, Holm x 5 = 0.039), but not better than
    # prompt (10 to 2, p = 0.039, Holm x 4 = 0.15): prompt is in the tie, and the cheapest of it, and no more a
    # choice than doing nothing. finetune leads the taught facts alone (FT_TAUGHT).
    level, leader = hits(DOCS, [11, 12]), first(DOCS, 10)
    scores = {"base": ([0] * TAUGHT, first(DOCS, 2)), "prompt": ([0] * TAUGHT, level), "rag": (ONE_TAUGHT, leader),
              "finetune": (FT_TAUGHT, NONE_DOCS)}
    fresh = {"base": ([0] * FRESH, first(FRESH, 2), first(FRESH, 2)),
             "prompt": ([0] * FRESH, hits(FRESH, [15, 16]), hits(FRESH, [15, 16])),
             "rag": ([0] * FRESH, first(FRESH, 10), first(FRESH, 10)), "finetune": NO_FRESH}
    run = run_folder(tmp_path, scores, fresh=fresh)
    _, rec = report(run)
    assert "**prompt**" not in rec
    assert ("for facts only the documents hold, **rag** (contains 0.833; prompt (0.167), also within the tie, is not "
            "shown better than the untouched model (base 0.167) and is left out);") in rec
    assert ("for documents that arrive after the build, taken in with no rebuild, **rag** (contains 0.625; prompt "
            "(0.125), also within the tie, is not shown better than the untouched model (base 0.125) and is left "
            "out);") in rec
    assert rec.endswith("; rag is cheapest for build + 1,000 questions ($0.0110) of the arms shown better than the "
                        "untouched model.")
    cells = opinion_cells(run)
    assert {row: cells[row]["prompt"] for row in cells if row not in ("cost", "complexity")} == {
        "accuracy (taught)": "low", "accuracy (documents-only)": "low", "flexibility": "low", "freshness": "low"}


def test_an_exact_tie_at_the_top_is_named_a_tie_with_no_bold(tmp_path):
    # rag and finetune right on the same 9 taught questions, base and prompt on none: both are shown better
    # than base (9 to 0, p = 0.0039, Holm x 6 = 0.023) and tie exactly, on taught and on all stable questions.
    scores = {"base": ([0] * TAUGHT, NONE_DOCS), "prompt": ([0] * TAUGHT, NONE_DOCS),
              "rag": (FT_TAUGHT, NONE_DOCS), "finetune": (FT_TAUGHT, NONE_DOCS)}
    run = run_folder(tmp_path, scores)
    said, rec = report(run)
    assert ("On the 10 taught questions, rag and finetune tie at the top (contains 0.900); ranking: rag 0.900, "
            "finetune 0.900, base 0.000, prompt 0.000.") in said
    assert any(s.startswith("On all 22 stable questions, rag and finetune tie at the top (contains 0.409); ")
               for s in said)
    assert ("On taught questions, rag (contains 0.900) is not significantly above finetune (0.900) after Holm "
            "correction: of the tie, rag is the cheapest ($0.0110 for build + 1,000 questions), and rag and "
            "finetune score the same, so no number of questions would tell them apart.") in said
    assert not any(("**" in s or "best" in s) and not s.startswith("**Check before trusting") for s in said)
    assert "for facts the training pairs teach, **rag** ($0.0110 for build + 1,000 questions), the leader and " \
           "the cheapest of a tie" in rec


# Fresh questions, with no rebuild and after a rebuild. raft reads passages and trains: with no rebuild it
# leads f1-f14 (14/16), rag f1-f12 (12/16); after a rebuild finetune joins. Every arm with an update to read is
# shown better than base (12 or more to 0, p < 0.0005 x 10), and no two of them are told apart (2 to 0, p = 0.5).
FRESH_TIE = {"base": NO_FRESH, "rag": ([0] * FRESH, first(FRESH, 12), first(FRESH, 12)),
             "finetune": ([0] * FRESH, [0] * FRESH, first(FRESH, 13)),
             "raft": ([0] * FRESH, first(FRESH, 14), first(FRESH, 14))}
STABLE = {"base": ([0] * TAUGHT, NONE_DOCS), "rag": (ONE_TAUGHT, RAG_DOCS), "finetune": (FT_TAUGHT, NONE_DOCS),
          "raft": (FT_TAUGHT, RAG_DOCS)}


def test_a_fresh_tie_is_named_a_tie_in_the_verdict_and_the_recommendation(tmp_path):
    # With no rebuild raft leads rag by 2 of 16 (p = 0.5), so rag, the cheaper, is the pick. 4 arms, 6 pairs:
    #   p_disc = d = 2/16 = 0.125: 2.63826 * sqrt(0.125) = 0.93277; 0.84162 * sqrt(0.125 - 0.015625) = 0.27834
    #   (0.93277 + 0.27834)^2 / 0.015625 = 1.21111^2 * 64 = 93.87 -> 94 questions, 78 more
    said, rec = report(run_folder(tmp_path, STABLE, fresh=FRESH_TIE))
    assert ("Fresh questions (the 16 answered only by documents that arrive later): before the update, no arm "
            "answers any correctly (contains 0.000 for every arm); with the new documents added and no rebuild, "
            "raft (contains 0.875) and rag (0.750) tie at the top.") in said
    assert ("With no rebuild, raft (contains 0.875) is not significantly above rag (0.750) after Holm correction: "
            "of the tie, rag is the cheapest ($0.0110 for build + 1,000 questions), and about 78 more questions (94 "
            "in all) would tell raft from rag at the observed difference of 0.125 (McNemar, 80% power, Holm over 6 "
            "pairs).") in said
    assert any(s.startswith("After a rebuild, on fresh questions raft (contains 0.875), finetune (0.812) and rag "
                            "(0.750) tie at the top; rebuild costs") for s in said)
    assert not any("**" in s for s in said if "fresh" in s or s.startswith(("With no rebuild", "After a rebuild")))
    assert ("for documents that arrive after the build, taken in with no rebuild, **rag** ($0.0110 for build + "
            "1,000 questions), the cheapest of a tie: raft (contains 0.875) is not significantly above rag (0.750) "
            "after Holm correction, and about 78 more questions (94 in all) would tell raft from rag at the observed "
            "difference of 0.125 (McNemar, 80% power, Holm over 6 pairs);") in rec


def test_a_significant_fresh_lead_is_named_a_lead(tmp_path):
    # raft alone takes in the new documents: 14/16 with no rebuild and after it, every other arm 0 (14 to 0).
    lead = {"base": NO_FRESH, "rag": NO_FRESH, "finetune": NO_FRESH,
            "raft": ([0] * FRESH, first(FRESH, 14), first(FRESH, 14))}
    said, rec = report(run_folder(tmp_path, STABLE, fresh=lead))
    assert any(s.endswith("with the new documents added and no rebuild, **raft** scores best (contains 0.875), the "
                          "documents added in 0.010 s.") for s in said)
    assert any(s.startswith("After a rebuild, on fresh questions **raft** scores best (contains 0.875); rebuild "
                            "costs") for s in said)
    assert not any(s.startswith(("With no rebuild", "After a rebuild, about", "After a rebuild, raft")) for s in said)
    assert "for documents that arrive after the build, **raft** takes them in with no rebuild (0.875 on fresh " \
           "questions);" in rec


def test_one_seed_on_few_fresh_questions_is_named_in_the_trust_section(tmp_path):
    run = run_folder(tmp_path, STABLE, fresh=FRESH_TIE)
    report(run)
    text = (run / "report.md").read_text()
    trust = text[text.index("### How far to trust these numbers"):text.index("## The opinion table")]
    assert ("- Freshness is where one training seed misleads most: its 16 fresh questions are fewer than the 22 "
            "stable ones and are scored after a rebuild that trains again, so each answer a retrained arm gets right "
            "or wrong there moves its score by 0.062, and a second seed can change which arm leads") in trust


# The recommendation's other branches, through the public function with the Standings it is given.

def judged(scores: dict[str, float], pairs: list[tuple[str, str, str, float, float]], cost: dict[str, float],
           questions: int, metric: str = "contains", profile: str | None = None, control: str | None = None
           ) -> "Standings":
    """Standings of one taught group; `pairs`: (a, b, test, raw p, Holm p), significant below 0.05 after Holm."""
    from harness.report.standing import Costs, Standings, judge  # here, so that the folder tests run on older code

    sig = pd.DataFrame([{"a": a, "b": b, "test": test, "p_value": p, "p_holm": h, "significant": h < 0.05}
                        for a, b, test, p, h in pairs])
    costs = Costs(cost, {n: 2 for n in cost}, profile)
    return Standings({"taught": judge(scores, sig, control, questions, metric, costs)}, {}, costs)


def test_a_tie_priced_on_a_deployment_profile_and_a_margin_of_one_question():
    # rag 3/10 against prompt 2/10: a margin of one question gives p = 1 whatever the disagreements, so the
    # fewest possible (1 of 10: p_disc = d = 0.1) give a floor; 3 pairs: z_{1-0.05/6} = 2.39398:
    #   (2.39398 * sqrt(0.1) + 0.84162 * sqrt(0.1 - 0.01))^2 / 0.01 = (0.75704 + 0.25249)^2 / 0.01
    #   = 1.00953^2 / 0.01 = 101.9 -> 102 questions, at least 92 more
    pairs = [("base", "prompt", "McNemar", 0.5, 1.0), ("base", "rag", "McNemar", 0.25, 0.75),
             ("prompt", "rag", "McNemar", 1.0, 1.0)]
    rec = recommendation(judged({"prompt": 0.2, "rag": 0.3}, pairs, {"prompt": 1500.0, "rag": 400.0}, 10,
                                profile="h100-8b"), ["taught"], ["prompt", "rag"])
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
    rec = recommendation(judged(scores, [("prompt", "rag", test, 1.0, 1.0)], {"prompt": 1.0, "rag": 2.0}, 10, metric),
                         ["taught"], ["prompt", "rag"])
    assert says in rec


def test_a_handful_of_questions_admits_the_approximation_fails():
    # 5 questions, rag right on all, base on none: exact p = 2 / 32 = 0.0625, not significant, so no arm is
    # shown better than base; the normal approximation (p_disc = d = 1) asks (1.95996 * 1 + 0)^2 / 1 = 3.84 -> 4
    # questions to show it, fewer than asked
    s = judged({"base": 0.0, "rag": 1.0}, [("base", "rag", "McNemar", 0.0625, 0.0625)], {"rag": 2.0}, 5,
               control="base")
    assert recommendation(s, ["taught"], ["rag"]) == (
        "Recommendation: for facts the training pairs teach, no arm: none is shown better than the untouched model "
        "on these 5 questions (leader rag, contains 1.000, against base 0.000, Holm-corrected p = 0.06), and the "
        "normal approximation, which puts the questions needed to show whether rag beats base at the observed "
        "difference of 1.000 (McNemar, 80% power) at 4, is too loose at these 5 to say how many more are needed; no "
        "arm is shown better than the untouched model on any of these questions, so none is named for its cost.")


def test_a_tied_arm_below_the_untouched_model_is_never_the_pick():
    # coffee-from-documents' taught (generated) questions: finetune scores 0 and is the cheapest, but rag's lead
    # over it is not significant on 28 questions. The untouched model (base, not a contender) scores 0.071:
    # finetune is left out of the tie, and rag, tied with nothing else, is named.
    scores = {"base": 0.071, "prompt": 0.1, "rag": 0.179, "finetune": 0.0}
    pairs = [("rag", "finetune", "McNemar", 0.0625, 0.0625), ("prompt", "rag", "McNemar", 0.01, 0.02)]
    cost = {"prompt": 2.0, "rag": 5.0, "finetune": 1.0}
    rec = recommendation(judged(scores, pairs, cost, 28, control="base"), ["taught"], list(cost))
    assert rec.startswith("Recommendation: for facts the training pairs teach, **rag** (contains 0.179; finetune "
                          "(0.000), also within the tie, is not shown better than the untouched model (base 0.071) "
                          "and is left out)")
    # Were finetune above the untouched model, it would be the cheapest of the tie and the pick.
    scores["finetune"] = 0.1
    rec = recommendation(judged(scores, pairs, cost, 28, control="base"), ["taught"], list(cost))
    assert "**finetune** ($1.0000 for build + 1,000 questions), the cheapest of a tie" in rec
