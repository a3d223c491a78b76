"""Training pairs from the documents: candidates, each filter, the embedded generator as writer (pair_generation.writer:
model), its cache, labels; the default writer, the parse, is tests/test_true_pairs.py's."""
import dataclasses
from pathlib import Path

import pytest

from harness.pairs.candidates import Candidate, candidates, spans
from harness.retrieval.chunking import Passage
from harness.config import TaskConfig
from harness.pairs.filters import (Written, answer_hidden, answer_type, apply_filters, ask_kind, not_test, round_trip,
                                 unique, verbatim, well_formed)
from harness.pairs.writer import GENERIC_DEMOS, QuestionWriter, demos_for
from harness.task.registry import find_task
from harness.task.types import Knowledge, QAPair
from harness.task.types import TestQuestion as Question
from harness.task.taught import DOCS_ONLY, TAUGHT, TAUGHT_GENERATED, knowledge_labels
from harness.pairs.source import make_pairs, pair_source, with_pairs

FIXTURES = Path(__file__).parent / "fixtures"
CHUNK = "# Velmora The capital of the island of Velmora is Quillport. Quillport was founded in 1642 by salt traders."
SENTENCE = "Quillport was founded in 1642 by salt traders."


def written(question: str, answer: str = "1642", chunk: str = CHUNK, sentence: str = SENTENCE) -> Written:
    return Written(Candidate("docs/capital.md", chunk, sentence, answer), question)


def test_candidates_are_numbers_and_names_that_do_not_open_the_sentence():
    assert spans("Quillport was founded in 1642 by salt traders.", "numbers-names") == ["1642"]
    assert spans("The moka pot, designed by Alfonso Bialetti in 1933, brews at 93 °C.", "numbers-names") == \
        ["Alfonso Bialetti", "1933", "93 °C"]
    assert "blue heron" in spans("The national animal of Velmora is the blue heron.", "numbers-names-terms")
    assert "blue heron" not in spans("The national animal of Velmora is the blue heron.", "numbers-names")
    task = find_task("tiny", FIXTURES.resolve())
    found, counts = candidates(task.knowledge.docs, 40, 10, "numbers-names", 4)
    assert counts["chunks"] == 3 and len(found) == counts["spans_found"] > 0
    assert all(c.answer in c.sentence and c.sentence in c.chunk for c in found)
    assert not any(c.sentence.startswith("#") for c in found)  # headings state a topic, not a fact


def test_names_joined_by_and_or_of_are_cut_apart_unless_of_is_inside_one_name():
    assert spans("The first machine was patented by Angelo Moriondo of Turin in 1884.", "numbers-names") == \
        ["Angelo Moriondo", "Turin", "1884"]
    assert spans("Growers such as Typica and Bourbon farms sell to the Big Island of Hawaii.", "numbers-names") == \
        ["Typica", "Bourbon", "Big Island of Hawaii"]
    assert spans("It was founded by the Specialty Coffee Association of America in 1982.", "numbers-names") == \
        ["Specialty Coffee Association of America", "1982"]
    assert spans("Today the Federation of Coffee Growers of Colombia markets it.", "numbers-names") == \
        ["Federation of Coffee Growers of Colombia"]


def test_answer_type_drops_a_question_that_asks_for_another_kind_of_thing():
    year = written("In what year was Quillport founded?")
    name = written("Who founded the city of Quillport?", answer="Salt Traders")
    # A name asked, a number given, and the other way round.
    named_number = written("What is the name of the town founded by salt traders?")
    counted_name = written("How many traders founded Quillport?", answer="Salt Traders")
    when_name = written("When was Quillport founded by the traders?", answer="Salt Traders")
    which_number = written("Which species of salt trader founded Quillport?", answer="44 chromosomes")
    open_ask = written("What did the salt traders do on the island?", answer="Quillport")
    assert answer_type([year, name, named_number, counted_name, when_name, which_number, open_ask]) == \
        [year, name, open_ask]
    assert [ask_kind(q) for q in ("Which year was Quillport founded?", "What is the temperature of the first crack?",
                                  "What percentage of coffee is arabica?", "Where is Yirgacheffe?",
                                  "What does a roaster do?")] == ["number", "number", "number", "name", None]
    assert answer_type([written("What is the price of a sack in Quillport?", answer="$4")]) != []


