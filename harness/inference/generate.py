"""Greedy, batched answering of chat prompts: the one code path every pipeline answers through.

Answers are meant to be token-for-token those of `model.generate(..., do_sample=False)` run on one prompt at a
time (checked by tests/test_generate.py and bench/answering.py). What makes them cheaper is bookkeeping around the
same arithmetic, which differs from the one-at-a-time run only in floating-point summation order, as any
batching does:

* the token prefix every prompt shares (chat preamble, system instruction, few-shot turns) is run through the
  model once and its key/value cache is copied to every row, instead of being recomputed for every question;
* each batch then runs only the prompts' own suffixes, left-padded *between* the prefix and the suffix, with
  position ids counted over real tokens only, so every row sees exactly the positions of an unpadded run;
* each step writes its keys/values into a buffer sized for the whole answer (no copy of the cache per token);
* rows that have emitted an end token leave the batch once few are left (see `_compact_at`), so a long tail
  costs only the rows still answering.

Models this loop does not cover (encoder-decoders, non-default logits processors in their generation config,
caches other than plain full attention) go through `model.generate` on left-padded batches instead.
"""
from __future__ import annotations

import logging
import functools
import inspect
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from harness.config import MAX_BATCH_GROWTH
from harness.inference.chat import prompt_text
from harness.inference.cpu_share import free_cores
from harness.inference.models import stop_token_ids
from harness.measure import return_free_pages

Messages = list[dict[str, str]]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # this question's share of its batch's wall time


def render(tokenizer, messages: Messages, template: str | None = None) -> str:
    """The text a chat is answered from (`chat.prompt_text`: the model's template, BOS where it expects one);
    tokenize it with add_special_tokens=False."""
    return prompt_text(tokenizer, messages, template)


# Generation-config fields that make `generate` change greedy scores or stopping; any non-default one sends
# answering through `model.generate`, which honours them.
_SCORE_FIELDS = ("repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size",
                 "encoder_no_repeat_ngram_size", "bad_words_ids", "force_words_ids", "min_length", "min_new_tokens",
                 "suppress_tokens", "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id",
                 "sequence_bias", "exponential_decay_length_penalty", "renormalize_logits", "remove_invalid_values",
                 "stop_strings", "num_beams", "guidance_scale", "watermarking_config", "max_time")


def _own_loop_ok(model) -> bool:
    """Whether `greedy` reproduces `model.generate` greedy for this model."""
    from transformers import GenerationConfig
    from transformers.cache_utils import DynamicCache, DynamicLayer

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if "cache" not in inspect.signature(model.forward).parameters:
        return False
    gc, default = model.generation_config, GenerationConfig()
    if any(getattr(gc, f, None) != getattr(default, f, None) for f in _SCORE_FIELDS):
        return False
    try:
        layers = DynamicCache(config=config).layers
    except Exception:  # noqa: BLE001 - an exotic config: leave it to generate
        return False
    # Sliding-window or recurrent layers would see the padding between prefix and suffix differently.
    return all(type(layer) is DynamicLayer for layer in layers)


def common_prefix(seqs: list[list[int]]) -> int:
    """Length of the token prefix all `seqs` share, leaving every one at least its last token to run."""
    n = min(len(s) for s in seqs) - 1
    first = seqs[0]
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


