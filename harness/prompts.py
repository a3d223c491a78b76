"""Every prompt the harness builds, in one place: what an arm is trained on is what it is asked in.

One function, `messages`, makes the chat for a question: an optional instruction, optional demonstrations
(earlier questions with their short answers, in exactly the query's own format) and the question itself, with
retrieved passages when the arm reads context. Fine-tuning arms call the same function to build their
training prompts, so a LoRA trained on bare questions is asked bare questions, and RAFT, trained with passages,
is asked with passages.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Messages = list[dict[str, str]]

# Base models without a chat template (Gemma 3 270M is pretrained, not instruction-tuned) are prompted as a
# plain Question/Answer transcript; the system text becomes the preamble (a context turn already carries its
# own "Context: ... Question: ..." text). Answers end at the line break.
PLAIN_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\\n\\n' }}"
    "{% elif m['role'] == 'user' and m['content'].startswith('Context:') %}{{ m['content'] + '\\n' }}"
    "{% elif m['role'] == 'user' %}{{ 'Question: ' + m['content'] + '\\n' }}"
    "{% else %}{{ 'Answer: ' + m['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Answer:{% endif %}")


def chat_template(tokenizer, fmt: str) -> str | None:
    """The template an arm's prompts are rendered with: None for the tokenizer's own. A model without a chat
    template already uses the plain one, so there both formats are the same."""
    return PLAIN_TEMPLATE if fmt == "plain" and tokenizer.chat_template != PLAIN_TEMPLATE else None


@dataclass(frozen=True)
class Demonstration:
    """A solved example shown before the question: a training pair, never a test item."""

    question: str
    answer: str
    passages: tuple[str, ...] = ()  # retrieved for the demonstration's own question, for context arms


def question_turn(question: str, passages: Sequence[str] = ()) -> str:
    if not passages:
        return question
    context = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return f"Context:\n{context}\n\nQuestion: {question}"


def messages(question: str, passages: Sequence[str] = (), instruction: str | None = None,
             demos: Sequence[Demonstration] = ()) -> Messages:
    """The chat an arm answers (or is trained on, with the answer appended as the assistant turn)."""
    turns: Messages = [{"role": "system", "content": instruction}] if instruction else []
    for d in demos:
        turns += [{"role": "user", "content": question_turn(d.question, d.passages)},
                  {"role": "assistant", "content": d.answer}]
    return turns + [{"role": "user", "content": question_turn(question, passages)}]


def with_answer(prompt: Messages, answer: str) -> Messages:
    """A training example: the prompt an arm will be asked in, followed by the answer it should give."""
    return prompt + [{"role": "assistant", "content": answer}]
