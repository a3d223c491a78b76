"""The private internals of transformers and peft that the training code writes to or relies on, checked against
the installed versions (pyproject.toml pins only floors), so an upgrade that moves one fails here, by name, instead
of training silently without it.

    harness/arms/recompute.py   transformers.modeling_layers.GradientCheckpointingLayer: finds decoder layers by
                                it, sets each layer's `gradient_checkpointing` and `_gradient_checkpointing_func`,
                                and pops both to fall back to the class's False
    harness/arms/dropout.py     a peft LoRA layer's `lora_dropout`: a ModuleDict of torch.nn.Dropout per adapter,
                                read at each forward, whose entries it replaces

Each check exercises the behaviour the harness needs (a layer calling the function it was given, a forward using
the swapped dropout) rather than reading source text, so a rewrite that keeps the contract still passes."""
from __future__ import annotations

import importlib

import peft
import pytest
import torch
import transformers

RECOMPUTE, DROPOUT = "harness/arms/recompute.py", "harness/arms/dropout.py"
# The decoder layers of the shipped models (SmolLM2: Llama; Gemma 3 270M: Gemma 3), which recompute.py must find.
DECODER_LAYERS = [("transformers.models.llama.modeling_llama", "LlamaDecoderLayer"),
                  ("transformers.models.gemma3.modeling_gemma3", "Gemma3DecoderLayer")]


def gone(package, module: str, attribute: str, what: str, user: str) -> str:
    return (f"installed {package.__name__} {package.__version__}: {module}.{attribute} {what}; {user} relies on it. "
            f"Adapt {user} to this version, or pin {package.__name__} below {package.__version__} in pyproject.toml")


def attribute(package, module: str, name: str, user: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(gone(package, module, name, "no longer exists", user))


def checkpointing_layer():
    return attribute(transformers, "transformers.modeling_layers", "GradientCheckpointingLayer", RECOMPUTE)


def test_the_checkpointing_layer_exists_and_is_off_by_default():
    layer = checkpointing_layer()
    assert getattr(layer, "gradient_checkpointing", None) is False, gone(
        transformers, "transformers.modeling_layers", "GradientCheckpointingLayer.gradient_checkpointing",
        "is no longer a class attribute that is False (close() pops the instance's to fall back to it)", RECOMPUTE)


@pytest.mark.parametrize("module,name", DECODER_LAYERS)
def test_the_shipped_models_decoder_layers_are_checkpointing_layers(module, name):
    decoder = attribute(transformers, module, name, RECOMPUTE)
    assert issubclass(decoder, checkpointing_layer()), gone(
        transformers, module, name, "is no longer a GradientCheckpointingLayer, so no layer of it would be "
        "recomputed", RECOMPUTE)


def test_a_layer_calls_the_checkpointing_function_set_on_it():
    class Doubling(checkpointing_layer()):
        def forward(self, x):
            return 2 * x

    calls = []

    def recorded(run, *args):
        calls.append(len(args))
        return run(*args)

    layer = Doubling().train()
    x = torch.ones(3, requires_grad=True)
    layer._gradient_checkpointing_func = recorded  # as LayerRecompute sets it, on the instance
    layer.gradient_checkpointing = False
    layer(x)
    layer.gradient_checkpointing = True
    assert torch.equal(layer(x), 2 * x)
    assert calls == [1], gone(
        transformers, "transformers.modeling_layers", "GradientCheckpointingLayer._gradient_checkpointing_func",
        "is no longer what a layer calls (exactly when gradient_checkpointing is on) to checkpoint its forward",
        RECOMPUTE)


def lora_model(p: float) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    return peft.get_peft_model(model, peft.LoraConfig(r=2, lora_dropout=p, target_modules=["0"]))


def test_lora_layers_keep_their_dropouts_in_a_module_dict():
    layers = [m for m in lora_model(0.1).modules() if hasattr(m, "lora_dropout")]
    where = "peft.tuners.lora.layer.LoraLayer"
    assert layers, gone(peft, where, "lora_dropout", "is on no module of a LoRA model", DROPOUT)
    drops = layers[0].lora_dropout
    assert isinstance(drops, torch.nn.ModuleDict), gone(
        peft, where, "lora_dropout", f"is a {type(drops).__name__}, not a torch.nn.ModuleDict per adapter", DROPOUT)
    assert [type(d) for d in drops.values()] == [torch.nn.Dropout], gone(
        peft, where, "lora_dropout", f"holds {[type(d).__name__ for d in drops.values()]}, not one torch.nn.Dropout",
        DROPOUT)


def test_a_lora_forward_uses_the_dropout_in_the_dict():
    model = lora_model(0.1).train()
    (layer,) = [m for m in model.modules() if hasattr(m, "lora_dropout")]
    seen = []

    class Recorded(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape)
            return x

    for name in list(layer.lora_dropout.keys()):
        layer.lora_dropout[name] = Recorded()  # as use_sparse_dropout swaps it
    model(torch.ones(2, 8))
    assert seen == [torch.Size([2, 8])], gone(
        peft, "peft.tuners.lora.layer.Linear", "forward", "no longer applies the lora_dropout entry found at call "
        "time, so a swapped dropout would be ignored", DROPOUT)