@functools.cache
def _slab_layer():
    """A full-attention cache layer written in place into a buffer sized for the whole answer.

    `DynamicLayer` concatenates on every token, copying the layer's whole cache each step; here a step writes
    only its own keys/values. Attention reads the same numbers either way.
    """
    from transformers.cache_utils import DynamicLayer

    class Slab(DynamicLayer):
        def __init__(self, prefix: tuple[torch.Tensor, torch.Tensor] | None, rows: int, capacity: int):
            super().__init__()
            self.rows, self.capacity, self.n = rows, capacity, 0
            if prefix is not None:
                self._write(*(t.expand(rows, -1, -1, -1) for t in prefix))

        def _write(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            if not self.is_initialized:
                heads, dim = keys.shape[1], keys.shape[3]
                self.kbuf = keys.new_empty((self.rows, heads, self.capacity, dim))
                self.vbuf = values.new_empty((self.rows, heads, self.capacity, dim))
                self.device, self.is_initialized = keys.device, True
            m = self.n + keys.shape[-2]
            self.kbuf[:, :, self.n:m], self.vbuf[:, :, self.n:m] = keys, values
            self.n = m
            self._views()

        def _views(self) -> None:
            self.keys, self.values = self.kbuf[:, :, :self.n], self.vbuf[:, :, :self.n]

        def update(self, key_states, value_states, *args, **kwargs):
            self._write(key_states, value_states)
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.n

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self.rows = len(indices)
            self.kbuf, self.vbuf = self.kbuf[indices], self.vbuf[indices]
            self._views()

    return Slab


def prefix_cache(model, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (keys, values) of `prefix`, one row, computed once for every batch."""
    from transformers.cache_utils import DynamicCache

    if not prefix:
        return []
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([prefix], device=model.device), cache=cache, use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in cache.layers]


def _compact_at(rows: int) -> int:
    """Drop finished rows from the batch once this few are still answering.

    Measured on a 2-core CPU (MKL): a decode step costs about the same for 8 to 16 rows, and 9-15 rows cost *more*
    than 16 (matrix products of fewer than 16 rows take a slower kernel), so shrinking only pays near the tail.
    """
    return rows // 4


def batch_ranges(widths: list[int], batch_size: int, max_new_tokens: int, batch_tokens: int) -> list[range]:
    """Cut prompts sorted by ascending `widths` (tokens each row computes) into batches of at least
    `batch_size`, growing a batch to at most MAX_BATCH_GROWTH times that while its rows x (widest row +
    max_new_tokens) fit `batch_tokens`.

    Measured on a 2-core CPU: a decode step of 16 short rows costs nearly what one of 64 does (every weight is read
    either way), so bare questions answer 1.5x faster 64 at a time; rows of ~300 prompt tokens are bound by their
    prefill, and more than 16 of them only add padding.
    """
    out, start, n = [], 0, len(widths)
    while start < n:
        end = min(start + batch_size, n)
        while (end < n and end - start < MAX_BATCH_GROWTH * batch_size
               and (end + 1 - start) * (widths[end] + max_new_tokens) <= batch_tokens):
            end += 1
        out.append(range(start, end))
        start = end
    return out


def greedy(model, prefix_kv, prefix_len: int, suffixes: list[list[int]], max_new_tokens: int,
            stop: set[int], pad_id: int) -> list[list[int]]:
    """Greedy continuation of prefix + each suffix; a row's tokens end with its stop token or at the limit."""
    from transformers.cache_utils import Cache

    device = model.device
    rows = len(suffixes)
    width = max(len(s) for s in suffixes)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    real = torch.zeros((rows, prefix_len + width), dtype=torch.long)
    real[:, :prefix_len] = 1
    for r, s in enumerate(suffixes):
        ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
        real[r, prefix_len + width - len(s):] = 1
    # Positions count real tokens only, as in an unpadded run (and as `generate` computes them).
    positions = (real.cumsum(-1) - 1).masked_fill(real == 0, 1)[:, prefix_len:]
    lengths = real.sum(-1)  # where each row's next token sits
    ids, mask, positions, lengths = ids.to(device), real.to(device), positions.to(device), lengths.to(device)

    slab, capacity = _slab_layer(), prefix_len + width + max_new_tokens
    layers = prefix_kv or [None] * model.config.get_text_config(decoder=True).num_hidden_layers
    cache = Cache(layers=[slab(kv, rows, capacity) for kv in layers])

    out: list[list[int]] = [[] for _ in range(rows)]
    live = list(range(rows))  # batch row -> index into `out`
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    stop_t = torch.tensor(sorted(stop), device=device)
    for step in range(max_new_tokens):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                       logits_to_keep=1).logits
        nxt = logits[:, -1, :].float().argmax(-1)
        for r, t, d in zip(live, nxt.tolist(), done.tolist()):
            if not d:
                out[r].append(t)
        if step == max_new_tokens - 1:
            break
        done |= torch.isin(nxt, stop_t)
        going = int((~done).sum())
        if going == 0:
            break
        if going <= _compact_at(len(live)):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            live = [live[i] for i in keep.tolist()]
            nxt, mask, lengths, done = nxt[keep], mask[keep], lengths[keep], done[keep]
        ids = nxt.unsqueeze(1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        positions = lengths.unsqueeze(1)
        lengths = lengths + 1
    return out


@dataclass
class _SharedPrefix:
    """The token prefix every prompt to answer shares; its keys/values are computed on first use, so a call whose
    every batch is logged computes none."""

    model: object
    tokens: list[int]

    @functools.cached_property
    def kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return prefix_cache(self.model, self.tokens)


def _new_tokens(model, tokenizer, prompts: list[list[int]], prefix: _SharedPrefix | None, max_new_tokens: int,
                eos: set[int]) -> list[list[int]]:
    """Each prompt's greedy continuation: through `greedy` after the shared prefix when there is one (the model
    suits the own loop), else through `model.generate` on a left-padded batch."""
    if prefix is not None:
        n = len(prefix.tokens)
        return greedy(model, prefix.kv, n, [p[n:] for p in prompts], max_new_tokens, eos, tokenizer.pad_token_id or 0)
    enc = tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(model.device)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(eos))
    return out[:, enc["input_ids"].shape[1]:].tolist()


def _decoded(tokenizer, seq: list[int], eos: set[int], prompt_tokens: int, seconds: float) -> Generation:
    """The answer up to its first end token; only the tokens before it count as generated."""
    n = next((k for k, t in enumerate(seq) if t in eos), len(seq))
    return Generation(tokenizer.decode(seq[:n], skip_special_tokens=True).strip(), prompt_tokens, n, seconds)


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[Messages], max_new_tokens: int, batch_size: int,
             desc: str = "answering", log=None, model_tag: str = "", template: str | None = None,
             batch_tokens: int = 0, own_loop: bool = True) -> list[Generation]:
    """Answers in prompt order. With an AnswerLog, batches whose every prompt is logged are not recomputed.
    `template` renders the chats instead of the tokenizer's own (a plain-format arm: answers end at a line break).
    `batch_tokens` lets batches of short prompts grow past `batch_size` (`batch_ranges`); 0 keeps them at it.
    `own_loop` False answers through `model.generate` even where the shared-prefix loop applies, for benches that
    compare the two."""
    texts = [render(tokenizer, m, template) for m in prompts]
    keys = [log.key(model_tag, t, max_new_tokens) if log else "" for t in texts]
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    # A prompt an earlier call of this run asked (the same words to the same weights) keeps that answer: a rebuilt
    # index leaves most rag prompts as they were. Which prompts is settled by the calls' order alone, never by what
    # a log happens to hold, so a resumed run batches the rest exactly as an uninterrupted one did.
    results: list[Generation | None] = [log.answered.get(k) for k in keys] if log else [None] * len(ids)
    todo = [i for i in range(len(ids)) if results[i] is None]
    # Sorting by length keeps padding (wasted compute) small inside each batch.
    order = sorted(todo, key=lambda i: len(ids[i]))
    # Includes the line breaks that end a base model's answer, and a plain-format one's.
    eos = stop_token_ids(model, tokenizer, line_breaks=template is not None)
    # The prefix shared by every prompt to answer, logged or not: a resumed run computes what an uninterrupted
    # one did.
    prefix = (_SharedPrefix(model, ids[todo[0]][:common_prefix([ids[i] for i in todo])])
              if todo and own_loop and _own_loop_ok(model) else None)
    free = free_cores() if model.device.type == "cpu" else None
    widths = [len(ids[i]) - (len(prefix.tokens) if prefix else 0) for i in order]
    cuts = batch_ranges(widths, batch_size, max_new_tokens, batch_tokens)
    for rows in tqdm(cuts, desc=desc, unit="batch", leave=False, disable=not logger.isEnabledFor(logging.INFO)):
        if free:
            free.adjust()
        batch = order[rows.start:rows.stop]
        logged = [log.get(keys[i]) for i in batch] if log else []
        if logged and all(logged):
            for i, g in zip(batch, logged):
                results[i] = g
            log.put([(keys[i], results[i]) for i in batch])  # into this run's log; counted if from the cache
            continue
        t0 = time.perf_counter()
        new = _new_tokens(model, tokenizer, [ids[i] for i in batch], prefix, max_new_tokens, eos)
        # Each batch is a little wider than the last (prompts sorted by length), so its buffers rarely fit the
        # holes the last one left. After a training had shaped the heap, a RAFT arm's answering grew the process by
        # 600 MB of such freed memory (2,281 MB against 1,689 with this, the same 50 s): an arm's peak.
        share = (time.perf_counter() - t0) / len(batch)
        return_free_pages()
        for i, seq in zip(batch, new):
            # A prompt answered earlier keeps its logged answer, so resumed and uninterrupted runs agree.
            results[i] = (log.get(keys[i]) if log else None) or _decoded(tokenizer, seq, eos, len(ids[i]), share)
        if log:
            log.put([(keys[i], results[i]) for i in batch])
    if free:
        torch.set_num_threads(free.most)
    if log:
        log.answered.update(zip(keys, results))
    return results  # type: ignore[return-value]
