"""Arms are declared, not coded; each is trained in the format it is asked in; retrieval finds exact codes.

Uses the embedded SmolLM2 tokenizer and MiniLM embedder for real, and runs on top of the session's tiny run
(its adapter cache), so the extra runs here train little or nothing new."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.bm25 import BM25Index
from harness.cli import main
from harness.config import TaskConfig
from harness.hybrid import build_retriever
from harness.models import DEFAULT_MODEL, load_embedder, resolve_model
from harness.pipelines import Shared, arm_qa_examples, make_pipeline
from harness.prompts import Demonstration
from harness.retrieval import Passage, VectorIndex
from harness.task import Document
from harness.training_data import IGNORE, RaftItem, cpt_examples, qa_examples, raft_examples

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tokenizer():
    from harness.models import load_generator

    return load_generator(resolve_model(DEFAULT_MODEL))[1]


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
    from harness.pipelines import Pipeline

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


def test_labelled_only_logits_give_the_models_own_loss():
    """Training computes logits only where labels are; the loss must equal the model's full-logits loss."""
    import torch

    from harness.finetune import labelled_loss
    from harness.models import load_generator

    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
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
