"""Training batches with as little padding as the attention cost allows.

A padded batch computes every layer on max_length x rows tokens; coffee's Q&A pairs (22 tokens on average, 33 at
most) waste about a fifth of that on padding. A flattened batch lays the examples end to end in one row, with
position ids restarting at each example: the model's own mask code (transformers' packed-sequence detection) then
lets each token see only its own example, so the loss is the padded batch's loss, on fewer tokens. The price is
attention over the whole row, quadratic in its length, so a batch of long prompts (RAFT's three passages) stays
padded. `flattening_is_exact` checks the equality on the model at hand before any of it is used. finetune.py
flattens float32 training only: on a bf16 base an epoch measured no faster flattened (bench/README.md)."""
from __future__ import annotations

from typing import Callable

import torch
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from harness.arms.training_data import IGNORE
from harness.inference.gpu import free_bytes, training_token_budget


class CheapestBatches:
    """Collates each batch padded or flattened, whichever costs fewer FLOPs by a per-token linear term (the
    weights) plus a per-token-pair attention term."""

    def __init__(self, tokenizer, model, flatten: bool):
        self.padded = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)
        self.flat = DataCollatorWithFlattening(separator_id=IGNORE) if flatten else None
        text = model.config.get_text_config(decoder=True)
        # Per token 2 FLOPs per weight; per (query, key) pair and layer 2*hidden for the scores, 2*hidden for the mix.
        self.linear = 2 * sum(p.numel() for p in model.parameters())
        self.pair = 4 * text.hidden_size * text.num_hidden_layers
        self.counts = {"flattened": 0, "padded": 0}  # recorded beside the adapter

    def flattens(self, lengths: list[int]) -> bool:
        tokens, longest = sum(lengths), max(lengths)
        flat = tokens * self.linear + tokens * tokens * self.pair
        padded = len(lengths) * longest * (self.linear + longest * self.pair)
        return self.flat is not None and len(lengths) > 1 and flat < padded

    def __call__(self, features: list[dict]) -> dict:
        if self.flattens([len(f["input_ids"]) for f in features]):
            self.counts["flattened"] += 1
            return self.flat([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features],
                             return_tensors="pt")
        self.counts["padded"] += 1
        return self.padded(features)


# Floats a training token keeps for the backward pass per hidden unit and layer (harness/run/memory.py's estimate
# uses the same figure); a labelled token also keeps its logits, their softmax and their gradient: 3 x vocabulary.
ACTIVATION_FLOATS = 34


def labelled_token_weight(vocab: int, hidden: int, layers: int) -> float:
    """What a labelled token adds to a training token's memory, as a share of an unlabelled token's: 0.25 for
    SmolLM2-135M (49k vocabulary), 2.0 for Gemma 3 270M (262k), whose logits outweigh its 18 layers."""
    return 3 * vocab / (ACTIVATION_FLOATS * hidden * layers)


def token_budget(model, configured: int) -> int:
    """finetune.micro_batch_tokens on a CPU, where it was measured; on a GPU, sized from its free memory (gpu.py):
    the budget that a step's rows usually fit whole, so micro-batches and recomputation stay off there."""
    free = free_bytes(getattr(model, "device", "cpu"))
    if free is None:
        return configured
    text = model.config.get_text_config(decoder=True)
    per_token = text.num_hidden_layers * text.hidden_size * ACTIVATION_FLOATS * model.dtype.itemsize
    return training_token_budget(configured, free, per_token)


def micro_batch_rows(lengths: list[int], rows: int, budget_tokens: int, labelled: list[int] | None = None,
                     label_weight: float = 0.0) -> int:
    """How many of a step's `rows` one forward and backward pass computes at once; the Trainer accumulates the
    gradients of the rest, so the step's loss and update are the same mathematics. Activations kept for the
    backward pass dominate a small model's training memory (RAFT's 8 rows x 652 tokens peaked at 13 GB) and grow
    with the tokens computed together, so the answer is the largest divisor of `rows` (every micro-batch of a
    full batch equal) whose rows x the costliest training row fit `budget_tokens`, at least 1. 0: no split.

    A row costs its tokens plus `label_weight` (labelled_token_weight) per labelled token: a Q&A or RAFT row labels
    a few answer tokens, but a cpt block labels all of them, and two 256-token blocks at once held 3.2 GB against
    one's 2.8 GB on coffee (float32, bench/README.md)."""
    if budget_tokens <= 0 or not lengths:
        return rows
    counts = labelled if labelled is not None else [0] * len(lengths)
    costliest = max(n + label_weight * k for n, k in zip(lengths, counts))
    return max(m for m in range(1, rows + 1) if rows % m == 0 and (m == 1 or m * costliest <= budget_tokens))


CHECK_TOKENS = 512  # flattening_is_exact's batch, after its first two rows


@torch.no_grad()
def flattening_is_exact(model, tokenizer, examples: list[dict], loss_fn: Callable) -> bool:
    """True if a batch of examples flattened into one row gives the loss it gives padded (`loss_fn(model, batch)`
    returns summed loss, labelled count, output): the model's attention keeps packed examples apart. A model whose
    attention code ignores position ids would mix them, and stays padded.

    The check uses a batch of up to eight: on coffee's plain pairs, eight examples that see each other score a loss
    65% lower, while the two float32 layouts agree to 1e-6. (bf16 layouts differ by up to 0.3% from rounding alone;
    finetune.py flattens float32 training only.) Long rows take fewer, two at least, within CHECK_TOKENS: eight of
    cpt's fully labelled 256-token blocks, their logits over the vocabulary and one 2,047-token flattened row's
    attention, lifted the coffee demo to 3,476 MB before cpt's first step (its peak; the training stays under
    2.5 GB), 2.1 GB over what the process held."""
    batch: list[dict] = []
    for e in examples[:8]:
        if len(batch) >= 2 and sum(len(b["input_ids"]) for b in batch) + len(e["input_ids"]) > CHECK_TOKENS:
            break
        batch.append({"input_ids": e["input_ids"], "labels": e["labels"]})
    if len(batch) < 2:
        return False
    if len({len(b["input_ids"]) for b in batch}) == 1:
        batch[1] = {k: v[:-1] for k, v in batch[1].items()}  # unequal lengths, so the padded batch has padding
    padded = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)(batch)
    flat = DataCollatorWithFlattening(separator_id=IGNORE)(batch, return_tensors="pt")
    was_training = model.training
    model.eval()
    try:
        a, n_a, _ = loss_fn(model, {k: v.to(model.device) for k, v in padded.items()})
        b, n_b, _ = loss_fn(model, {k: v.to(model.device) for k, v in flat.items()})
    except (RuntimeError, TypeError, ValueError):  # a model whose forward takes no position ids: stay padded
        return False
    finally:
        model.train(was_training)
    return int(n_a) == int(n_b) and bool(torch.isclose(a / n_a, b / n_b, rtol=1e-4, atol=1e-5))
