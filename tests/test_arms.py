"""Arms are declared, not coded; each is trained in the format it is asked in; retrieval finds exact codes.

Uses the embedded SmolLM2 tokenizer and MiniLM embedder for real, and runs on top of the session's tiny run
(its adapter cache), so the extra runs here train little or nothing new."""
import copy
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from harness.arms.batches import CheapestBatches, flattening_is_exact
from harness.arms.catalog import DEFAULT_ARMS, describe, format_candidates
from harness.retrieval.bm25 import BM25Index
from harness.cli import main
from harness.config import TaskConfig
from harness.arms.finetune import batch_loss, labelled_loss
from harness.retrieval.registry import build_retriever
from harness.inference.models import DEFAULT_MODEL, load_embedder, resolve_model
from harness.arms.pipeline import Shared, arm_qa_examples, make_pipeline
from harness.prompts import Demonstration, chat_template
from harness.retrieval.dense import Passage, VectorIndex
from harness.task.types import Document
from harness.arms.training_data import IGNORE, RaftItem, cpt_examples, qa_examples, raft_examples

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def generator():
    from harness.inference.models import load_generator

    return load_generator(resolve_model(DEFAULT_MODEL))


@pytest.fixture(scope="module")
def tokenizer(generator):
    return generator[1]


def _prompt_ids(tok, messages) -> list[int]:
    return tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
               add_special_tokens=False).input_ids


def test_trained_arms_are_asked_in_the_format_they_were_trained_on(tokenizer):
    config = TaskConfig(name="t")
    shared = Shared(None, tokenizer, None, config, DEFAULT_MODEL, None)
    passages = [Passage("docs/a.md", "Quillport is the capital."), Passage("docs/b.md", "Herons nest in spring.")]
    raft = make_pipeline("raft", shared)
    (trained,) = raft_examples(tokenizer, [RaftItem("Capital?", tuple(p.text for p in passages), "Quillport", True)],
                               config.prompt.rag_instruction)
    asked = _prompt_ids(tokenizer, raft.prompt("Capital?", passages))
    # The training example is exactly the answering prompt followed by the answer, and only the answer is learnt.
    assert trained["input_ids"][:len(asked)] == asked and len(trained["input_ids"]) > len(asked)
    assert all(x == IGNORE for x in trained["labels"][:len(asked)])
    assert all(x != IGNORE for x in trained["labels"][len(asked):])
    finetune = make_pipeline("finetune", shared)
    (qa,) = arm_qa_examples(finetune.arm, config, tokenizer, [type("P", (), {"question": "Capital?", "answer": "Quillport"})()])
    asked = tokenizer(tokenizer.apply_chat_template(finetune.prompt("Capital?", []), tokenize=False,
                                                    add_generation_prompt=True, chat_template=finetune.template),
                      add_special_tokens=False).input_ids
    assert qa["input_ids"][:len(asked)] == asked and len(qa["input_ids"]) > len(asked)


def test_a_plain_format_arm_is_trained_on_its_short_prompt(tokenizer):
    """`format: plain` with no instruction: the training example is "Question: ...\nAnswer: ..." and nothing else,
    the prompt the arm is asked in, at well under half the tokens of the chat format."""
    from harness.config import ArmConfig
    from harness.arms.pipeline import Pipeline

    config = TaskConfig(name="t")
    shared = Shared(None, tokenizer, None, config, DEFAULT_MODEL, None)
    pair = type("P", (), {"question": "Which river do herons nest by?", "answer": "the Ashen River"})()
    plain = Pipeline("short", ArmConfig(weights="qa-lora", format="plain", instruction=False), shared)
    chat = Pipeline("chat", ArmConfig(weights="qa-lora"), shared)
    (short,) = arm_qa_examples(plain.arm, config, tokenizer, [pair])
    (long,) = arm_qa_examples(chat.arm, config, tokenizer, [pair])
    asked = tokenizer(tokenizer.apply_chat_template(plain.prompt(pair.question, []), tokenize=False,
                                                    add_generation_prompt=True, chat_template=plain.template),
                      add_special_tokens=False).input_ids
    assert tokenizer.decode(short["input_ids"]) == "Question: Which river do herons nest by?\nAnswer: the Ashen River\n\n"
    assert short["input_ids"][:len(asked)] == asked and all(x == IGNORE for x in short["labels"][:len(asked)])
    assert tokenizer.decode([x for x in short["labels"] if x != IGNORE]).strip() == "the Ashen River"
    assert 2 * len(short["input_ids"]) < len(long["input_ids"])


