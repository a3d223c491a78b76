"""Training pairs built from the documents' parse: each kind of fact asked as it should be, the filters keeping
only checked pairs, and properties every kept pair has (its answer a span of its sentence, absent from its
question), with the real spaCy pipeline and the real BM25 index."""
import dataclasses
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from harness.config import TaskConfig
from harness.pairs.candidates import Candidate
from harness.pairs.construct import build, clauses, per_fact
from harness.pairs.facts import facts
from harness.pairs.filters import Written, apply_filters, round_trip
from harness.pairs.parse import parse
from harness.pairs.phrasings import phrasings
from harness.pairs.source import generate_part, make_pairs, with_pairs
from harness.retrieval.registry import build_retriever
from harness.task.demo_pool import demo_pool
from harness.task.types import Document, Knowledge, QAPair
from harness.task.types import TestQuestion as Question
from harness.task.registry import find_task
from harness.task.taught import DOCS_ONLY, GENERATED, TAUGHT_GENERATED, knowledge_labels
from harness.text import normalize

FIXTURES = Path(__file__).parent / "fixtures"


def asked(sentence: str) -> dict[str, tuple[str, list[str]]]:
    """answer -> (kind, questions) for every fact of one sentence."""
    (doc,) = parse([sentence])
    return {f.answer(doc): (f.kind, [p.question for p in phrasings(doc, f, None, None)]) for f in facts(doc)}


def test_each_kind_of_fact_is_asked_with_its_own_wh_phrase():
    person = asked("The AeroPress was invented by Alan Adler in 2005.")
    assert person["Alan Adler"][0] == "person"
    assert "The AeroPress was invented by whom in 2005?" in person["Alan Adler"][1]
    assert person["2005"][0] == "year"
    assert "In what year was the AeroPress invented by Alan Adler?" in person["2005"][1]

    quantity = asked("A double shot uses about 18 grams of coffee.")
    assert quantity["18 grams"][0] == "quantity"
    assert "How many grams of coffee does a double shot use?" in quantity["18 grams"][1]

    span = asked("Arabica is grown between 1,000 and 2,000 metres above sea level.")
    assert span["between 1,000 and 2,000 metres"] == ("quantity", [
        "Arabica is grown how many metres above sea level?",
        "Which words fill the blank in: Arabica is grown ___ above sea level?"])

    term = asked("The golden-brown foam on top of an espresso is called crema.")
    assert term["crema"][0] == "term"
    assert "What is the golden-brown foam on top of an espresso called?" in term["crema"][1]

    place = asked("Coffee is grown in Kenya.")
    assert place["Kenya"] == ("place", ["Coffee is grown where?", "Where is coffee grown?",
                                        "Which words fill the blank in: Coffee is grown in ___?"])

    temperature = asked("The Specialty Coffee Association recommends brewing water at 93 °C.")
    assert "At what temperature does the Specialty Coffee Association recommend brewing water?" in \
        temperature["93 °C"][1]
    assert asked("The Timor Hybrid was found on Timor in the 1920s.")["1920s"][0] == "decade"


def test_a_clause_that_leans_on_another_sentence_borrows_its_subject_or_is_not_asked():
    # "It" at the opening means the previous sentence's subject; "that line" points at a sentence not quoted.
    doc = Document("docs/borer.md", "# Pests\nThe coffee berry borer is a tiny beetle. It is considered the most "
                   "damaging pest of coffee worldwide. That line spread to Martinique in 1720.")
    built = build((doc,), 120, 30, 4)
    questions = [w.question for w in built.items]
    assert "The coffee berry borer is considered what of coffee worldwide?" in questions
    assert not any("Martinique" in w.candidate.sentence for w in built.items)
    assert not any(re.search(r"\b(it|that|this)\b", q.lower()) for q in questions)


def test_semicolons_cut_sentences_and_each_part_stays_a_span_of_its_chunk():
    text = "The foam is called crema; it forms from carbon dioxide and oils."
    assert clauses(text) == ["The foam is called crema", "it forms from carbon dioxide and oils."]
    built = build((Document("docs/crema.md", text),), 120, 30, 4)
    assert built.items and all(w.candidate.sentence in w.candidate.chunk for w in built.items)
    assert any(w.candidate.answer == "carbon dioxide" and w.question.startswith("The foam forms from")
               for w in built.items)


def bm25(docs: tuple[Document, ...]):
    return build_retriever("bm25", None, "", docs, 40, 10, None)


