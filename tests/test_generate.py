"""The batched answering path gives exactly the answers of one-at-a-time greedy `model.generate`."""
import functools
from pathlib import Path

import pytest
import torch

from harness.inference.answerlog import AnswerLog
from harness.inference.generate import batch_ranges, common_prefix, generate, render
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
from harness.task.demo_pool import demo_pool
from harness.arms.pipeline import Shared, make_pipeline
from harness.prompts import Demonstration, chat_template, messages
from harness.task.folder import load_task

TINY = Path(__file__).parent / "fixtures" / "tiny"
MAX_NEW = 12  # above the tiny answers' length, so rows finish at different steps and leave the batch early


@pytest.fixture(scope="module")
def setup():
    task = load_task(TINY)
    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    shared = Shared(model, tok, None, task.config, DEFAULT_MODEL, None)
    questions = [q.question for q in task.test] + [task.knowledge.pairs[-1].question]
    return model, tok, shared, questions


def one_at_a_time(model, tok, prompts) -> list[str]:
    out = []
    for messages in prompts:
        enc = tok(render(tok, messages), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            seq = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(seq[0, enc.input_ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def rows_per_forward(model, monkeypatch) -> list[int]:
    """The batch rows of every forward pass from now on."""
    rows: list[int] = []
    forward = model.forward

    @functools.wraps(forward)  # keeps forward's signature, which picks generate's own loop
    def counted(*args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counted)
    return rows


def test_batched_answers_equal_one_at_a_time_greedy(setup):
    model, tok, shared, questions = setup
    task = load_task(TINY)
    pipe = make_pipeline("prompt", shared)
    pipe.build(task.knowledge, demo_pool(task.knowledge.pairs, task.test))
    prompts = ([pipe.prompt(q, []) for q in questions[:4]]
               + [make_pipeline("base", shared).prompt(q, []) for q in questions[4:]])
    ids = [tok(render(tok, m), add_special_tokens=False).input_ids for m in prompts]
    reference = one_at_a_time(model, tok, prompts)

    # Few-shot prompts share a long prefix (system + examples), run once; batches of 3 and 1.
    assert common_prefix(ids[:4]) > 40
    few_shot = generate(model, tok, prompts[:4], MAX_NEW, batch_size=3)
    assert [g.text for g in few_shot] == reference[:4]
    # With bare questions in the mix only the chat preamble is shared.
    mixed = generate(model, tok, prompts, MAX_NEW, batch_size=4)
    assert [g.text for g in mixed] == reference
    assert len({g.new_tokens for g in mixed}) > 1  # rows did stop at different steps
    assert [g.prompt_tokens for g in mixed] == [len(i) for i in ids]


def test_own_loop_off_answers_through_model_generate_with_the_same_answers(setup, monkeypatch):
    # Benches compare the shared-prefix loop with the plain path by this switch.
    model, tok, shared, questions = setup
    prompts = [make_pipeline("base", shared).prompt(q, []) for q in questions[:3]]
    rows = rows_per_forward(model, monkeypatch)
    own = generate(model, tok, prompts, MAX_NEW, batch_size=3)
    first_own, rows[:] = rows[0], []
    plain = generate(model, tok, prompts, MAX_NEW, batch_size=3, own_loop=False)
    assert [g.text for g in plain] == [g.text for g in own]
    assert first_own == 1 and rows[0] == 3  # the own loop runs the shared prefix once first; generate does not


def test_short_prompts_share_bigger_batches_with_the_same_answers(setup, monkeypatch):
    model, tok, shared, questions = setup
    prompts = [make_pipeline("base", shared).prompt(q, []) for q in questions]
    reference = [g.text for g in generate(model, tok, prompts, MAX_NEW, batch_size=2)]
    rows = rows_per_forward(model, monkeypatch)
    grown = generate(model, tok, prompts, MAX_NEW, batch_size=2, batch_tokens=10_000)
    assert rows[0] == 1  # the shared chat preamble, run once: generate's own loop answered
    assert max(rows) == len(prompts) > 2  # one batch: every bare question fits the token budget
    assert [g.text for g in grown] == reference


def test_batches_grow_only_while_short_rows_fit_the_token_budget():
    widths = [5] * 40 + [300] * 10
    cuts = [(r.start, r.stop) for r in batch_ranges(widths, 4, 10, 640)]
    # 8x batch_size at most; then the rest of the short rows; long rows keep batch_size, never fewer.
    assert cuts == [(0, 32), (32, 40), (40, 44), (44, 48), (48, 50)]
    assert [(r.start, r.stop) for r in batch_ranges(widths, 4, 10, 0)] == [(s, min(s + 4, 50)) for s in range(0, 50, 4)]


def test_logged_batches_are_not_recomputed(setup, monkeypatch, tmp_path):
    model, tok, shared, questions = setup
    prompts = [make_pipeline("base", shared).prompt(q, []) for q in questions[:3]]
    first = generate(model, tok, prompts, MAX_NEW, batch_size=2, log=AnswerLog(tmp_path / "log"), model_tag="base")
    monkeypatch.setattr(model, "forward", lambda *a, **k: pytest.fail("a logged answer was recomputed"))
    # A resumed run: a new log reads the file, so it has no earlier calls of its own to take answers from.
    resumed = AnswerLog(tmp_path / "log")
    assert generate(model, tok, prompts, MAX_NEW, batch_size=2, log=resumed, model_tag="base") == first


def test_a_prompt_asked_again_in_a_run_keeps_its_answer_and_only_new_ones_are_batched(setup, monkeypatch, tmp_path):
    model, tok, shared, questions = setup
    prompts = [make_pipeline("base", shared).prompt(q, []) for q in questions]
    cold = generate(model, tok, prompts[:4], MAX_NEW, batch_size=4)
    # An earlier run (another batch composition) left two of these answers in the shared cache.
    generate(model, tok, prompts[:2], MAX_NEW, batch_size=4, log=AnswerLog(cache=tmp_path / "c"), model_tag="base")

    rows = rows_per_forward(model, monkeypatch)
    log = AnswerLog(cache=tmp_path / "c")
    first = generate(model, tok, prompts[:4], MAX_NEW, batch_size=4, log=log, model_tag="base")
    # The cache held half the batch, so the whole batch ran: what a cache holds never changes a batch.
    assert max(rows) == 4 and [g.text for g in first] == [g.text for g in cold]
    rows.clear()
    again = generate(model, tok, prompts[2:], MAX_NEW, batch_size=4, log=log, model_tag="base")
    assert again[:2] == first[2:]  # asked before in this run: the same answers, the same measured seconds
    assert max(rows) == len(prompts) - 4  # only the prompts this run had not asked joined a batch


def test_a_plain_format_arm_answers_one_line_on_a_chat_model(setup):
    """`format: plain` renders "Question: ...\nAnswer:" lines without the chat preamble; the answer ends at the line
    break (the chat model, shown one plain demonstration, would otherwise run on into the next "Question:")."""
    model, tok, shared, questions = setup
    template = chat_template(tok, "plain")
    demo = [Demonstration("Which bird nests by the Ashen River?", "the heron")]
    prompts = [messages(q, demos=demo) for q in questions[:4]]
    assert render(tok, prompts[0], template) == \
        f"Question: Which bird nests by the Ashen River?\nAnswer: the heron\n\nQuestion: {questions[0]}\nAnswer:"
    out = generate(model, tok, prompts, 20, batch_size=2, template=template)
    for p, g in zip(prompts, out):
        enc = tok(render(tok, p, template), return_tensors="pt", add_special_tokens=False)
        run_on = tok.decode(model.generate(**enc, max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id)
                            [0, enc.input_ids.shape[1]:], skip_special_tokens=True)
        assert "\nQuestion:" in run_on  # unstopped, it goes on to invent the next question
        assert g.text == run_on.split("\n")[0].strip() and g.new_tokens < 20
