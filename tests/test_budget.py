"""`harness run --budget MINUTES` (issue 44): the planner on synthetic forecasts (the order of its cuts, a refusal
below the smallest plan that names the least budget, the identity above the full forecast), the seeded samples
spread over every document, the forecast's calibration, and a real tiny run whose budget forces a cut."""
import dataclasses
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.run import budget as planner, calibration
from harness.run.budget import Material, Plan
from harness.run.forecast import ArmForecast
from harness.sampling import MIN_FACTS, MIN_ROWS, quotas, spread

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = Path(__file__).parents[1] / "tasks"


def part(name: str, weights: str, answer_s: float, train_s: float) -> ArmForecast:
    return ArmForecast(name, int(train_s * 100), 1000, answer_s + train_s, weights, train_s)


# A large corpus's shape: cpt the biggest part, then RAFT, then the fine-tune on generated pairs.
PARTS = [part("pair writing", "base", 90, 0), part("base", "base", 60, 0), part("finetune", "qa-lora", 60, 600),
         part("raft", "raft-lora", 120, 900), part("cpt", "cpt-lora", 30, 2400)]
M = Material(cpt_blocks=1000, cpt_tokens=256_000, written=0, generated=3000, facts=1000, raft_cap=128)


def total(plan: Plan) -> float:
    return planner.total(PARTS, M, plan)


def test_the_whole_plan_is_kept_when_it_fits_and_nothing_else_changes():
    full = total(Plan()) / 60
    for budget in (full, full + 0.1, 10 * full):
        assert planner.fit(PARTS, M, budget) == Plan() and Plan().whole
    assert planner.seconds(PARTS, M, Plan()) == {p.name: p.seconds for p in PARTS}


def test_cuts_come_in_order_cpt_then_facts_then_raft_each_only_as_far_as_needed():
    least = planner.smallest(PARTS, M)
    assert least == Plan(MIN_ROWS / 1000, MIN_FACTS / 1000, MIN_ROWS)
    cpt_cut = total(Plan(cpt=least.cpt))  # cpt at its least, the rest whole
    facts_cut = total(Plan(cpt=least.cpt, facts=least.facts))
    assert total(least) < facts_cut < cpt_cut < total(Plan())
    # Just under the full forecast: only cpt shrinks.
    plan = planner.fit(PARTS, M, (cpt_cut + total(Plan())) / 2 / 60)
    assert least.cpt < plan.cpt < 1 and plan.facts == 1 and plan.raft is None
    # Under what cpt alone can save: cpt at its least, then generated facts.
    plan = planner.fit(PARTS, M, (facts_cut + cpt_cut) / 2 / 60)
    assert plan.cpt == least.cpt and least.facts < plan.facts < 1 and plan.raft is None
    # Under that: RAFT's examples last (24 left with 8 facts' pairs; cut towards 4).
    plan = planner.fit(PARTS, M, (total(least) + facts_cut) / 2 / 60)
    assert plan.cpt == least.cpt and plan.facts == least.facts and MIN_ROWS < plan.raft < 24


@pytest.mark.parametrize("share", [0.1, 0.35, 0.6, 0.85])
def test_each_plan_is_the_largest_whole_number_of_items_that_fits(share):
    budget = (total(planner.smallest(PARTS, M)) + share * (total(Plan()) - total(planner.smallest(PARTS, M)))) / 60
    plan = planner.fit(PARTS, M, budget)
    assert total(plan) <= budget * 60
    if plan.cpt < 1 and plan.facts == 1:
        n = round(plan.cpt * M.cpt_blocks)
        assert n == plan.cpt * M.cpt_blocks
        assert total(dataclasses.replace(plan, cpt=(n + 1) / M.cpt_blocks)) > budget * 60
    elif plan.facts < 1 and plan.raft is None:
        n = round(plan.facts * M.facts)
        assert total(dataclasses.replace(plan, facts=(n + 1) / M.facts)) > budget * 60
    else:
        assert total(dataclasses.replace(plan, raft=plan.raft + 1)) > budget * 60


def test_below_the_smallest_plan_it_refuses_in_one_line_naming_the_least_budget():
    least = planner.least_budget(PARTS, M)
    assert least == pytest.approx(total(planner.smallest(PARTS, M)) / 60, abs=0.1)
    with pytest.raises(HarnessError) as e:
        planner.fit(PARTS, M, least - 0.1)
    said = str(e.value)
    assert "\n" not in said and f"give --budget {least:g} or more" in said
    assert planner.fit(PARTS, M, least) == planner.smallest(PARTS, M)  # the budget it names does fit


