"""FSDP for `harness train` (issue 45): which torchrun processes shard the base, the Trainer settings that do it
(QLoRA+FSDP included), and the adapter cache key that does not change with it.

An FSDP training itself cannot run on a CPU with the installed libraries: accelerate enables FSDP only for GPU
processes (on CPU the Trainer falls back to DDP), and torch's FSDP1 refuses a machine with no accelerator ("FSDP
needs a non-CPU accelerator device"). bench/gpu_check.sh runs one. What runs here is the decision, the
TrainingArguments and accelerate plugin settings transformers builds from them, and the key."""
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

from harness.arms.finetune import cache_key, quantization_identity, training_arguments
from harness.config import FinetuneConfig
from harness.errors import HarnessError
from harness.inference.models import bnb_config
from harness.inference.sharding import DDP, FSDP, layer_classes, training_layout, wants_fsdp

GB = 10**9


@pytest.fixture(scope="module")
def tiny_llama():
    cfg = AutoConfig.for_model("llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=2, num_key_value_heads=2, vocab_size=64)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg)


def test_a_model_that_fits_one_gpu_trains_with_ddp_and_one_that_does_not_with_fsdp():
    eight = [80 * GB] * 8
    # Llama-3.1-8B in bf16 (16 GB): a whole copy per 80 GB GPU.
    assert training_layout(16 * GB, eight, 8) == DDP
    # 70B in bf16 (140 GB): over one GPU's 64 GB for weights, 17.5 GB each once sharded 8 ways.
    assert training_layout(140 * GB, eight, 8) == FSDP
    # 70B in 4 bits (35 GB) fits one 80 GB GPU: DDP...
    assert training_layout(35 * GB, eight, 8) == DDP
    # ...but not one 24 GB GPU (19.2 GB for weights): QLoRA+FSDP, 4.4 GB each.
    assert training_layout(35 * GB, [24 * GB] * 8, 8) == FSDP
    # The fullest GPU decides: every process holds the same share.
    assert training_layout(16 * GB, [80 * GB] * 7 + [10 * GB], 8) == FSDP


def test_weights_that_do_not_fit_even_sharded_or_one_process_are_refused_with_the_way_out():
    with pytest.raises(HarnessError, match="--quantize 4"):
        training_layout(140 * GB, [48 * GB] * 2, 2)  # 70 GB each against 38.4
    with pytest.raises(HarnessError, match="nproc_per_node"):
        training_layout(140 * GB, [80 * GB], 1)


def test_fsdp_is_never_chosen_on_a_cpu_and_cannot_be_forced_there():
    # The model is never read on a CPU (the path does not exist): the answer comes first.
    assert not wants_fsdp("auto", "/no/such/model", "cpu", torch.float32, None, 2)
    assert not wants_fsdp("off", "/no/such/model", "cpu", torch.float32, None, 2)
    with pytest.raises(HarnessError, match="needs CUDA"):
        wants_fsdp("on", "/no/such/model", "cpu", torch.float32, None, 2)
    with pytest.raises(HarnessError, match="auto, on, off"):
        wants_fsdp("yes", "/no/such/model", "cpu", torch.float32, None, 2)


def test_fsdp_training_arguments_shard_by_decoder_layer_and_save_a_full_state_dict(tiny_llama, tmp_path,
                                                                                   monkeypatch):
    # TrainingArguments exports FSDP_CPU_RAM_EFFICIENT_LOADING for from_pretrained: restored after the test.
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    cfg = FinetuneConfig(batch_size=8)
    plain = training_arguments(cfg, tmp_path / "a", 0, 4, 4, "cuda", torch.float32, world=2)
    assert not plain.fsdp and plain.fsdp_plugin_args is None  # DDP, as before

    layers = layer_classes(tiny_llama)
    assert layers == ["LlamaDecoderLayer"]
    args = training_arguments(cfg, tmp_path / "b", 0, 4, 4, "cuda", torch.float32, world=2, fsdp_layers=layers)
    assert args.fsdp is True
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    # What the Trainer hands accelerate's FullyShardedDataParallelPlugin.
    plugin = args.fsdp_plugin_args
    assert plugin["fsdp_version"] == 1 and plugin["reshard_after_forward"] == "full_shard"
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert plugin["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer"
    assert plugin["use_orig_params"] is True  # a unit mixes frozen base weights and trainable LoRA ones
    assert plugin["cpu_ram_efficient_loading"] is True and plugin["sync_module_states"] is True
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"  # rank 0 writes the whole adapter, as without FSDP
    # The rest of the recipe is the DDP one: the same rows per process and step, evals, checkpoints.
    for field in ("per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "num_train_epochs",
                  "eval_strategy", "save_strategy", "load_best_model_at_end", "seed"):
        assert getattr(args, field) == getattr(plain, field)


def test_a_model_without_decoder_layer_classes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    with pytest.raises(HarnessError, match="--fsdp off"):
        training_arguments(FinetuneConfig(), tmp_path, 0, 4, 4, "cuda", torch.float32, world=2, fsdp_layers=[])


def test_qlora_under_fsdp_packs_4_bits_in_the_compute_dtype_under_the_same_cache_key(tiny_llama):
    ddp, fsdp = bnb_config(4), bnb_config(4, torch.bfloat16)
    assert ddp.bnb_4bit_quant_storage == torch.uint8 and fsdp.bnb_4bit_quant_storage == torch.bfloat16
    assert fsdp.bnb_4bit_compute_dtype == torch.bfloat16
    # The config QLoRA loaded with before FSDP existed: its text, and so every QLoRA adapter's key, is unchanged.
    before = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.bfloat16)
    assert str(ddp) == str(before) == quantization_identity(fsdp)
    assert fsdp.bnb_4bit_quant_storage == torch.bfloat16  # read, not changed
    assert quantization_identity(None) == "None"

    examples = [{"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]}] * 4
    cfg = FinetuneConfig()
    model = tiny_llama
    try:
        model.config.quantization_config = ddp
        one_gpu = cache_key("m", "qa", examples, cfg, 0, model, device_type="cuda")
        model.config.quantization_config = fsdp
        assert cache_key("m", "qa", examples, cfg, 0, model, device_type="cuda") == one_gpu
    finally:
        del model.config.quantization_config
    # The base FSDP loads on the CPU (or meta) trains on the GPUs: keyed as a GPU training, not a CPU one.
    assert cache_key("m", "qa", examples, cfg, 0, model) == cache_key("m", "qa", examples, cfg, 0, model,
                                                                      device_type="cpu")
    assert cache_key("m", "qa", examples, cfg, 0, model, device_type="cuda") != cache_key("m", "qa", examples,
                                                                                         cfg, 0, model)
