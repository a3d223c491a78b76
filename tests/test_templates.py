"""Every arm's training and answering text renders right under real chat templates (issue 45).

The templates of Llama-3.1-8B-Instruct, Qwen2.5-7B-Instruct and Mistral-7B-Instruct v0.1 and v0.3
(tests/fixtures/chat_templates, the Jinja text only) are attached to the embedded SmolLM2 tokenizer with each
model's special tokens, and a post-processor that adds BOS where the real tokenizer does. For each arm of the
catalogue, in its own format (chat or plain, with or without its instruction, demonstrations and passages):
rendering doesn't raise, the system text appears once, a training example's prompt is exactly the text the arm
is asked and its labels are exactly the answer and the end of turn, and BOS opens the sequence once where the
model expects one. SmolLM2's own rendering stays byte-identical to the plain `apply_chat_template` it replaced."""
import copy
from pathlib import Path

import pytest
from jinja2.exceptions import TemplateError
from tokenizers.processors import TemplateProcessing

from harness.arms.catalog import DEFAULT_ARMS
from harness.arms.pipeline import Pipeline, Shared, arm_qa_examples
from harness.arms.training_data import IGNORE, RaftItem, cpt_examples, encode_chat, raft_examples
from harness.config import ArmConfig, TaskConfig
from harness.inference.chat import encode, prompt_text
from harness.inference.generate import render
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
from harness.prompts import Demonstration, messages, with_answer
from harness.retrieval.dense import Passage
from harness.task.types import Document, QAPair

TEMPLATES = Path(__file__).parent / "fixtures" / "chat_templates"


def family(file, bos, eos, end, specials=()):
    return {"file": file, "bos": bos, "eos": eos, "end": end, "specials": list(specials)}


# What each real tokenizer has: its BOS (added when encoding, None for Qwen), its end-of-turn token, and the
# special tokens its template writes. `end` is what closes an answer turn.
FAMILIES = {
    "llama-3.1": family("llama-3.1-8b-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>",
                        ["<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|python_tag|>"]),
    "qwen2.5": family("qwen2.5-7b-instruct.jinja", None, "<|im_end|>", "<|im_end|>"),
    "mistral-v0.1": family("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>", "</s>"),
    "mistral-v0.3": family("mistral-7b-instruct-v0.3.jinja", "<s>", "</s>", "</s>",
                           ["[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                            "[TOOL_RESULTS]", "[/TOOL_RESULTS]"]),
}

CONFIG = TaskConfig(name="t")
SYSTEM, RAG = CONFIG.prompt.system, CONFIG.prompt.rag_instruction
DEMOS = [Demonstration("Which river do herons nest by?", "the Ashen River"),
         Demonstration("Who founded Quillport?", "Mara Tell")]
PASSAGES = [Passage("docs/a.md", "Quillport is the capital of Vell."), Passage("docs/b.md", "Herons nest in spring.")]
PAIR = QAPair("What is the capital of Vell?", "Quillport", "docs/a.md")
DOCS = (Document("docs/a.md", "Quillport is the capital of Vell. " * 20),
        Document("docs/b.md", "Herons nest by the Ashen River in spring. " * 20))
# Each catalogue arm, and the variants a task.yaml can declare: a plain-format arm with its instruction, and a
# chat-format fine-tune.
ARMS = {**DEFAULT_ARMS, "plain+instruction": ArmConfig(weights="qa-lora", format="plain"),
        "chat-finetune": ArmConfig(weights="qa-lora")}


@pytest.fixture(scope="module")
def smollm():
    return load_generator(resolve_model(DEFAULT_MODEL))[1]


@pytest.fixture(scope="module", params=list(FAMILIES))
def model(request, smollm):
    """(family name, a tokenizer carrying that model's real template and special tokens)."""
    spec = FAMILIES[request.param]
    tok = copy.deepcopy(smollm)
    tok.add_special_tokens({"eos_token": spec["eos"], "additional_special_tokens": spec["specials"]})
    if spec["bos"] is None:
        tok.bos_token = None
    else:
        tok.add_special_tokens({"bos_token": spec["bos"]})
        bos = spec["bos"]
        tok.backend_tokenizer.post_processor = TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.bos_token_id)])
    tok.chat_template = (TEMPLATES / spec["file"]).read_text()
    return request.param, tok


def pipeline(name: str, tok) -> Pipeline:
    pipe = Pipeline(name, ARMS[name], Shared(None, tok, None, CONFIG, DEFAULT_MODEL, None))
    if pipe.arm.demonstrations:  # the demonstrations the arm shows, with passages where it reads context
        pipe.demos = [Demonstration(d.question, d.answer, (PASSAGES[1].text,) if pipe.retrieves else ())
                      for d in DEMOS]
    return pipe


def training_rows(pipe: Pipeline, tok) -> list[tuple[list[dict], str, dict]]:
    """(the chat the arm is asked, the answer, the training row) for an arm trained on pairs."""
    if pipe.arm.weights == "qa-lora":
        (row,) = arm_qa_examples(pipe.arm, CONFIG, tok, [PAIR])
        return [(pipe.prompt(PAIR.question, []), PAIR.answer, row)]
    if pipe.arm.weights == "raft-lora":
        (row,) = raft_examples(tok, [RaftItem(PAIR.question, tuple(p.text for p in PASSAGES), PAIR.answer, True)],
                               pipe.instruction, pipe.template)
        return [(pipe.prompt(PAIR.question, PASSAGES), PAIR.answer, row)]
    return []


