"""Chats as the model reads them: one rendering for answering and training alike.

Every prompt the harness answers goes through `prompt_text` and every training example through `training_ids`,
so what an arm is trained on is exactly what it is asked. Both render with the model's own chat template (or the
arm's plain one) and take care of what real templates leave to the caller:

* A template that rejects a system turn (Mistral v0.1/v0.2 raise "Only user and assistant roles are supported!"),
  drops it or repeats it gets the system text folded into the first user turn instead, once.
* A template that moves the system text (Mistral v0.3 puts it on the last user turn only, so a conversation that
  ends with the answer carries none) cannot give the prompt as a prefix of prompt + answer. The training example
  is then the prompt exactly as it is answered, followed by the answer turn the template writes for the same
  conversation without its system turn.
* BOS: a tokenizer that adds one when encoding (Llama, Mistral, Gemma) expects it at the start of every sequence.
  The text gets it once, at the start, unless the template already wrote it there, and is always tokenized with
  add_special_tokens=False, so it is never doubled.

A template that keeps the system turn where it was sent and writes BOS itself, or needs none (SmolLM2, Qwen,
Llama 3), renders exactly as `tokenizer.apply_chat_template` does.
"""
from __future__ import annotations

from jinja2.exceptions import TemplateError

from harness.errors import HarnessError
from harness.prompts import Messages, with_answer


def prompt_text(tokenizer, messages: Messages, template: str | None = None) -> str:
    """The text a chat is answered from: `template` (None for the tokenizer's own) with the generation prompt."""
    return _prompt(tokenizer, messages, template)[1]


def training_ids(tokenizer, prompt: Messages, answer: str,
                 template: str | None = None) -> tuple[list[int], list[int]]:
    """A training example's token ids: the prompt, exactly as `prompt_text` renders it for answering, and what
    follows it (the answer and the template's end of turn, the only tokens that carry a loss)."""
    sent, p_text = _prompt(tokenizer, prompt, template)
    f_text = with_bos(tokenizer, _render(tokenizer, with_answer(sent, answer), template, prompt=False))
    if not f_text.startswith(p_text):  # the system text moved once an answer followed (Mistral v0.3)
        f_text = p_text + _answer_turn(tokenizer, sent, answer, template)
    p_ids = encode(tokenizer, p_text)
    f_ids = encode(tokenizer, f_text)
    if f_ids[:len(p_ids)] != p_ids:  # a token merged across the prompt's end: keep the prompt's own tokens
        f_ids = p_ids + encode(tokenizer, f_text[len(p_text):])
    return p_ids, f_ids[len(p_ids):]


def encode(tokenizer, text: str) -> list[int]:
    """Rendered text to ids: special tokens are already in the text, so the tokenizer adds none."""
    return tokenizer(text, add_special_tokens=False).input_ids


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts BOS before what it encodes, i.e. the model was trained with one."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a").input_ids[:1] == [bos] and encode(tokenizer, "a")[:1] != [bos]


def with_bos(tokenizer, text: str) -> str:
    """`text` starting with BOS where the model expects one, and with only one."""
    bos = tokenizer.bos_token
    return bos + text if bos and not text.startswith(bos) and adds_bos(tokenizer) else text


def folded(messages: Messages) -> Messages:
    """The chat without its system turn: the system text opens the first user turn instead."""
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    first = next((m for m in rest if m["role"] == "user"), None)
    if first is None:
        return [{"role": "user", "content": system}, *rest]
    first["content"] = f"{system}\n\n{first['content']}"
    return rest


def _prompt(tokenizer, messages: Messages, template: str | None) -> tuple[Messages, str]:
    """(the chat as sent to the template, its prompt text): the system turn folded where the template rejects it,
    loses it or repeats it."""
    system = messages[0]["content"].strip() if messages and messages[0]["role"] == "system" else ""
    try:
        text = _render(tokenizer, messages, template, prompt=True)
        # Once from the system turn, plus wherever the other turns happen to quote it (a retrieved passage).
        if not system or text.count(system) == 1 + sum(m["content"].count(system) for m in messages[1:]):
            return messages, with_bos(tokenizer, text)
    except TemplateError:
        if not system:
            raise
    sent = folded(messages)
    return sent, with_bos(tokenizer, _render(tokenizer, sent, template, prompt=True))


def _answer_turn(tokenizer, sent: Messages, answer: str, template: str | None) -> str:
    """What the template writes after the prompt for the answer, read from the same conversation without its
    system turn (where the system text cannot move)."""
    bare = [m for m in sent if m["role"] != "system"]
    p_text = _render(tokenizer, bare, template, prompt=True)
    f_text = _render(tokenizer, with_answer(bare, answer), template, prompt=False)
    if not f_text.startswith(p_text):
        raise HarnessError("the model's chat template changes the prompt when an answer is appended; "
                           "cannot mask the loss to answer tokens")
    return f_text[len(p_text):]


def _render(tokenizer, messages: Messages, template: str | None, prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                         chat_template=template)
