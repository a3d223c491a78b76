"""Activation checkpointing for the rows that alone overrun the training memory budget, on as few layers as it takes.

Micro-batches (batches.py) keep a step's activations within `finetune.micro_batch_tokens` by computing fewer rows at
once, but cannot split a row: RAFT's longest prompts (~650 tokens, three passages) kept about 1.5 GB of float32
activations and set the coffee demo's peak (3,053 MB). A checkpointed decoder layer keeps only its input and runs its
forward again in the backward pass, so checkpointing k of the K layers that keep activations cuts those rows' memory
by about k/K at the price of k/K of a forward pass. Only the micro-batches over the budget pay it, and only for the
layers they need: for a 650-token row and a 512-token budget, 7 of SmolLM2's 30 layers, about 7% more compute on
that row. The recomputed forward draws the same dropout masks (torch's checkpoint restores the random state), so
the gradients, and the adapter, are those of the plain step."""
from __future__ import annotations

import functools
import math

import torch
from transformers.modeling_layers import GradientCheckpointingLayer


def recomputed_share(tokens: int, labelled: int, budget_tokens: int, label_weight: float) -> float:
    """The share of the activation-keeping layers a micro-batch of `tokens` (`labelled` of them labelled) must
    recompute to fit `budget_tokens`, in batches.micro_batch_rows' units: a token through every layer costs 1, a
    labelled token `label_weight` more for its logits, which no layer's checkpoint removes. 0 when it fits or there
    is no budget; 1 when even recomputing every layer leaves it over (the logits alone overrun)."""
    if budget_tokens <= 0 or tokens <= 0:
        return 0.0
    room = budget_tokens - label_weight * labelled
    return min(1.0, max(0.0, 1 - room / tokens))


class LayerRecompute:
    """Switches checkpointing on the lowest layers of `model` that keep activations (those with trainable weights
    at or below them), per micro-batch, from its size; `close` leaves every layer as it was."""

    def __init__(self, model: torch.nn.Module, budget_tokens: int, label_weight: float):
        layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
        lowest = next((i for i, m in enumerate(layers) if any(p.requires_grad for p in m.parameters())), len(layers))
        self.layers = layers[lowest:]  # below the lowest trained layer nothing is kept for the backward pass
        self.budget, self.weight = budget_tokens, label_weight
        self.micro_batches = 0  # how many micro-batches recomputed any layer: recorded beside the adapter
        for m in self.layers:
            m._gradient_checkpointing_func = functools.partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)

    def prepare(self, tokens: int, labelled: int) -> int:
        """Set the layers for the next training micro-batch; returns how many recompute."""
        k = math.ceil(len(self.layers) * recomputed_share(tokens, labelled, self.budget, self.weight) - 1e-9)
        for i, m in enumerate(self.layers):
            m.gradient_checkpointing = i < k
        self.micro_batches += k > 0
        return k

    def close(self) -> None:
        for m in self.layers:
            m.__dict__.pop("gradient_checkpointing", None)  # back to the class's False
            m.__dict__.pop("_gradient_checkpointing_func", None)