def test_material_no_selected_arm_trains_on_is_not_said_to_be_cut():
    no_cpt = [p for p in PARTS if p.weights != "cpt-lora"]
    plan = planner.fit(no_cpt, M, (planner.total(no_cpt, M, Plan()) - 100) / 60)
    assert plan.cpt == 1 and plan.facts < 1
    written = dataclasses.replace(M, written=500, generated=0, facts=0)  # hand-written pairs are never cut
    plan = planner.fit(PARTS, written, planner.least_budget(PARTS, written))
    assert plan.facts == 1 and plan.raft == MIN_ROWS


# ---------------------------------------------------------------- samples spread over the documents

def test_a_sample_spreads_over_every_document_in_proportion_and_repeats_from_its_seed():
    items = [(doc, i) for doc, n in (("a", 50), ("b", 30), ("c", 19), ("d", 1)) for i in range(n)]
    picked = spread(items, lambda x: x[0], 10, seed=3)
    counts = {d: sum(x[0] == d for x in picked) for d in "abcd"}
    assert sum(counts.values()) == 10 and min(counts.values()) >= 1  # the one-item document too
    assert counts["a"] > counts["b"] > counts["c"] >= 1
    assert picked == [x for x in items if x in picked]  # the items' own order
    assert spread(items, lambda x: x[0], 10, seed=3) == picked
    assert any(spread(items, lambda x: x[0], 10, seed=s) != picked for s in range(4, 8))
    # Fewer than the documents: one each from as many documents, drawn with the seed.
    assert sorted(quotas({"a": 5, "b": 5, "c": 5}, 2, random.Random(0)).values()) == [0, 1, 1]
    assert spread(items, lambda x: x[0], 200, seed=3) == items


def test_sampled_facts_keep_every_phrasing_and_every_document(tokenizer):
    from harness.arms.training_data import cpt_blocks, cpt_examples, sample_cpt
    from harness.pairs.construct import build, fact, per_fact, sample_facts

    docs = (_towns(), *_tiny_docs())
    items = per_fact(build(docs, 40, 10, 4).items, 3)
    facts = {fact(w) for w in items}
    kept = sample_facts(items, 0.25, seed=0)
    chosen = {fact(w) for w in kept}
    assert len(chosen) == round(0.25 * len(facts))
    assert len(kept) == sum(fact(w) in chosen for w in items)  # every phrasing of a chosen fact
    assert {f[0] for f in chosen} == {f[0] for f in facts}  # every document with a fact
    assert sample_facts(items, 0.25, seed=0) == kept and sample_facts(items, 0.25, seed=1) != kept
    assert sample_facts(items, 1.0, seed=0) == items  # the whole share: the very same material
    blocks = cpt_blocks(tokenizer, docs, 16)
    rows, record = sample_cpt(blocks, 0.3, seed=0)
    assert record["blocks"] == len(rows) == round(0.3 * len(blocks)) and record["of_blocks"] == len(blocks)
    assert record["tokens"] == sum(len(r["input_ids"]) for r in rows) < record["of_tokens"]
    owners = {d for d, row in blocks for r in rows if r is row}
    assert owners == {d.path for d in docs}
    assert sample_cpt(blocks, 1.0, seed=0) == (cpt_examples(tokenizer, docs, 16), None)


def test_labels_follow_the_sampled_pairs():
    """A test question whose fact's pairs were not sampled counts as documents-only in that run."""
    from harness.config import SamplingConfig
    from harness.pairs.source import make_pairs, with_pairs
    from harness.retrieval.registry import build_retriever
    from harness.task.taught import DOCS_ONLY, TAUGHT_GENERATED, Coverage, knowledge_labels

    task = _generated_tiny(Path("/nonexistent"))
    bm25 = lambda docs: build_retriever("bm25", None, "", docs, 40, 10, None)  # noqa: E731
    whole = with_pairs(task, task.config, make_pairs(task, task.config, None, "parse", bm25))
    before = knowledge_labels(task.test, whole.knowledge.pairs)
    assert TAUGHT_GENERATED in before.values()
    moved = 0
    for seed in range(6):
        cfg = task.config.model_copy(update={"seed": seed, "sampling": SamplingConfig(facts=0.1)})
        sampled = with_pairs(task, cfg, make_pairs(task, cfg, None, "parse", bm25)).knowledge.pairs
        after = knowledge_labels(task.test, sampled)
        cover = Coverage(sampled, same_fact=True)
        for q in task.stable:
            assert (after[q.id] == TAUGHT_GENERATED) == cover.covers(q)
            moved += before[q.id] == TAUGHT_GENERATED and after[q.id] == DOCS_ONLY
    assert moved  # a fact left out of the sample is no longer counted as taught