def test_the_round_trip_drops_a_pair_whose_question_does_not_find_its_passage():
    docs = find_task("tiny", FIXTURES.resolve()).knowledge.docs
    index = bm25(docs)
    capital = next(d for d in docs if d.path.endswith("capital.md"))
    sentence = "Quillport was founded in 1642 by salt traders."
    home = Candidate(capital.path, capital.text.split("\n", 1)[1], sentence, "1642", "year")
    good = Written(home, "Quillport was founded in what year by salt traders?", "short")
    # The same true answer, but a question about another document's fact: it retrieves the food chunk.
    stray = Written(home, "What is served with barley stew at the harvest festival in what year?", "short")
    assert round_trip([good, stray], index.search, 1) == [good]


def test_only_pairs_that_pass_every_check_reach_training_and_demonstrations():
    task = find_task("tiny", FIXTURES.resolve())
    task = dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs), update=Knowledge(task.update.docs))
    config = task.config
    generated = make_pairs(task, config, None, "parse", bm25)
    kept = generated.pairs("original")
    assert kept and all(p.origin == GENERATED for p in kept)
    texts = {d.path: d.text for d in task.knowledge.docs}
    for p in kept:  # true by construction: the answer is in its document, and not given away by the question
        assert p.answer in texts[p.doc]
        assert f" {normalize(p.answer)} " not in f" {normalize(p.question)} "
    # A false pair (its answer is in no sentence of its chunk) built beside them is dropped by the filters,
    # so it can never be among the pairs a demonstration is drawn from.
    chunk = texts["docs/capital.md"]
    false = Written(Candidate("docs/capital.md", chunk, "Quillport was founded in 1642 by salt traders.",
                              "Bourbon", "name"), "Quillport was founded by what?", "short")
    items, _ = apply_filters([false], task.test, bm25(task.knowledge.docs).search, 1)
    assert items == []
    trained = with_pairs(task, config, generated)
    pool = demo_pool(trained.knowledge.pairs, task.test).pairs
    assert set(pool) <= set(kept) and all(p.answer != "Bourbon" for p in pool)
    # No demonstration carries a test answer (fresh ones included): the pool's own rule, on built pairs too.
    refs = {normalize(a) for q in task.test for a in q.answers}
    assert all(normalize(p.answer) not in refs for p in pool)


def test_taught_generated_follows_a_checked_pair_about_the_same_fact():
    q = Question("t1", "In which year was Quillport founded?", ("1642",), "docs/capital.md", False, "")
    same = QAPair("Quillport was founded in what year by salt traders?", "1642", "docs/capital.md", GENERATED)
    other = QAPair("The lighthouse was rebuilt in what year?", "1642", "docs/harbour.md", GENERATED)
    assert knowledge_labels([q], [same])["t1"] == TAUGHT_GENERATED
    # The same answer string about another fact teaches nothing about this one.
    assert knowledge_labels([q], [other])["t1"] == DOCS_ONLY
    # A built pair the filters dropped never becomes a QAPair, so it cannot label either.
    task = find_task("tiny", FIXTURES.resolve())
    task = dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs), update=Knowledge(task.update.docs))
    part = generate_part("original", task.knowledge.docs, task, task.config, None, bm25(task.knowledge.docs).search)
    assert part.left["round_trip"] <= part.left["written"] and len(part.kept) == part.left["phrasings_per_fact"]


def test_several_phrasings_per_fact_and_the_cap_keeps_the_short_form_first():
    doc = Document("docs/espresso.md", "# Espresso\nA typical double shot uses about 18 grams of coffee.")
    built = build((doc,), 120, 30, 4)
    grams = [w for w in built.items if w.candidate.answer == "18 grams"]
    assert len(grams) >= 3 and len({w.question for w in grams}) == len(grams)
    assert [w.form for w in per_fact(grams, 2)] == ["short", "fronted"]


NAMES = ["Alan Adler", "Maria Costa", "Kenji Sato"]
PLACES = ["Kenya", "Brazil", "Colombia"]
UNITS = ["grams", "metres", "seconds", "bags"]
TERMS = ["raised beds", "wooden crates", "copper kettles"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), place=st.sampled_from(PLACES), n=st.integers(2, 2000),
       unit=st.sampled_from(UNITS), term=st.sampled_from(TERMS), year=st.integers(1700, 2025))