def test_demonstrations_use_the_query_format(tokenizer):
    shared = Shared(None, tokenizer, None, TaskConfig(name="t"), DEFAULT_MODEL, None)
    rag = make_pipeline("rag", shared)
    rag.demos = [Demonstration("Which river?", "Ashen River", ("Herons nest along the Ashen River.",))]
    turns = rag.prompt("Capital?", [Passage("docs/a.md", "Quillport is the capital.")])
    demo, query = turns[1]["content"], turns[3]["content"]
    assert turns[2] == {"role": "assistant", "content": "Ashen River"} and turns[-1]["content"] == query
    assert demo.startswith("Context:\n[1] ") and query.startswith("Context:\n[1] ")
    assert demo.endswith("Question: Which river?") and query.endswith("Question: Capital?")


def test_cpt_labels_cover_every_token(tokenizer):
    docs = [Document("docs/a.md", "Quillport was founded in 1642 by salt traders. " * 30),
            Document("docs/b.md", "The national animal is the blue heron. " * 30)]
    blocks = cpt_examples(tokenizer, docs, block_tokens=64)
    assert len(blocks) >= 8 and all(b["labels"] == b["input_ids"] for b in blocks)
    assert sum(len(b["input_ids"]) for b in blocks) == sum(
        len(tokenizer(d.text, add_special_tokens=False).input_ids) + 1 for d in docs)  # nothing dropped


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("all-minilm-l6-v2")


PRODUCT_DOCS = [
    Document("docs/halo-pet.md", "The Halo pet filter traps pet hair and dander and neutralises litter-box odours. "
                                 "Order code KF-236P."),
    Document("docs/summit-pet.md", "Summit filters: order code KF-368P. Fits the large-room model."),
    Document("docs/pico.md", "The Pico standard filter, order code KF-120S, suits bedrooms.")]


def _rank(hits: list[Passage], doc: str) -> int:
    return next(i for i, p in enumerate(hits, 1) if p.doc == doc)


def test_bm25_and_hybrid_find_an_exact_product_code_dense_misses(embedder):
    query, gold = "What is KF-368P?", "docs/summit-pet.md"
    dense = VectorIndex(embedder, 60, 10)
    dense.add(PRODUCT_DOCS, progress=False)
    lexical = BM25Index(60, 10)
    lexical.add(PRODUCT_DOCS)
    hybrid = build_retriever("hybrid", embedder, "test", tuple(PRODUCT_DOCS), 60, 10, None)
    dense_rank = _rank(dense.search([query], 3)[0], gold)
    assert dense_rank > 1  # a code is no meaning to a 384-d sentence embedding: it ranks another doc first
    assert _rank(lexical.search([query], 3)[0], gold) == 1
    # Fusion keeps the exact match in reach of a top-2 prompt, never below where dense alone put it.
    assert _rank(hybrid.search([query], 3)[0], gold) <= min(dense_rank, 2)


def test_an_arm_declared_in_task_yaml_runs(tiny_run, tmp_path):
    tasks = tmp_path / "tasks"
    shutil.copytree(FIXTURES / "tiny", tasks / "tiny")
    cfg = yaml.safe_load((tasks / "tiny" / "task.yaml").read_text())
    cfg["arms"] = {"cpt+rag": {"weights": "cpt-lora", "context": "retrieved"}}
    cfg["update"] = {"strategy": "retrain"}  # the other update strategy: from scratch on docs + update docs
    (tasks / "tiny" / "task.yaml").write_text(yaml.safe_dump(cfg))
    cache = tiny_run.parents[2] / "cache"  # cpt's adapter from the session's run: nothing to train again
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(cache), "--pipelines", "cpt+rag"]) == 0
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    costs = json.loads((run / "costs.json").read_text())["costs"]["cpt+rag"]
    assert costs["adapter_cached"] and costs["context"] == "retrieved" and costs["train_kind"] == "cpt"
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert {r["pipeline"] for r in rows} == {"cpt+rag"} and all(r["passages"] for r in rows)
    fresh = pd.read_csv(run / "freshness.csv").set_index("pipeline")
    assert fresh.loc["cpt+rag", "rebuild"] == "retrained" and fresh.loc["cpt+rag", "retrain_s"] > 0