# ---------------------------------------------------------------- the forecast: identity, calibration

def _forecast_inputs(task):
    from harness.arms.catalog import arm_names
    from harness.arms.precision import bf16_is_fast, matmul_speeds
    from harness.inference.models import DEFAULT_MODEL, resolve_model
    from harness.run.machine import bf16_training_pays
    from harness.run.memory import model_shape

    speeds = matmul_speeds()  # measured once a process: a run started in this process forecasts the same
    return arm_names(task.config), model_shape(resolve_model(DEFAULT_MODEL)), speeds, \
        bf16_is_fast(speeds, bf16_training_pays())


def test_coffee_with_a_budget_above_its_forecast_runs_exactly_as_without_one(tmp_path):
    from harness.run.planning import plan_run
    from harness.task.registry import find_task

    task = find_task("coffee", TASKS)
    names, shape, speeds, bf16 = _forecast_inputs(task)
    args = (task, task.config, names, shape, speeds, bf16, True)
    plain = plan_run(*args, None, "cpu", tmp_path)
    full = plain.record["forecast"]["minutes"]["full"]
    for budget in (full + 0.1, 10 * full):
        budgeted = plan_run(*args, budget, "cpu", tmp_path)
        assert budgeted.plan.whole and budgeted.config == task.config == plain.config  # same material, same cache keys
        assert budgeted.line == plain.line
        assert budgeted.record["budget"]["plan"] == {"cpt_tokens": 1.0, "facts": 1.0, "raft_examples": None}


def test_calibration_scales_the_next_forecast_and_ignores_what_it_cannot_trust(tmp_path):
    from harness.run.planning import plan_run
    from harness.task.registry import find_task

    cache = tmp_path / "cache"
    calibration.record(cache, "cpu A", {"rag": (100.0, 180.0), "base": (5.0, 50.0), "cpt": (100.0, 10_000.0)})
    assert calibration.ratios(cache, "cpu A") == {"rag": 1.8, "cpt": calibration.RANGE[1]}  # base: too short
    assert calibration.ratios(cache, "cpu B") == {}
    task = find_task("tiny", FIXTURES)
    names, shape, speeds, bf16 = _forecast_inputs(task)
    args = (task, task.config, names, shape, speeds, bf16, True)
    plain, scaled = plan_run(*args, None, "cpu A", tmp_path / "empty"), plan_run(*args, None, "cpu A", cache)
    assert scaled.record["forecast"]["calibration"] == {"rag": 1.8, "cpt": calibration.RANGE[1]}
    assert "scaled by this machine's earlier runs (rag x1.80, cpt x3.00)" in scaled.line
    assert scaled.record["forecast"]["minutes"]["full"] > plain.record["forecast"]["minutes"]["full"]
    assert scaled.record["forecast"]["seconds"] == plain.record["forecast"]["seconds"]  # run.json keeps the raw
    for broken in ("{", "[1, 2]", '{"cpu A": {"rag": {"forecast_s": "x", "measured_s": -1}}}', "\x00"):
        (cache / calibration.FILE).write_text(broken)
        assert calibration.ratios(cache, "cpu A") == {}
        assert plan_run(*args, None, "cpu A", cache).line == plain.line


def test_a_resumed_run_keeps_the_plan_its_unfinished_run_recorded(tmp_path):
    from harness.run.planning import unfinished_plan

    parent = tmp_path / "results" / "tiny"
    for stamp, plan in (("20260101-000000", {"cpt_tokens": 0.5, "facts": 0.25, "raft_examples": 16}),
                        ("20260102-000000", None)):
        folder = parent / f".{stamp}.partial"
        folder.mkdir(parents=True)
        (folder / "resume_key").write_text("mine" if plan else "another")
        (folder / "run.json").write_text(json.dumps({"budget": {"plan": plan}} if plan else {}))
    assert unfinished_plan(tmp_path / "results", "tiny", "mine") == Plan(0.5, 0.25, 16)
    assert unfinished_plan(tmp_path / "results", "tiny", "none such") is None
    newer = parent / ".20260103-000000.partial"  # killed before its first arm ended: no plan to keep yet
    newer.mkdir()
    (newer / "resume_key").write_text("mine")
    assert unfinished_plan(tmp_path / "results", "tiny", "mine") is None