def test_each_filter_drops_what_it_should():
    ok = written("In what year was Quillport founded?")
    assert verbatim([ok, written("When?", answer="1643")]) == [ok]
    assert well_formed([ok, written("In what year was Quillport founded"),  # no question mark
                        written("Founded when?"),  # too short
                        written("What is the ratio of 1:2 in a ratio of 1:2 in a ratio?"),  # loops
                        written("Who discovered penicillin?")], demo_questions=["Who discovered penicillin?"]) == [ok]
    assert answer_hidden([ok, written("Was Quillport founded in 1642?")]) == [ok]
    assert unique([ok, written("In what year was Quillport founded ?")]) == [ok]
    test = [Question("t1", "In which year was Quillport founded?", ("1642",))]
    assert not_test([ok, written("In which year was Quillport founded?"), written("Which year was Quillport founded "
                                                                                  "in?")], test) == [ok]
    other = Passage("docs/food.md", "The traditional dish of Velmora is barley stew.")
    home = Passage("docs/capital.md", CHUNK)
    assert round_trip([ok], lambda qs, k: [[home] for _ in qs], 1) == [ok]
    assert round_trip([ok], lambda qs, k: [[other] for _ in qs], 1) == []


def test_filters_are_counted_in_order():
    items = [written("In what year was Quillport founded?"), written("Was Quillport founded in 1642?"),
             written("In what year was Quillport founded?")]
    home = Passage("docs/capital.md", CHUNK)
    kept, left = apply_filters(items, [], lambda qs, k: [[home] for _ in qs], 1)
    assert len(kept) == 1
    assert left == {"written": 3, "verbatim": 3, "well_formed": 3, "answer_hidden": 2, "answer_type": 2, "unique": 1,
                    "not_test": 1, "round_trip": 1}


def test_knowledge_labels_keep_generated_cover_apart():
    test = [Question("w", "What is the capital?", ("Quillport",)),
            Question("g", "What is served with barley stew?", ("smoked eel",)),
            Question("d", "Where do herons nest?", ("Ashen River",)),
            Question("f", "Who is mayor?", ("Mara Tessin",), fresh=True)]
    pairs = [QAPair("Which city is the capital?", "Quillport"),
             QAPair("What comes with the stew?", "smoked eel", "docs/food.md", "generated"),
             QAPair("Name the capital.", "Quillport", "docs/capital.md", "generated")]
    assert knowledge_labels(test, pairs) == {"w": TAUGHT, "g": TAUGHT_GENERATED, "d": DOCS_ONLY, "f": "fresh"}


def test_training_pairs_default_follows_train_jsonl():
    task = find_task("tiny", FIXTURES.resolve())
    assert pair_source(task, task.config) == "written"
    bare = dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs))
    assert pair_source(bare, task.config) == "generated"
    assert pair_source(task, task.config.model_copy(update={"training_pairs": "both"})) == "both"
    assert TaskConfig(name="x").training_pairs is None


def test_demonstrations_come_from_the_task_when_it_has_enough():
    task = find_task("tiny", FIXTURES.resolve())
    demos, where = demos_for(task.knowledge.pairs, task.knowledge.docs, 2, 0)
    assert where == "task" and all(d.answer in d.sentence for d in demos)
    demos, where = demos_for([], task.knowledge.docs, 4, 0)
    assert where == "generic" and [d.question for d in demos] == [q for _, _, q in GENERIC_DEMOS]


@pytest.fixture(scope="module")
def smollm():
    from harness.inference.models import load_generator, resolve_model

    source = resolve_model("smollm2-135m")
    model, tok = load_generator(source)
    return source, model, tok


@pytest.fixture(scope="module")
def first_writing(smollm, tmp_path_factory):
    """tiny without its written pairs, and the pairs the embedded generator first wrote for it (the original
    documents and the update's) into a fresh cache: (task, retriever, writer, generated, cache folder)."""
    from harness.retrieval.registry import build_retriever
    from harness.inference.models import load_embedder

    source, model, tok = smollm
    cache = tmp_path_factory.mktemp("pairgen-cache")
    task = find_task("tiny", FIXTURES.resolve())
    task = dataclasses.replace(task, knowledge=Knowledge(task.knowledge.docs), update=Knowledge(task.update.docs))
    embedder = load_embedder("all-minilm-l6-v2")
    r = task.config.retrieval

    def retriever(docs):
        return build_retriever(r.method, embedder, "all-minilm-l6-v2", docs, r.chunk_words, r.chunk_overlap, cache)

    first = QuestionWriter(model, tok, source.fingerprint(), [], 0, cache)
    return task, retriever, first, make_pairs(task, task.config, first, "smollm2-135m", retriever), cache


