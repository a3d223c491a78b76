"""Memory and time said before and kept during a run: micro-batches that change nothing but memory, the CPU named,
the time forecast, and the partial report. Trains the tiny task's LoRA for real on the embedded model."""
import json
import math
from pathlib import Path

import pytest

from harness.arms.catalog import arms, training_settings
from harness.arms.batches import labelled_token_weight, micro_batch_rows
from harness.config import FinetuneConfig
from harness.run.forecast import TOKENS_PER_WORD, TRAIN_EFFICIENCY, forecast
from harness.run.machine import cpu_info
from harness.task.folder import load_task

TINY = Path(__file__).parent / "fixtures" / "tiny"


def test_micro_batches_are_the_largest_divisor_that_fits_the_token_budget():
    assert micro_batch_rows([600, 300], 8, 512) == 1  # one 600-token row is over budget: never below 1 row
    assert micro_batch_rows([250], 8, 512) == 2
    assert micro_batch_rows([100], 8, 512) == 4  # 5 rows would fit, but 5 does not divide 8
    assert micro_batch_rows([30], 8, 512) == 8  # short Q&A rows: no split
    assert micro_batch_rows([600], 8, 0) == 8  # 0 turns splitting off
    assert micro_batch_rows([100], 6, 512) == 3


def test_labelled_tokens_count_their_logits_in_the_micro_batch_budget():
    """A cpt block labels every token, so its logits weigh on memory as a Q&A row's few answer tokens do not:
    coffee's two 256-token cpt blocks at once held 3.2 GB where one held 2.8 GB (bench/README.md)."""
    smollm = labelled_token_weight(vocab=49152, hidden=576, layers=30)
    gemma = labelled_token_weight(vocab=262144, hidden=640, layers=18)
    assert 0.2 < smollm < 0.3 and 1.8 < gemma < 2.2  # a big vocabulary over few layers: logits dominate
    assert micro_batch_rows([256], 8, 512, [256], smollm) == 1  # every token labelled: one block at a time
    assert micro_batch_rows([240], 8, 512, [6], smollm) == 2  # six answer tokens barely count
    assert micro_batch_rows([30], 8, 512, [8], gemma) == 8  # short Q&A rows stay whole, even on Gemma
    assert micro_batch_rows([30], 8, 512, [30], gemma) == 4  # Gemma's logits on every token: split


def test_the_memory_estimate_splits_cpt_blocks_as_training_does():
    """The estimate before loading uses the training's own micro-batch rule: a cpt-only run's activations are
    one labelled 256-token block's, half of two blocks' (which is what the rule without labels would take)."""
    import torch

    from harness.run.memory import Shape, run_estimate

    cfg = load_task(TINY).config
    shape = Shape(params=134_515_008, hidden=576, layers=30, vocab=49152)
    one = run_estimate(shape, cfg, {"cpt-lora"}, 12, torch.float32, "cpu")
    unsplit = run_estimate(shape, cfg.model_copy(update={"finetune": cfg.finetune.model_copy(
        update={"micro_batch_tokens": 0})}), {"cpt-lora"}, 12, torch.float32, "cpu")
    batch = training_settings("cpt-lora", cfg).batch_size
    assert one.activations_gb == pytest.approx(unsplit.activations_gb / batch, rel=1e-9)


def test_micro_batched_training_is_the_same_mathematics(tmp_path):
    """Gradient accumulation over micro-batches trains the same adapter as whole batches: in float32 with no
    dropout, the eval loss after every epoch and the LoRA weights agree to rounding."""
    import torch
    from safetensors.torch import load_file

    from harness.arms.finetune import train_adapter
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model
    from harness.arms.training_data import qa_examples

    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    task = load_task(TINY)
    examples = qa_examples(tok, task.knowledge.pairs, "Answer briefly.")
    longest = max(len(e["input_ids"]) for e in examples)
    runs = []
    for budget in (0, longest):  # whole batches of 4 rows, then one row at a time
        cfg = FinetuneConfig(lora_rank=4, lora_alpha=8, lora_dropout=0.0, epochs=1, batch_size=4,
                             eval_fraction=0.25, micro_batch_tokens=budget)  # 2 steps of 4 rows
        runs.append(train_adapter(model, tok, examples, cfg, 0, tmp_path / str(budget), "m", sparse_dropout=False))
    whole, micro = runs
    assert (whole.micro_batch, micro.micro_batch) == (4, 1)
    evals = [[h["eval_loss"] for h in r.log_history if "eval_loss" in h] for r in runs]
    assert len(evals[0]) == 1 and evals[0] == pytest.approx(evals[1], rel=1e-4)
    a, b = (load_file(str(r.path / "adapter_model.safetensors")) for r in runs)
    assert a.keys() == b.keys()
    # Adam divides by the gradient's running size, so an element with a near-zero gradient can round either way;
    # the adapter as a whole must agree. The LoRA B matrices start at zero: all they hold is what training taught.
    learnt = [k for k in a if "lora_B" in k]
    moved = sum(a[k].pow(2).sum() for k in learnt).sqrt()
    apart = sum((a[k] - b[k]).pow(2).sum() for k in learnt).sqrt()
    print(f"moved {moved:.4g}, apart {apart:.4g}")
    assert moved > 1e-2 and apart / moved < 1e-3
    assert torch.get_default_dtype() == torch.float32