def test_a_budget_below_the_smallest_plan_is_refused_before_any_model_loads(tmp_path, capsys):
    code = main(["run", "--task", "tiny", "--tasks-dir", str(FIXTURES), "--budget", "0.01",
                 "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert re.search(r"harness: error: a budget of 0.01 min is too small: .* give --budget [\d.]+ or more", err)
    assert not (tmp_path / "r").exists()  # no run folder: it stopped before loading


# ---------------------------------------------------------------- a real run whose budget forces a cut

TOWNS = ["Ardel", "Brisk", "Corvan", "Dunmere", "Elsby", "Farrow", "Galt", "Hollin", "Istra", "Jorvik", "Kestle"]
PEOPLE = ["Mara Quell", "Oren Vask", "Tilda Brenn", "Jonas Pike", "Edda Lorn", "Piet Savel", "Runa Holt", "Cass Imber",
          "Lio Darrow", "Neve Small", "Bram Tully"]
RIVERS = ["Amber", "Birch", "Cinder", "Dove", "Elm", "Fern", "Gull", "Hazel", "Iris", "Juniper", "Kelp"]


def _towns():
    from harness.task.types import Document

    lines = [f"{t} was founded in {1700 + 7 * i} by {p}. The market of {t} sells {3 + i} kinds of cheese. The river "
             f"at {t} is called the {r} Water." for i, (t, p, r) in enumerate(zip(TOWNS, PEOPLE, RIVERS))]
    return Document("docs/towns.md", "# Towns of Velmora\n" + "\n".join(lines) + "\n")


def _tiny_docs():
    from harness.task.registry import find_task

    return find_task("tiny", FIXTURES).knowledge.docs


def _generated_tiny(root: Path):
    """The tiny task with no hand-written pairs and a fourth document of 33 facts: pairs are built from the parse.
    Written under `root` (a real folder) or, for a path that does not exist, only in memory."""
    from harness.task.types import Knowledge
    from harness.task.registry import find_task

    if root.exists():
        shutil.copytree(FIXTURES / "tiny", root / "tiny")
        (root / "tiny" / "train.jsonl").unlink()
        (root / "tiny" / "updates" / "train.jsonl").unlink()
        (root / "tiny" / "docs" / "towns.md").write_text(_towns().text)
        return find_task("tiny", root)
    task = find_task("tiny", FIXTURES)
    return dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs + (_towns(),)),
                               update=Knowledge(task.update.docs))


@pytest.fixture(scope="module")
def tokenizer():
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    return load_generator(resolve_model(DEFAULT_MODEL))[1]


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """base, finetune and cpt on the generated tiny task, under a budget between the smallest plan and the plan
    with only cpt cut: cpt is cut to its least and the generated facts to a part."""
    from harness.run.planning import forecast_parts

    root = tmp_path_factory.mktemp("budget")
    (root / "tasks").mkdir()
    task = _generated_tiny(root / "tasks")
    names = ["base", "finetune", "cpt"]
    _, shape, speeds, bf16 = _forecast_inputs(task)
    parts, m = forecast_parts(task, task.config, names, shape, speeds, bf16, False)
    least = planner.smallest(parts, m)
    low, high = planner.total(parts, m, least), planner.total(parts, m, Plan(cpt=least.cpt))
    budget = (low + 0.3 * (high - low)) / 60
    plan = planner.fit(parts, m, budget)
    assert plan.cpt == least.cpt < 1 and least.facts < plan.facts < 1  # the cut this test is about
    code = main(["run", "--task", "tiny", "--tasks-dir", str(root / "tasks"), "--results-dir", str(root / "r"),
                 "--cache-dir", str(root / "cache"), "--pipelines", ",".join(names), "--no-freshness",
                 "--budget", repr(budget)])
    assert code == 0
    (run_dir,) = (root / "r" / "tiny").iterdir()
    return run_dir, plan, task