def test_embedded_generator_writes_kept_pairs_and_a_second_time_reads_the_cache(smollm, first_writing):
    source, model, tok = smollm
    task, retriever, first, gen, cache = first_writing
    assert first.calls == 2 and not any(p.cached for p in gen.parts)  # the original documents and the update's
    # The generator's tokens are counted (the cost projection prices them): every prompt holds a candidate's
    # sentence, and every question is at least a few tokens.
    part = gen.summary()["parts"]["original"]
    assert part["prompt_tokens"] > 20 * part["counts"]["candidates"] and part["new_tokens"] >= 3 * part["counts"]["candidates"]
    kept = gen.pairs("original")
    assert len(kept) >= 1 and all(p.origin == "generated" for p in kept)
    # One cache entry a candidate, under one folder for the prompt every candidate shares.
    n = sum(p["counts"]["candidates"] for p in gen.summary()["parts"].values())
    assert len(list((cache / "pairs").glob("*.json"))) == 0 and len(list((cache / "pairs").glob("*/*.json"))) == n
    # Never a test question: no kept question is a near-duplicate of one (the task loader's rule).
    from harness.task.leakage import NEAR_DUPLICATE
    from harness.text import token_set_similarity
    assert all(token_set_similarity(p.question, q.question) < NEAR_DUPLICATE for p in kept for q in task.test)

    second = QuestionWriter(model, tok, source.fingerprint(), [], 0, cache)
    again = make_pairs(task, task.config, second, "smollm2-135m", retriever)
    assert second.calls == 0 and second.written == 0 and all(p.cached for p in again.parts)
    # A cached writing keeps the first one's counts and time: only `cached` and how many were reused differ.
    assert all(p["reused"] == p["counts"]["candidates"] for p in again.summary()["parts"].values())
    assert all(p["reused"] == 0 for p in gen.summary()["parts"].values())
    assert ({k: {**v, "cached": None, "reused": None} for k, v in again.summary()["parts"].items()}
            == {k: {**v, "cached": None, "reused": None} for k, v in gen.summary()["parts"].items()})
    assert again.pairs("original") == kept and again.pairs("update") == gen.pairs("update")

    trained = with_pairs(task, task.config, gen)
    assert trained.knowledge.pairs == kept and trained.update.pairs == gen.pairs("update")
    assert trained.sizes["generated"] == len(kept)


def test_a_task_without_train_jsonl_validates_and_runs_every_arm(tiny_run, tasks_dir, tmp_path, capsys):
    """Documents and test questions only: pairs are built from the documents' parse (for the update's documents
    too), every arm runs, and the run says which pairs each trained arm learnt from."""
    import json
    import shutil

    import pandas as pd

    from harness.arms.catalog import DEFAULT_ARMS
    from harness.cli import main

    # A copy of the session run's cache: cpt learns from the documents alone and base shows no pairs, so their
    # adapters and answers are the session's; the pair-trained arms must still train on the built pairs. A
    # copy, because this run's adapters in the shared cache would change what tests/test_run.py counts there.
    shutil.copytree(tiny_run.parents[2] / "cache", tmp_path / "c")
    (tasks_dir / "tiny" / "train.jsonl").unlink()
    (tasks_dir / "tiny" / "updates" / "train.jsonl").unlink()
    assert main(["validate", "--task", "tiny", "--tasks-dir", str(tasks_dir)]) == 0
    said = capsys.readouterr().out
    assert "training pairs: generated; built from each sentence's parse" in said
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks_dir), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c")]) == 0
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    acc = pd.read_csv(run / "accuracy.csv")
    assert list(acc[acc.knowledge == "all stable"].pipeline) == list(DEFAULT_ARMS)
    pairs = [json.loads(line) for line in (run / "pairs.generated.jsonl").read_text().splitlines()]
    assert pairs and {"question", "answer", "doc", "kind", "form", "chunk", "covers_test"} <= set(pairs[0])
    assert all(p["answer"] in p["sentence"] for p in pairs)
    costs = json.loads((run / "costs.json").read_text())
    assert costs["costs"]["cpt"]["adapter_cached"]
    for arm in ("finetune", "raft"):
        assert not costs["costs"][arm]["adapter_cached"]  # the written pairs' adapters are no answer here
        assert costs["costs"][arm]["training_pairs"] == {"generated": sum(p["part"] == "original" for p in pairs)}
        if any(p["part"] == "update" for p in pairs):  # the update's documents brought generated pairs
            assert costs["timings"][arm]["rebuild_note"] != "not retrained: no new training pairs"
    info = json.loads((run / "run.json").read_text())["pair_generation"]
    assert info["training_pairs"] == "generated" and info["writer"] == "parse"
    assert info["parts"]["original"]["counts"]["facts_kept"] >= 1
    report = (run / "report.md").read_text()
    assert "## Training pairs made from the documents" in report and "true of its sentence by construction" in report
    assert "built from the documents' own sentences" in report  # how far to trust: said in words
    assert "generated-pairs" in (run / "report.html").read_text()