def test_every_kept_pair_answers_with_a_span_of_its_sentence_absent_from_its_question(name, place, n, unit, term,
                                                                                     year):
    text = (f"# Notes\nIn {year} {name} moved {n} {unit} of beans to {place}. "
            f"Farmers in {place} dry the beans on {term}.")
    docs = (Document("docs/notes.md", text),)
    items, _ = apply_filters(build(docs, 120, 30, 4).items, [], bm25(docs).search, 1)
    assert items
    for w in items:
        assert w.candidate.answer in w.candidate.sentence and w.candidate.sentence in text
        assert f" {normalize(w.candidate.answer)} " not in f" {normalize(w.question)} "
        assert w.question.endswith("?")


def test_validate_says_what_will_be_built(tasks_dir, capsys):
    from harness.cli import main

    (tasks_dir / "tiny" / "train.jsonl").unlink()
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0
    said = capsys.readouterr().out
    assert "training pairs: generated; built from each sentence's parse" in said
    assert re.search(r"\d+ questions about \d+ facts in \d+ of \d+ sentences of docs/", said)


def test_a_task_config_can_still_ask_the_model_to_write():
    assert TaskConfig(name="x").pair_generation.writer == "parse"
    assert TaskConfig(name="x", pair_generation={"writer": "model"}).pair_generation.writer == "model"


def test_no_pairs_are_made_when_no_selected_arm_reads_them(tasks_dir, tmp_path, capsys):
    import json

    from harness.cli import main

    tiny = tasks_dir / "tiny"
    (tiny / "train.jsonl").unlink()
    (tiny / "updates" / "train.jsonl").unlink()
    # rag's format fixed (no demonstrations, one passage): it chooses nothing on held-out pairs.
    (tiny / "task.yaml").write_text((tiny / "task.yaml").read_text() + "demonstrations:\n  candidates: [[0, 0, 1]]\n")
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--pipelines", "base,rag"]) == 0
    assert "arms that read training pairs: none of those selected" in capsys.readouterr().out
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--pipelines", "prompt,finetune"]) == 0
    assert "arms that read training pairs: prompt shows 2 as demonstrations; finetune trains on them" in \
        capsys.readouterr().out
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--pipelines", "base,rag", "--no-freshness",
                 "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "pair writing" not in out and "none are made from the documents" in out
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    assert not (run / "pairs.generated.jsonl").exists()
    assert "parts" not in json.loads((run / "run.json").read_text())["pair_generation"]


def test_demonstrations_alone_make_a_pool_and_a_trained_arm_later_makes_the_rest(tasks_dir, tmp_path, capsys):
    """prompt alone reads 2 pairs as demonstrations: a pool of 4 x 2 facts spread over the documents is built,
    not every fact, and the update's documents none; adding finetune with the same cache builds every pair (the
    update's too), the pool's among them word for word."""
    import json

    from harness.cli import main

    tiny = tasks_dir / "tiny"
    (tiny / "train.jsonl").unlink()
    (tiny / "updates" / "train.jsonl").unlink()

    def run(pipelines: str, results: str) -> tuple[dict, list[dict]]:
        assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--pipelines", pipelines,
                     "--results-dir", str(tmp_path / results), "--cache-dir", str(tmp_path / "c")]) == 0
        (folder,) = (tmp_path / results / "tiny").iterdir()
        lines = (folder / "pairs.generated.jsonl").read_text().splitlines()
        info = json.loads((folder / "run.json").read_text())["pair_generation"]
        assert ("only a pool of them was made" in (folder / "report.md").read_text()) == (pipelines == "prompt")
        return info, [json.loads(x) for x in lines]

    info, pool = run("prompt", "r1")
    said = [line for line in capsys.readouterr().out.splitlines() if "only demonstrations read training pairs" in line]
    assert len(said) == 1 and "from 8 of 11 facts, spread over 3 of 3 documents" in said[0]
    assert "the rest are made only when an arm that trains on pairs runs" in said[0]
    (part,) = info["parts"].values()  # the original documents' only: the update's pairs train, never show
    assert part["pool"] == {"needed": 2, "margin": 4, "unit": "facts", "sampled": 8, "of": 11, "documents": 3,
                            "of_documents": 3, "seed": 0, "pairs": len(pool),
                            "free_of_test_answers": part["pool"]["free_of_test_answers"]}
    assert part["pool"]["free_of_test_answers"] >= 2 and part["counts"]["facts_kept"] <= 8
    assert {p["part"] for p in pool} == {"original"}

    info, every = run("prompt,finetune", "r2")
    assert "pool" not in info["parts"]["original"] and "update" in info["parts"]
    original = [p for p in every if p["part"] == "original"]
    assert len(original) == info["parts"]["original"]["kept"] > len(pool)
    assert {p["question"] for p in pool} <= {p["question"] for p in original}
    assert all(p in original for p in pool)  # the same pairs, every field