def test_a_budgeted_run_records_its_samples_in_run_json(budget_run):
    run_dir, plan, _ = budget_run
    info = json.loads((run_dir / "run.json").read_text())
    b = info["budget"]
    assert b["plan"] == {"cpt_tokens": plan.cpt, "facts": plan.facts, "raft_examples": None} and b["seed"] == 0
    assert info["config"]["sampling"] == b["plan"]
    cpt, pairs = b["sampled"]["cpt"], b["sampled"]["pairs"]
    assert cpt["arms"] == ["cpt"] and cpt["blocks"] < cpt["of_blocks"] and cpt["tokens"] < cpt["of_tokens"]
    assert pairs["arms"] == ["finetune"] and pairs["facts"] < pairs["of_facts"] and pairs["pairs"] < pairs["of_pairs"]
    assert pairs["facts"] == round(plan.facts * pairs["of_facts"]) or pairs["facts"] == MIN_FACTS
    kept = [json.loads(line) for line in (run_dir / "pairs.generated.jsonl").read_text().splitlines()]
    original = [p for p in kept if p["part"] == "original"]
    assert len(original) == pairs["pairs"]
    assert {p["doc"] for p in original} == {"docs/animal.md", "docs/capital.md", "docs/food.md", "docs/towns.md"}
    costs = json.loads((run_dir / "costs.json").read_text())["costs"]
    assert costs["finetune"]["training_pairs"] == {"generated": pairs["pairs"]}
    assert costs["cpt"]["sampled"]["cpt"]["blocks"] == cpt["blocks"]
    # The measured time went beside the cache, for the next forecast on this machine.
    measured = json.loads((run_dir.parents[2] / "cache" / calibration.FILE).read_text())
    (parts,) = measured.values()
    assert {"base", "finetune", "cpt", "pair writing"} <= set(parts)


def test_a_budgeted_run_labels_by_what_was_trained_and_says_what_was_cut(budget_run):
    from harness.task.types import QAPair
    from harness.task.taught import GENERATED, knowledge_labels

    run_dir, _, task = budget_run
    kept = [json.loads(line) for line in (run_dir / "pairs.generated.jsonl").read_text().splitlines()]
    trained = [QAPair(p["question"], p["answer"], p["doc"], GENERATED) for p in kept if p["part"] == "original"]
    labels = knowledge_labels(task.test, trained)
    for line in (run_dir / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert row["knowledge"] == labels[row["id"]]
    report = " ".join((run_dir / "report.md").read_text().split())
    b = json.loads((run_dir / "run.json").read_text())["budget"]
    cpt, pairs = b["sampled"]["cpt"], b["sampled"]["pairs"]
    assert (f"cpt trained on {cpt['tokens'] / cpt['of_tokens']:.0%} of the documents' tokens ({cpt['tokens']} of "
            f"{cpt['of_tokens']}); finetune on {pairs['pairs']} of {pairs['of_pairs']} generated pairs (every "
            f"phrasing of {pairs['facts']} facts, of {pairs['of_facts']})") in report
    assert f"To fit a budget of {b['minutes']:g} minutes" in report
    assert "counts as documents-only here" in report


def test_a_small_cut_reads_under_one_percent_not_zero():
    from harness.text import percent

    assert percent(0.0046) == "under 1%"  # gnuplot's cpt kept 4 of ~436 blocks: "0%" read as nothing trained
    assert (percent(0.0), percent(0.09), percent(1.0)) == ("0%", "9%", "100%")


def test_raft_continuation_shrinks_with_the_sampled_update_pairs_not_with_its_capped_build():
    """xorg-docs: the build keeps 86 of its 128 capped examples, but the update's ~150 generated pairs are sampled
    by the same facts share (24 kept), so the continuation, priced on 128 + 128, trains on 24 + 24. Scaling the
    whole of RAFT's training by the build's share over-forecast that run 2x (bench/README.md)."""
    m = Material(written=0, generated=544, facts=229, raft_cap=128, update_generated=150)
    raft = dataclasses.replace(part("raft", "raft-lora", 60, 1000), train_tokens=1000, update_train_tokens=600)
    plan = Plan(facts=0.158)
    build = m.raft_examples(plan.facts) / m.raft_examples()
    update = m.update_pairs(plan.facts, m.raft_cap) / m.update_pairs(cap=m.raft_cap)
    assert build == pytest.approx(86 / 128) and update == pytest.approx(24 / 128)
    kept = planner.scales([raft], m, plan)["raft"]
    assert kept == pytest.approx(0.4 * build + 0.6 * update)
    assert planner.seconds([raft], m, plan)["raft"] == pytest.approx(60 + 1000 * kept)
    # A task with no update pairs keeps the build's share alone, as before.
    assert planner.scales([part("raft", "raft-lora", 60, 1000)], m, plan)["raft"] == pytest.approx(build)