def test_updates_continue_the_adapter_on_new_material_plus_replay(tiny_run):
    """The default update strategy trains the existing adapter on, not a new one from scratch."""
    fresh = pd.read_csv(tiny_run / "freshness.csv").set_index("pipeline")
    # tiny's update brings 2 training pairs; 2 old pairs are replayed beside them (update.replay: 1).
    assert fresh.loc["finetune", "rebuild"] == "continued: 2 new + 2 replayed examples"
    assert fresh.loc["raft", "rebuild"] == "continued: 2 new + 2 replayed examples"
    assert fresh.loc["cpt", "rebuild"].startswith("continued: ")
    for arm in ("finetune", "raft", "cpt"):
        assert 0 < fresh.loc[arm, "retrain_s"] <= fresh.loc[arm, "rebuild_s"]
    assert "continued" in (tiny_run / "report.md").read_text()


def test_pair_trained_arms_are_not_retrained_without_new_pairs(tiny_run, tmp_path):
    tasks = tmp_path / "tasks"
    shutil.copytree(FIXTURES / "tiny", tasks / "tiny")
    (tasks / "tiny" / "updates" / "train.jsonl").unlink()  # new documents arrive, nobody writes Q&A for them
    cache = tiny_run.parents[2] / "cache"
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(cache), "--pipelines", "rag,finetune", "--reanswer"]) == 0
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    assert json.loads((run / "run.json").read_text())["answers_reused"] == 0  # --reanswer: every answer generated
    fresh = pd.read_csv(run / "freshness.csv").set_index("pipeline")
    assert fresh.loc["finetune", "rebuild"] == "not retrained: no new training pairs"
    assert pd.isna(fresh.loc["finetune", "retrain_s"]) and fresh.loc["finetune", "rebuild_s"] < 1
    assert fresh.loc["rag", "rebuild"] == "re-indexed"
    assert "not retrained: no new training pairs" in (run / "report.md").read_text()


def test_a_format_may_choose_the_question_s_passages_except_for_an_arm_trained_with_them():
    cfg = TaskConfig(name="t", retrieval={"top_k": 3}, demonstrations={"candidates": [[0, 0, 1], [2, 1, 2], [2, 1]]})
    assert format_candidates(DEFAULT_ARMS["rag"], cfg) == [(0, 0, 1), (2, 1, 2), (2, 1, 3)]
    # RAFT learnt to read three passages: asking it with fewer would not be the format it was trained in.
    assert format_candidates(DEFAULT_ARMS["raft"], cfg) == [(0, 3, 3)]  # no demonstrations: its one format
    auto_raft = DEFAULT_ARMS["raft"].model_copy(update={"demonstrations": "auto"})
    assert format_candidates(auto_raft, cfg) == [(0, 0, 3), (2, 1, 3)]
    assert format_candidates(DEFAULT_ARMS["prompt"], cfg) == [(cfg.prompt.few_shot, 0, 3)]
    assert "hybrid passages, as many as held-out training pairs choose" in describe(DEFAULT_ARMS["rag"], cfg)
    assert "top-1 hybrid passages" in describe(DEFAULT_ARMS["rag"], cfg, 1)
    assert "top-3 hybrid passages" in describe(DEFAULT_ARMS["raft"], cfg)
    one = cfg.model_copy(update={"demonstrations": cfg.demonstrations.model_copy(update={"candidates": [[2, 1, 1]]})})
    assert "top-1 hybrid passages" in describe(DEFAULT_ARMS["rag"], one)  # one choice: known before it is made


