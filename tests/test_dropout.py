import peft
import pytest
import torch

from harness.arms.dropout import SparseDropout, use_sparse_dropout


def test_each_element_is_dropped_independently_with_probability_p():
    torch.manual_seed(0)
    drop = SparseDropout(0.05).train()
    out = drop(torch.ones(1_000_000))
    dropped = out == 0
    # sd of the share is 0.0002 here: a biased or correlated draw lands far outside these bounds
    assert abs(dropped.float().mean().item() - 0.05) < 0.0015
    assert abs((dropped[:-1] & dropped[1:]).float().mean().item() - 0.05 ** 2) < 0.0004
    assert torch.allclose(out[~dropped], torch.tensor(1 / 0.95))


def test_gradient_reaches_kept_elements_only_and_eval_is_the_identity():
    torch.manual_seed(1)
    drop = SparseDropout(0.2).train()
    x = torch.randn(64, 32, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    kept = y != 0
    assert torch.allclose(x.grad[kept], torch.tensor(1 / 0.8)) and (x.grad[~kept] == 0).all()
    assert drop.eval()(x) is x


def test_a_probability_outside_0_1_is_refused():
    with pytest.raises(ValueError):
        SparseDropout(1.0)


def test_every_lora_dropout_of_a_peft_model_is_swapped():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    model = peft.get_peft_model(model, peft.LoraConfig(r=2, lora_dropout=0.1, target_modules=["0", "2"]))
    assert use_sparse_dropout(model) == 2
    drops = [m for m in model.modules() if isinstance(m, SparseDropout)]
    assert [d.p for d in drops] == [0.1, 0.1]
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())


def _lora(p: float) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
    # init_lora_weights=False: B starts non-zero, so what the dropout drops reaches the output (B = 0 would hide it).
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_dropout=p, target_modules=["0", "2"],
                                                       init_lora_weights=False))
    use_sparse_dropout(model)
    return model


def test_the_swapped_dropout_drops_in_the_lora_forward_pass_in_training_only():
    """Not just present in the module tree: the LoRA forward pass runs it. Two training passes draw different
    masks; in eval mode, or with lora_dropout 0 (nothing to swap), the same input gives the same output."""
    torch.manual_seed(2)
    x = torch.randn(8, 16)
    on = _lora(0.3).train()
    assert not torch.equal(on(x), on(x))
    on.eval()
    assert torch.equal(on(x), on(x))
    off = _lora(0.0).train()
    assert not any(isinstance(m, SparseDropout) for m in off.modules())
    assert torch.equal(off(x), off(x))


def test_cpu_training_defaults_to_sparse_dropout(tiny_run):
    """The session's real run trains on a CPU with lora_dropout > 0: every adapter it left must record sparse
    masks (drawing torch's masks was a quarter of a CPU step); one trained with torch's would say "torch"."""
    import json

    metas = list((tiny_run.parents[2] / "cache" / "adapters").glob("*/harness_meta.json"))
    assert len(metas) >= 3  # finetune, raft, cpt, and their continuations on the update
    assert {json.loads(m.read_text())["dropout"] for m in metas} == {"sparse"}