def test_the_pool_size_follows_the_arms_that_show_demonstrations():
    """How many pairs free of test answers a run reads when only demonstrations read them: prompt's few_shot,
    rag's largest candidate plus the held-out questions its choice answers; None once an arm trains on pairs."""
    from harness.arms.catalog import demonstration_pool

    config = TaskConfig(name="x")
    assert demonstration_pool([config], ["base", "prompt"]) == config.prompt.few_shot == 3
    assert demonstration_pool([config], ["rag"]) == 3 + config.demonstrations.eval_questions
    assert demonstration_pool([config], ["prompt", "finetune"]) is None
    fixed = TaskConfig(name="x", demonstrations={"candidates": [[2, 1, 1]]})
    assert demonstration_pool([fixed], ["rag"]) == 2  # a fixed format chooses nothing
    points = [TaskConfig(name="x", prompt={"few_shot": k}) for k in (1, 5)]
    assert demonstration_pool(points, ["prompt"]) == 5  # the most any --sweep point shows


def test_a_pool_written_first_is_reused_and_a_full_writing_asks_the_model_only_for_the_rest(smollm, first_writing,
                                                                                            tmp_path):
    """A run of demonstration arms only writes questions for a pool of 4 x 1 candidates (spread over the three
    documents, none of the update's); a later run that trains writes the rest: the writer's model is asked for
    the missing candidates only, and the pool's questions come back from the cache as they were written."""
    source, model, tok = smollm
    task, retriever = first_writing[:2]
    first = QuestionWriter(model, tok, source.fingerprint(), [], 0, tmp_path)
    pool = make_pairs(task, task.config, first, "smollm2-135m", retriever, pool=1)
    (part,) = pool.parts
    info = pool.summary()["parts"]["original"]
    assert part.name == "original" and first.calls == 1 and first.written == 4
    assert info["reused"] == 0 and info["left_after"]["written"] == 4
    assert {k: info["pool"][k] for k in ("needed", "sampled", "of", "documents", "of_documents")} == \
        {"needed": 1, "sampled": 4, "of": 6, "documents": 3, "of_documents": 3}
    assert info["pool"]["free_of_test_answers"] >= 1 and info["pool"]["pairs"] == len(part.kept)

    second = QuestionWriter(model, tok, source.fingerprint(), [], 0, tmp_path)
    whole = make_pairs(task, task.config, second, "smollm2-135m", retriever)
    parts = whole.summary()["parts"]
    n = parts["original"]["counts"]["candidates"] + parts["update"]["counts"]["candidates"]
    assert second.written == n - 4 and parts["original"]["reused"] == 4 and parts["update"]["reused"] == 0
    assert not parts["original"]["cached"] and "pool" not in parts["original"]
    asked = {(w.candidate.doc, w.candidate.sentence, w.candidate.answer): w.question
             for p in whole.parts for w in p.kept}
    assert all(asked.get((w.candidate.doc, w.candidate.sentence, w.candidate.answer)) == w.question
               for w in part.kept)  # each pool pair kept again, its question the very one written first
