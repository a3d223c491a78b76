"""GPU readiness that a CPU can prove (issue 45): one process never trains through nn.DataParallel, weights too big
for one GPU are spread over all of them, and an adapter can answer attached to the base instead of merged into a
copy. Only the CUDA device count is faked, where torch reports it; everything else runs for real."""
import copy
from pathlib import Path

import peft
import pytest
import torch
from transformers import TrainingArguments

from harness.arms.batches import CheapestBatches
from harness.arms.finetune import (LabelledOnlyTrainer, TrainedAdapter, answering_model, answers_unmerged,
                                   attach_adapter, detach_adapter, eval_split, load_merged, lora_model,
                                   training_arguments)
from harness.arms.training_data import qa_examples
from harness.config import FinetuneConfig
from harness.errors import HarnessError
from harness.inference.devices import gpu_budget, placement, sharded
from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
from harness.task.folder import load_task

GB = 10**9
TINY = Path(__file__).parent / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def smollm():
    return load_generator(resolve_model(DEFAULT_MODEL), dtype="float32")


def test_one_process_with_eight_gpus_trains_on_one_without_data_parallel(smollm, tmp_path, monkeypatch):
    model, tok = smollm
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    # What transformers makes of eight visible GPUs in one process: all eight, for nn.DataParallel.
    assert TrainingArguments(output_dir=str(tmp_path / "plain"), report_to="none").n_gpu == 8

    cfg = FinetuneConfig(lora_rank=4, lora_alpha=8, epochs=1, batch_size=4, eval_fraction=0.25, lora_layers=0.2)
    # The settings a CUDA base trains with (use_cpu off: the device count decides, as on a GPU machine).
    args = training_arguments(cfg, tmp_path / "checkpoints", 0, 4, 4, "cuda", torch.float32, world=1)
    assert args.n_gpu == 1 and args.train_batch_size == 4
    examples = qa_examples(tok, load_task(TINY).knowledge.pairs, "Answer briefly.")
    split = eval_split(examples, cfg, 0)
    tok = copy.deepcopy(tok)
    tok.padding_side = "right"
    lora = lora_model(model, cfg, None, sparse_dropout=False)
    try:
        trainer = LabelledOnlyTrainer(model=lora, args=args, train_dataset=split["train"],
                                      eval_dataset=split["test"], data_collator=CheapestBatches(tok, model, False))
        trainer.train()
        assert not isinstance(trainer.model_wrapped, torch.nn.DataParallel)
        assert trainer.state.global_step == 2  # 6 rows in batches of 4: not one batch of 4 x 8 "GPUs"
    finally:
        lora.unload()


def test_weights_over_one_gpu_are_spread_over_every_gpu():
    # An 8B model in bf16 (16 GB) fits one 80 GB GPU: loaded whole, as before.
    assert gpu_budget(16 * GB, [80 * GB] * 8) is None
    # A 70B model in bf16 (140 GB) does not: device_map auto over all eight, each kept to 80% of its free memory.
    assert gpu_budget(140 * GB, [80 * GB] * 8) == {i: 64 * GB for i in range(8)}
    # ...but in 4 bits (35 GB) it fits one.
    assert gpu_budget(35 * GB, [80 * GB] * 8) is None
    # The first GPU's free memory decides: an 8B model beside another job's 70 GB goes to two.
    assert gpu_budget(16 * GB, [10 * GB, 80 * GB]) == {0: 8 * GB, 1: 64 * GB}
    with pytest.raises(HarnessError, match="--quantize 4"):
        gpu_budget(140 * GB, [80 * GB])
    assert gpu_budget(140 * GB, []) is None  # no GPU: nothing to spread over
    # On a CPU (and for a process's own GPU under torchrun) nothing changes and nothing is read.
    assert placement("/no/such/model", "cpu", torch.float32, None, False) is None
    assert placement("/no/such/model", "cuda:1", torch.bfloat16, None, False) is None


def test_an_adapter_attached_to_the_base_answers_as_the_merged_copy_without_copying(smollm, tmp_path):
    """The path a quantized or GPU-spread base answers by: the LoRA layers put into the base itself. It gives the
    merged copy's logits, shares every base weight, and leaves the base exactly as it was once taken out; a
    full-precision base on one device still merges (the committed examples' path)."""
    base, tok = smollm
    lora = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, target_modules=["q_proj", "down_proj"], layers_to_transform=[28, 29]))
    torch.manual_seed(0)
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)  # a fresh LoRA's B is zero: attached or merged, it would change nothing
    lora.save_pretrained(str(tmp_path))
    adapter = TrainedAdapter(tmp_path, False, 0.0, 0, 0.0, None, 0, 0, [])
    ids = tok(["The island's capital is"], return_tensors="pt").input_ids

    assert not answers_unmerged(base) and not sharded(base)
    merged = answering_model(base, adapter)
    assert not isinstance(merged, peft.PeftModel)  # the CPU float32 path: a merged copy, as before
    with torch.no_grad():
        before, want = base(ids).logits, merged(ids).logits
        weights = {n: p for n, p in base.named_parameters()}
        attached = attach_adapter(base, adapter)
        got = attached(ids).logits
        shared = {n.removeprefix("base_model.model.").replace(".base_layer", ""): p
                  for n, p in attached.named_parameters() if "lora_" not in n}
        assert shared.keys() == weights.keys() and all(shared[n] is weights[n] for n in weights)  # no copy
        assert torch.allclose(got, want, atol=1e-4) and not torch.allclose(got, before, atol=1e-3)
        detach_adapter(attached)
        assert torch.equal(base(ids).logits, before)
    assert not any("lora_" in n for n, _ in base.named_parameters())
    assert torch.equal(load_merged(base, adapter)(ids).logits, want)


def test_the_adapter_key_is_the_recipe_and_data_not_the_layout(smollm, monkeypatch):
    """`harness train` on 8 processes and `harness run` on one, or a GPU's micro-batch budget and a CPU's, look up
    one adapter: the key holds what is trained, not how the steps were split."""
    from harness.arms.finetune import cache_key

    model, tok = smollm
    examples = qa_examples(tok, load_task(TINY).knowledge.pairs, "Answer briefly.")
    cfg = FinetuneConfig(batch_size=8)
    one = cache_key("m", "qa", examples, cfg, 0, model)
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert cache_key("m", "qa", examples, cfg.model_copy(update={"micro_batch_tokens": 0}), 0, model) == one
    assert cache_key("m", "qa", examples, cfg.model_copy(update={"micro_batch_tokens": 64}), 0, model) == one
    # What is trained still counts: the global batch, the data, the seed.
    assert cache_key("m", "qa", examples, cfg.model_copy(update={"batch_size": 4}), 0, model) != one
    assert cache_key("m", "qa", examples[1:], cfg, 0, model) != one
    assert cache_key("m", "qa", examples, cfg, 1, model) != one