def test_the_share_of_layers_recomputed_fits_a_row_to_the_budget():
    from harness.arms.recompute import recomputed_share

    assert recomputed_share(650, 4, 512, 0.0) == pytest.approx(1 - 512 / 650)  # coffee's longest RAFT row
    assert recomputed_share(400, 4, 512, 0.25) == 0  # fits: nothing recomputed
    assert recomputed_share(650, 4, 0, 0.25) == 0  # budget 0: no limit
    assert recomputed_share(256, 256, 512, 2.0) == 1  # Gemma's logits alone overrun: every layer, the best there is


def test_rows_over_the_budget_keep_fewer_activations_and_train_the_same_adapter(tmp_path):
    """A row longer than finetune.micro_batch_tokens recomputes its lowest layers in the backward pass: the tensors
    kept for the backward pass shrink with the layers recomputed, and the adapter (dropout on: the recomputed
    forward must draw the same masks) is the one the plain step trains."""
    import torch
    from safetensors.torch import load_file

    from harness.arms.finetune import lora_model, label_weight, train_adapter
    from harness.arms.recompute import LayerRecompute
    from harness.arms.training_data import qa_examples
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    model, tok = load_generator(resolve_model(DEFAULT_MODEL))
    examples = qa_examples(tok, load_task(TINY).knowledge.pairs, "Answer briefly.")
    shortest = min(len(e["input_ids"]) for e in examples)

    lora = lora_model(model, FinetuneConfig(lora_rank=4, lora_alpha=8), None, sparse_dropout=True)
    ids = torch.tensor([examples[0]["input_ids"]])
    kept = []
    n = ids.shape[1]
    for budget, half in ((n, False), (n // 2, True)):  # the row fits; the row is about twice the budget
        recompute = LayerRecompute(lora, budget_tokens=budget, label_weight=0.0)
        layers = recompute.prepare(n, 0)
        assert layers == 0 if not half else len(recompute.layers) // 2 <= layers <= len(recompute.layers) // 2 + 1
        saved = {}  # activations by storage: weights (saved for their input's gradient) are not kept copies
        weights = {p.untyped_storage().data_ptr() for p in lora.parameters()}

        def keep(t):
            if t.untyped_storage().data_ptr() not in weights:
                saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            lora.train()
            lora(input_ids=ids, use_cache=False).logits.sum().backward()
        kept.append(sum(saved.values()))
        recompute.close()
    lora.unload()
    assert not any(vars(m).get("gradient_checkpointing") for m in model.modules())
    print(f"kept for the backward pass: {kept[0] / 2**20:.1f} MB, half the layers recomputed {kept[1] / 2**20:.1f}")
    assert 0.4 < kept[1] / kept[0] < 0.65

    costliest = math.ceil(max(len(e["input_ids"]) + label_weight(model) * sum(t >= 0 for t in e["labels"])
                              for e in examples))
    runs = []
    for budget in (costliest, shortest // 2):  # one row at a time both: without recomputing, then every row over
        cfg = FinetuneConfig(lora_rank=4, lora_alpha=8, lora_dropout=0.1, epochs=1, batch_size=2, lora_layers=0.2,
                             eval_fraction=0.25, micro_batch_tokens=budget)  # the top 6 layers: a shorter backward
        runs.append(train_adapter(model, tok, examples, cfg, 0, tmp_path / str(budget), "m", sparse_dropout=True))
    plain, recomputed = runs
    assert (plain.micro_batch, recomputed.micro_batch) == (1, 1)
    assert plain.recomputed_micro_batches == 0 and recomputed.recomputed_micro_batches > 0
    a, b = (load_file(str(r.path / "adapter_model.safetensors")) for r in runs)
    learnt = [k for k in a if "lora_B" in k]
    moved = sum(a[k].pow(2).sum() for k in learnt).sqrt()
    apart = sum((a[k] - b[k]).pow(2).sum() for k in learnt).sqrt()
    print(f"moved {moved:.4g}, apart {apart:.4g}")
    assert moved > 1e-2 and apart / moved < 1e-5


def test_cpu_info_names_the_vector_features(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n")
    info = cpu_info(2, fake)
    assert info["model"] == "AMD EPYC 7B13" and info["threads"] == 2
    assert info["features"] == {"AVX2": True, "AVX-512": False, "AVX512-BF16": False, "AMX": False}
    assert info["kind"].startswith("AMD EPYC 7B13, ") and info["kind"].endswith("AVX2 (no bf16 dot products)")
    fake.write_text("model name\t: Xeon\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16\n")
    assert cpu_info(4, fake)["kind"].endswith("AVX2 + AVX-512 + AVX512-BF16 + AMX")


def test_bf16_training_is_chosen_by_flags_where_it_measured_faster():
    """AVX512-BF16 without AMX (Zen 4: epochs 1.3-1.6x faster in bf16) trains on a bf16 copy; AMX (epochs no faster
    though its products ran 6x) and AVX2 alone (products 8-70x slower) train in float32."""
    from harness.run.machine import bf16_training_pays

    def flags(*names: str) -> dict[str, bool]:
        return {n: n in names for n in ("AVX2", "AVX-512", "AVX512-BF16", "AMX")}

    assert bf16_training_pays(flags("AVX2", "AVX-512", "AVX512-BF16"))
    assert not bf16_training_pays(flags("AVX2", "AVX-512", "AVX512-BF16", "AMX"))
    assert not bf16_training_pays(flags("AVX2"))


def test_forecast_counts_tokens_by_hand_and_scales_with_this_cpus_speed():
    task = load_task(TINY)
    cfg = task.config
    table = arms(cfg)
    params, body = 1_000_000, 500_000
    slow = {f.name: f for f in forecast(task, cfg, table, list(table), params, body, (10.0, 20.0), False)}
    fast = {f.name: f for f in forecast(task, cfg, table, list(table), params, body, (10.0, 40.0), False)}
    # Arms that train nothing have no training tokens; the others do, RAFT's rows carrying passages.
    assert slow["base"].train_tokens == slow["prompt"].train_tokens == slow["rag"].train_tokens == 0
    assert slow["raft"].train_tokens > 0 and slow["finetune"].train_tokens > 0 and slow["cpt"].train_tokens > 0
    # cpt by hand: every document word once per epoch, the update's words (1 + replay) times more.
    words = sum(len(d.text.split()) for d in task.knowledge.docs)
    new = sum(len(d.text.split()) for d in task.update.docs)
    expect = int((words + new * (1 + cfg.update.replay)) * TOKENS_PER_WORD * cfg.cpt.epochs)
    assert slow["cpt"].train_tokens == expect
    # float32 twice as fast: every arm (all float32 here) takes half the time.
    for name in table:
        assert fast[name].seconds == pytest.approx(slow[name].seconds / 2)
    # bf16 training only moves the trained arms.
    bf = {f.name: f for f in forecast(task, cfg, table, list(table), params, body, (1000.0, 20.0), True)}
    assert bf["base"].seconds == pytest.approx(slow["base"].seconds) and bf["cpt"].seconds < slow["cpt"].seconds


def test_raft_lora_layers_is_raft_s_own_and_the_forecast_counts_its_shorter_backward_pass():
    task = load_task(TINY)
    cfg = task.config.model_copy(update={"finetune": task.config.finetune.model_copy(update={"lora_layers": 1.0})})
    top = cfg.model_copy(update={"raft": cfg.raft.model_copy(update={"lora_layers": 0.5})})
    # Unset, RAFT trains finetune's layers; set, only RAFT's recipe changes, with its own rate and epochs kept.
    assert training_settings("raft-lora", cfg).lora_layers == 1.0
    assert training_settings("raft-lora", top).lora_layers == 0.5
    assert training_settings("raft-lora", top).learning_rate == cfg.raft.learning_rate
    assert training_settings("qa-lora", top).lora_layers == training_settings("cpt-lora", top).lora_layers == 1.0
    table = arms(cfg)
    t = lambda c: {f.name: f for f in forecast(task, c, table, list(table), 10**6, 5 * 10**5, (10.0, 20.0), False)}
    all_layers, half = t(cfg), t(top)
    # Forward 2 + backward 2 x layers: training 4 units -> 3, answering unchanged; other arms untouched.
    assert half["raft"].train_tokens == all_layers["raft"].train_tokens
    per_unit = 10**6 * all_layers["raft"].train_tokens / (20e9 * TRAIN_EFFICIENCY["float32"])
    assert half["raft"].seconds == pytest.approx(all_layers["raft"].seconds - 4 * per_unit + 3 * per_unit)
    for name in ("finetune", "cpt", "rag"):
        assert half[name].seconds == all_layers[name].seconds


def test_run_json_and_report_name_the_cpu(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["cpu"]["model"] and info["cpu"]["cores"] >= 1 and info["cpu"]["threads"] >= 1
    assert set(info["cpu"]["features"]) == {"AVX2", "AVX-512", "AVX512-BF16", "AMX"}
    assert info["cpu"]["kind"] in (tiny_run / "report.md").read_text()
    assert "Partial report" not in (tiny_run / "report.md").read_text() and "partial" not in info


def test_forecast_of_a_task_without_pairs_counts_the_pairs_it_will_write(tmp_path):
    import shutil

    from harness.pairs.candidates import candidates
    from harness.pairs.construct import build, per_fact
    from harness.run.forecast import BUILT_KEPT_SHARE, KEPT_SHARE, pair_writing

    shutil.copytree(TINY, tmp_path / "tiny")
    (tmp_path / "tiny" / "train.jsonl").unlink()
    (tmp_path / "tiny" / "updates" / "train.jsonl").unlink(missing_ok=True)
    task = load_task(tmp_path / "tiny")
    cfg, table = task.config, arms(task.config)
    r, g = cfg.retrieval, cfg.pair_generation
    before = {f.name: f for f in forecast(task, cfg, table, list(table), 10**6, 5 * 10**5, (10.0, 20.0), False)}
    assert before["finetune"].train_tokens == 0  # no pairs: nothing to count without the writer's
    # The default writer builds the pairs here for real (no model), and the forecast counts the filters' share.
    writing, planned = pair_writing(task, cfg, 10**6, 5 * 10**5, 20.0)
    built = per_fact(build(task.knowledge.docs, r.chunk_words, r.chunk_overlap, g.facts_per_sentence).items,
                     g.phrasings)
    assert len(planned.knowledge.pairs) == round(len(built) * BUILT_KEPT_SHARE) > 0
    assert writing.seconds > 0 and writing.answer_tokens == 0  # no model asked
    after = {f.name: f for f in forecast(planned, cfg, table, list(table), 10**6, 5 * 10**5, (10.0, 20.0), False)}
    assert after["finetune"].train_tokens > 0 and after["raft"].train_tokens > 0
    # A fine-tune on built pairs trains pair_generation.epochs, not finetune.epochs.
    longer = cfg.model_copy(update={"pair_generation": g.model_copy(update={"epochs": 2 * g.epochs})})
    again = {f.name: f for f in forecast(planned, longer, table, list(table), 10**6, 5 * 10**5, (10.0, 20.0), False)}
    assert again["finetune"].train_tokens == 2 * after["finetune"].train_tokens
    # The model writer still forecasts the generator's tokens.
    model = cfg.model_copy(update={"pair_generation": g.model_copy(update={"writer": "model"})})
    writing, planned = pair_writing(task, model, 10**6, 5 * 10**5, 20.0)
    found = candidates(task.knowledge.docs, r.chunk_words, r.chunk_overlap, g.candidates, g.per_chunk)[0]
    assert len(planned.knowledge.pairs) == round(len(found) * KEPT_SHARE) > 0 and writing.answer_tokens > 0
    # Demonstrations alone read a pool: 4 x 1 of the 6 candidates, none of the update's.
    pooled, planned = pair_writing(task, model, 10**6, 5 * 10**5, 20.0, pool=1)
    assert len(found) == 6 and pooled.answer_tokens / writing.answer_tokens == pytest.approx(4 / (6 + 3), rel=0.01)
    assert not planned.update.pairs


def test_freed_memory_goes_back_to_the_system():
    """glibc keeps freed blocks below a live one; without handing them back, each arm's peak adds to the last."""
    import psutil
    import torch

    from harness.measure import release_freed_memory

    def rss() -> float:
        return psutil.Process().memory_info().rss / 2**20

    torch.ones(8 * 2**18).sum()  # one 8 MB block freed: glibc raises its mmap threshold, later blocks use the heap
    blocks = [torch.ones(8 * 2**18) for _ in range(64)]  # 512 MB
    keep = blocks[-1]  # a live block at the heap's top: glibc cannot trim below it by itself
    del blocks
    high = rss()
    release_freed_memory()
    assert high - rss() > 300 and keep.sum() > 0


def test_a_merged_copy_copies_only_what_the_adapter_changes(tmp_path):
    """load_merged shares the embeddings (and the tied head) with the base, copies the adapted layers, and gives the
    weights a full copy merged the old way gives; the base is left as it was."""
    import copy

    import peft
    import torch

    from harness.arms.finetune import TrainedAdapter, adapted_modules, load_merged
    from harness.inference.models import DEFAULT_MODEL, load_generator, resolve_model

    base, _ = load_generator(resolve_model(DEFAULT_MODEL), dtype="float32")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    lora = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, target_modules=["q_proj", "down_proj"], layers_to_transform=[28, 29]))
    torch.manual_seed(0)
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)  # a fresh LoRA's B is zero: merging it would change nothing
    lora.save_pretrained(str(tmp_path))
    adapter = TrainedAdapter(tmp_path, False, 0.0, 0, 0.0, None, 0, 0, [])
    assert adapted_modules(tmp_path) == {f"model.layers.{i}.{m}" for i in (28, 29)
                                         for m in ("self_attn.q_proj", "mlp.down_proj")}

    merged = load_merged(base, adapter)
    full = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path)).merge_and_unload()
    ours, theirs = merged.state_dict(), full.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert merged.model.embed_tokens.weight is base.model.embed_tokens.weight
    assert merged.model.layers[0].self_attn.q_proj.weight is base.model.layers[0].self_attn.q_proj.weight
    assert merged.model.layers[29].self_attn.q_proj.weight is not base.model.layers[29].self_attn.q_proj.weight
    assert not torch.equal(ours["model.layers.29.mlp.down_proj.weight"], before["model.layers.29.mlp.down_proj.weight"])
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())