# Four more pairs on facts the test never asks: with tiny's own two, a demonstration pool of 6, enough to hold 4 out.
UNTESTED_PAIRS = [("Who founded Quillport?", "salt traders"), ("When do the herons of the Ashen River nest?", "every spring"),
                  ("At which feast do islanders eat their traditional dish?", "the harvest festival"),
                  ("What kind of land is Velmora?", "an island")]


def test_auto_demonstrations_choose_a_format_on_held_out_training_pairs(tmp_path):
    """rag's `demonstrations: auto` with a pool large enough to choose: every candidate is scored on held-out
    training pairs, exactly one is chosen (the best, ties to the shorter prompt), and the arm then shows it and
    retrieves as many passages for each question as its format says (a third number, else retrieval.top_k: 1)."""
    tasks = tmp_path / "tasks"
    shutil.copytree(FIXTURES / "tiny", tasks / "tiny")
    with open(tasks / "tiny" / "train.jsonl", "a") as f:
        f.writelines(json.dumps({"question": q, "answer": a}) + "\n" for q, a in UNTESTED_PAIRS)
    cfg = yaml.safe_load((tasks / "tiny" / "task.yaml").read_text())
    cfg["demonstrations"] = {"candidates": [[0, 0], [1, 1, 2], [2, 1]], "eval_questions": 4}
    (tasks / "tiny" / "task.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "cache"), "--pipelines", "rag", "--no-freshness"]) == 0
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    rag = json.loads((run / "costs.json").read_text())["costs"]["rag"]
    assert rag["demo_pool"] == 6
    rows = rag["demo_selection"]
    assert [(r["demonstrations"], r["passages_each"], r["question_passages"]) for r in rows] == [
        (0, 0, 1), (1, 1, 2), (2, 1, 1)]
    assert all(r["eval_questions"] == 4 and 0 <= r["contains"] <= 1 for r in rows)
    chosen = [r for r in rows if r["chosen"] is True]
    assert len(chosen) == 1 and sum(r["chosen"] is False for r in rows) == 2
    assert chosen[0] == max(rows, key=lambda r: (r["contains"], -r["prompt_tokens_mean"]))
    assert rag["demonstrations_shown"] == len(rag["demonstrations"]) == chosen[0]["demonstrations"]
    assert rag["demo_passages_each"] == chosen[0]["passages_each"]
    k = chosen[0]["question_passages"]
    assert k == 2  # the model's choice here, so the check below would catch questions asked with top_k's 1
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert rows and all(len(r["passages"]) == k for r in rows) and f"top-{k} " in rag["arm"]
    assert all(len(d["passages"]) == chosen[0]["passages_each"] for d in rag["demonstrations"])
    # Held out and shown alike come from train.jsonl, never from test.jsonl.
    train = {json.loads(x)["question"] for x in (tasks / "tiny" / "train.jsonl").read_text().splitlines()}
    assert {d["question"] for d in rag["demonstrations"]} <= train


def test_labelled_only_logits_give_the_models_own_loss(generator):
    """Training computes logits only where labels are; the loss must equal the model's full-logits loss."""
    model, tok = generator
    rows = qa_examples(tok, [type("P", (), {"question": q, "answer": a})() for q, a in
                             [("Capital of Velmora?", "Quillport"), ("Which bird nests by the Ashen River?", "heron")]],
                       "Answer briefly.")
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([r["input_ids"] + [tok.pad_token_id] * (width - len(r["input_ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in rows])
    mask = (torch.arange(width)[None] < torch.tensor([[len(r["input_ids"])] for r in rows])).long()
    with torch.no_grad():
        total, count, out = labelled_loss(model, ids, mask, labels)
        full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert out.logits.shape[1] < width  # fewer positions than the sequence
    assert (total / count).item() == pytest.approx(full.item(), rel=1e-4)  # float summation order only


PAIRS = [("Capital of Velmora?", "Quillport"), ("Which bird nests by the Ashen River?", "the grey heron"),
         ("What do islanders eat at the harvest feast?", "smoked eel"), ("Animal?", "lynx")]


@pytest.fixture(scope="module")
def plain_rows(generator):
    model, tok = generator
    train_tok = copy.deepcopy(tok)
    train_tok.padding_side = "right"
    pairs = [type("P", (), {"question": q, "answer": a})() for q, a in PAIRS]
    return model, train_tok, qa_examples(tok, pairs, None, chat_template(tok, "plain"))


def _loss(model, batch: dict) -> float:
    with torch.no_grad():
        total, count, _ = batch_loss(model, batch)
    return (total / count).item()


def test_a_flattened_batch_gives_the_padded_loss_on_fewer_tokens(plain_rows):
    """Flattened training batches (harness/arms/batches.py): the padded batch's loss, on fewer tokens."""
    model, tok, rows = plain_rows
    batches = CheapestBatches(tok, model, flatten=True)
    padded, flat = batches.padded(rows), batches.flat(rows, return_tensors="pt")
    assert flat["input_ids"].shape[0] == 1 and flat["input_ids"].numel() < padded["input_ids"].numel()
    assert batches(rows).keys() == flat.keys()  # short pairs: the collator flattens them
    assert _loss(model, flat) == pytest.approx(_loss(model, padded), rel=1e-4)
    # Control: the same row with positions running on, as if one text: examples see each other, the loss moves.
    joined = {**flat, "position_ids": torch.arange(flat["input_ids"].shape[1])[None]}
    assert abs(_loss(model, joined) - _loss(model, padded)) > 1e-2
    assert flattening_is_exact(model, tok, rows, batch_loss)


def test_the_flattening_check_of_long_labelled_rows_holds_little_memory(plain_rows):
    """cpt's blocks label all their tokens. Eight of them in the check lifted the coffee demo to its peak (3,476 MB)
    before cpt's first step; two cost a fraction, and the check still holds."""
    import psutil

    from harness.measure import Measured, release_freed_memory

    model, tok, _ = plain_rows
    gen = torch.Generator().manual_seed(0)
    rows = [{"input_ids": ids, "labels": ids} for ids in torch.randint(100, 40000, (8, 256), generator=gen).tolist()]
    release_freed_memory()
    before = psutil.Process().memory_info().rss / 2**20
    with Measured(interval=0.005) as m:
        assert flattening_is_exact(model, tok, rows, batch_loss)
    assert m.peak_mb - before < 500  # eight rows: 2,121 MB


def test_long_prompts_stay_padded(plain_rows):
    """Attention over one flattened row grows with its length squared: RAFT-sized prompts keep their padding."""
    model, tok, _ = plain_rows
    batches = CheapestBatches(tok, model, flatten=True)
    assert batches.flattens([22, 18, 25, 30, 19, 21, 33, 20])  # coffee's plain pairs
    assert not batches.flattens([480, 530, 505, 560, 470, 520, 500, 515])  # three 120-word passages each
    assert not CheapestBatches(tok, model, flatten=False).flattens([22, 18, 25, 30])  # not proven exact: padded


def test_rafts_continuation_is_capped_at_continue_examples_in_replays_proportion(tmp_path):
    """raft.continue_examples bounds RAFT's continuation, new and replayed together in update.replay's proportion:
    with replay 3 and a cap of 4, tiny's 2 new pairs become 1 new + 3 replayed; finetune keeps every new pair.
    Its own cache: the session's holds exactly the default recipe's adapters (test_run.py counts them)."""
    tasks = tmp_path / "tasks"
    shutil.copytree(FIXTURES / "tiny", tasks / "tiny")
    cfg = yaml.safe_load((tasks / "tiny" / "task.yaml").read_text())
    cfg["raft"]["continue_examples"] = 4
    cfg["update"] = {"replay": 3.0}
    (tasks / "tiny" / "task.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", "--task", "tiny", "--tasks-dir", str(tasks), "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "cache"), "--pipelines", "finetune,raft"]) == 0
    (run,) = (tmp_path / "r" / "tiny").iterdir()
    fresh = pd.read_csv(run / "freshness.csv").set_index("pipeline")
    assert fresh.loc["raft", "rebuild"] == "continued: 1 new + 3 replayed examples"
    assert fresh.loc["finetune", "rebuild"] == "continued: 2 new + 6 replayed examples"