def assert_bos(name: str, tok, ids: list[int]) -> None:
    bos = FAMILIES[name]["bos"]
    if bos is None:
        assert tok.convert_tokens_to_ids("<|begin_of_text|>") not in ids and encode(tok, "<s>")[0] not in ids
    else:
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1


def assert_system_once(pipe: Pipeline, text: str) -> None:
    if pipe.instruction:
        assert text.count(pipe.instruction) == 1, text


@pytest.mark.parametrize("arm", list(ARMS))
def test_every_arm_answers_and_trains_in_the_same_text_under_real_templates(model, arm):
    name, tok = model
    pipe = pipeline(arm, tok)
    asked = render(tok, pipe.prompt(PAIR.question, PASSAGES), pipe.template)
    assert_system_once(pipe, asked)
    assert_bos(name, tok, encode(tok, asked))
    for prompt, answer, row in training_rows(pipe, tok):
        labelled = [x for x in row["labels"] if x != IGNORE]
        n_prompt = len(row["labels"]) - len(labelled)
        # The prompt part is exactly what the arm is asked; only the answer and the end of turn carry a loss.
        assert row["input_ids"][:n_prompt] == encode(tok, render(tok, prompt, pipe.template))
        assert row["labels"][:n_prompt] == [IGNORE] * n_prompt and row["input_ids"][n_prompt:] == labelled
        said = tok.decode(labelled).strip()
        assert said == (answer if pipe.template else answer + FAMILIES[name]["end"]), said
        assert_system_once(pipe, tok.decode(row["input_ids"]))
        assert_bos(name, tok, row["input_ids"])


def test_a_chat_with_demonstrations_trains_on_the_prompt_it_is_asked(model):
    """Multi-turn: an instruction, two solved turns, the question. Mistral v0.3 moves the instruction to the last
    user turn and drops it once an answer follows; the example is still the asked prompt plus the answer."""
    name, tok = model
    prompt = messages(PAIR.question, instruction=SYSTEM, demos=DEMOS)
    row = encode_chat(tok, prompt, PAIR.answer)
    asked = encode(tok, render(tok, prompt))
    assert row["input_ids"][:len(asked)] == asked and tok.decode(row["input_ids"]).count(SYSTEM) == 1
    assert tok.decode(row["labels"][len(asked):]).strip() == PAIR.answer + FAMILIES[name]["end"]
    assert all(x == IGNORE for x in row["labels"][:len(asked)])
    assert_bos(name, tok, row["input_ids"])


def test_cpt_documents_open_with_bos_where_the_model_expects_it(model):
    name, tok = model
    stream = [t for row in cpt_examples(tok, DOCS, 32) for t in row["input_ids"]]
    if FAMILIES[name]["bos"] is None:
        assert tok.eos_token_id in stream and stream[0] != tok.eos_token_id
    else:  # one BOS per document, each right after the previous one's end of text
        assert stream[0] == tok.bos_token_id and stream.count(tok.bos_token_id) == len(DOCS)
        assert stream[stream.index(tok.eos_token_id) + 1] == tok.bos_token_id


def test_the_failures_the_fixtures_reproduce(model):
    """What the plain `apply_chat_template` did with these templates, so the tests above are not vacuous."""
    name, tok = model
    chat = messages(PAIR.question, instruction=SYSTEM)
    plain = pipeline("finetune", tok).template

    def raw(chat, gen=True, t=None):
        return tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen, chat_template=t)

    if name == "mistral-v0.1":
        with pytest.raises(TemplateError):
            raw(chat)
        assert prompt_text(tok, chat).startswith(f"<s>[INST] {SYSTEM}\n\n{PAIR.question}")
    if name == "mistral-v0.3":
        assert not raw(with_answer(chat, PAIR.answer), gen=False).startswith(raw(chat))
        assert SYSTEM not in raw(with_answer(chat, PAIR.answer), gen=False)
    if FAMILIES[name]["bos"]:
        bare = [{"role": "user", "content": PAIR.question}]
        assert not raw(bare, t=plain).startswith(FAMILIES[name]["bos"])
        assert prompt_text(tok, bare, plain) == FAMILIES[name]["bos"] + raw(bare, t=plain)


def old_encode_chat(tokenizer, prompt, answer, template=None):
    """encode_chat before issue 45, kept here to hold the embedded model's training rows to it."""
    p_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, chat_template=template)
    f_text = tokenizer.apply_chat_template(with_answer(prompt, answer), tokenize=False, chat_template=template)
    p_ids = tokenizer(p_text, add_special_tokens=False).input_ids
    f_ids = tokenizer(f_text, add_special_tokens=False).input_ids
    assert f_ids[:len(p_ids)] == p_ids
    return {"input_ids": f_ids, "labels": [IGNORE] * len(p_ids) + f_ids[len(p_ids):]}


@pytest.mark.parametrize("arm", list(ARMS))
def test_smollm2_renders_and_trains_byte_identically(smollm, arm):
    """The embedded model's committed example results depend on its exact prompts: its own template and the
    plain format render as `apply_chat_template` did, and its training rows are unchanged."""
    pipe = pipeline(arm, smollm)
    for passages in ([], PASSAGES):
        chat = pipe.prompt(PAIR.question, passages)
        assert render(smollm, chat, pipe.template) == smollm.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True, chat_template=pipe.template)
    for prompt, answer, row in training_rows(pipe, smollm):
        assert row == old_encode_chat(smollm, prompt, answer, pipe.template)
    chat = messages(PAIR.question, instruction=SYSTEM, demos=DEMOS)
    assert encode_chat(smollm, chat, PAIR.answer, pipe.template) == old_encode_chat(smollm, chat, PAIR.answer,
                                                                                    pipe.template)