def test_gpu_forecast_has_a_per_step_floor_that_a_big_models_flops_exceed():
    """On a GPU a small model is launch-bound, not FLOP-bound: its forecast is the measured per-token and
    per-decoding-step floor (one H200, bench/README.md), which grows with layers; a big model's FLOPs exceed it."""
    from harness.run.forecast import (GPU_DECODE_STEP_S, GPU_TRAIN_TOKEN_LAYER_S, GPU_TRAIN_TOKEN_S, gpu_speeds)

    task = load_task(TINY)
    cfg = task.config
    table = arms(cfg)
    speeds = gpu_speeds(750.0, 1)
    small = {f.name: f for f in forecast(task, cfg, table, list(table), 135 * 10**6, 10**8, speeds, True)}
    floored = {f.name: f for f in forecast(task, cfg, table, list(table), 135 * 10**6, 10**8, speeds, True,
                                           gpu_layers=30)}
    deeper = {f.name: f for f in forecast(task, cfg, table, list(table), 135 * 10**6, 10**8, speeds, True,
                                          gpu_layers=60)}
    ft = floored["finetune"]
    assert ft.train_seconds == pytest.approx(ft.train_tokens * (GPU_TRAIN_TOKEN_S + 30 * GPU_TRAIN_TOKEN_LAYER_S))
    assert ft.train_seconds > 10 * small["finetune"].train_seconds
    assert deeper["finetune"].train_seconds > ft.train_seconds
    # base answers the test questions in one batch, and the fresh ones before and after the update: three passes.
    new_tokens = cfg.generation.max_new_tokens * 0.75
    assert floored["base"].seconds == pytest.approx(3 * new_tokens * GPU_DECODE_STEP_S)
    # 70B parameters in few, wide layers: its FLOPs outweigh the floor, and the forecast is theirs.
    huge = {f.name: f for f in forecast(task, cfg, table, list(table), 70 * 10**9, 68 * 10**9, speeds, True,
                                        gpu_layers=4)}
    flops = {f.name: f for f in forecast(task, cfg, table, list(table), 70 * 10**9, 68 * 10**9, speeds, True)}
    assert huge["finetune"].train_seconds == pytest.approx(flops["finetune"].train_seconds)
