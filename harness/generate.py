"""Greedy, batched answering of chat prompts: the one code path every pipeline answers through."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # this question's share of its batch's wall time


def render(tokenizer, messages: Messages) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[Messages], max_new_tokens: int, batch_size: int,
             desc: str = "answering", log=None, model_tag: str = "") -> list[Generation]:
    """Answers in prompt order. With an AnswerLog, batches whose every prompt is logged are not recomputed."""
    texts = [render(tokenizer, m) for m in prompts]
    keys = [log.key(model_tag, t, max_new_tokens) if log else "" for t in texts]
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    # Sorting by length keeps padding (wasted compute) small inside each batch.
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    results: list[Generation | None] = [None] * len(ids)
    eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        batch = order[start:start + batch_size]
        if log and all(log.get(keys[i]) for i in batch):
            for i in batch:
                results[i] = log.get(keys[i])
            continue
        enc = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt").to(model.device)
        t0 = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        share = (time.perf_counter() - t0) / len(batch)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        for i, seq in zip(batch, new):
            n = next((k for k, t in enumerate(seq) if t in eos), len(seq))
            text = tokenizer.decode(seq[:n], skip_special_tokens=True).strip()
            # A prompt answered earlier keeps its logged answer, so resumed and uninterrupted runs agree.
            results[i] = (log.get(keys[i]) if log else None) or Generation(text, len(ids[i]), n, share)
        if log:
            log.put([(keys[i], results[i]) for i in batch])
    return results  # type: ignore[return-value]
