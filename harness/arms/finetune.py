"""LoRA training with the transformers Trainer, for every trained arm (qa, raft, cpt: see training_data.py),
cached by content so an unchanged run reuses its adapter."""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
import transformers
from datasets import Dataset
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

from harness.arms.progress import use_loss_bar
from harness.arms.batches import (CheapestBatches, flattening_is_exact, labelled_token_weight, micro_batch_rows,
                                  token_budget)
from harness.config import FinetuneConfig
from harness.inference.cpu_share import training_callback
from harness.arms.dropout import use_sparse_dropout
from harness.arms.recompute import LayerRecompute
from harness.errors import HarnessError
from harness.inference.devices import quantized, sharded
from harness.inference.sharding import fsdp_config, layer_classes
from harness.measure import release_freed_memory, return_free_pages
from harness.arms.training_data import IGNORE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedAdapter:
    path: Path
    cached: bool
    train_seconds: float  # as measured when the adapter was trained, even when reused from cache
    train_tokens: int  # tokens the optimiser saw, all epochs
    epochs_run: float
    best_eval_loss: float | None
    n_train: int
    n_eval: int
    log_history: list[dict]
    processes: int = 1  # how many data-parallel processes trained it
    kind: str = "qa"  # qa | raft | cpt: what it was trained on
    start_from: str | None = None  # the adapter (cache key) this one continued, if it did not start fresh
    batches: dict | None = None  # how many training and eval batches were flattened or padded (batches.py)
    dropout: str = "torch"  # how LoRA dropout masks were drawn: torch | sparse (dropout.py)
    micro_batch: int | None = None  # rows computed at once within a step (gradients accumulated); None: older
    recomputed_micro_batches: int | None = None  # micro-batches over the budget, checkpointed (recompute.py)


def labelled_loss(model, input_ids, attention_mask, labels,
                  position_ids=None) -> tuple[torch.Tensor, torch.Tensor, object]:
    """Summed next-token cross-entropy over labelled positions, their count, and the model output.

    A Q&A example labels ~6 of ~50 tokens, yet the LM head (vocabulary x hidden, about a fifth of a small
    model's FLOPs per token) and the softmax would run on all of them. Only positions whose next token is
    labelled (the union over the batch, passed to the model's own `logits_to_keep`, so DDP and peft see an
    ordinary forward) get logits; the loss is the same number."""
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(0).nonzero().flatten()
    # A flattened batch (batches.py) has no attention mask but position ids that restart at each example.
    extra = {} if position_ids is None else {"position_ids": position_ids}
    out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False, **extra)
    picked = targets[:, keep]
    total = torch.nn.functional.cross_entropy(out.logits.float().transpose(1, 2), picked, ignore_index=IGNORE,
                                              reduction="sum")
    return total, (picked != IGNORE).sum(), out


def batch_loss(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, object]:
    """`labelled_loss` of a collated batch, padded or flattened (batches.py)."""
    return labelled_loss(model, batch["input_ids"], batch.get("attention_mask"), batch["labels"],
                         batch.get("position_ids"))


class LabelledOnlyTrainer(Trainer):
    """The Trainer, with logits computed only where labels are (see `labelled_loss`), and the layers a micro-batch
    over the memory budget must recompute switched on before it runs (`recompute`, recompute.py)."""

    def __init__(self, *args, recompute: LayerRecompute | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.recompute = recompute
        # `compute_loss` divides by the labelled count of the whole accumulated step itself; telling the Trainer
        # so makes it count that step's labels and not divide again by the micro-batch count.
        self.model_accepts_loss_kwargs = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.recompute is not None and model.training and torch.is_grad_enabled():
            self.recompute.prepare(inputs["input_ids"].numel(), int((inputs["labels"] != IGNORE).sum()))
        total, count, out = batch_loss(model, inputs)
        if num_items_in_batch is not None and model.training:
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
        else:
            loss = total / count.clamp(min=1)
        return (loss, out) if return_outputs else loss


def top_layers(base, cfg: FinetuneConfig) -> list[int] | None:
    """The layer indices that carry LoRA (`finetune.lora_layers`, a share counted from the top); None: all."""
    if cfg.lora_layers >= 1.0:
        return None
    n = base.config.get_text_config(decoder=True).num_hidden_layers
    return list(range(n - max(1, math.ceil(cfg.lora_layers * n)), n))


def cache_key(model_id: str, kind: str, examples: list[dict], cfg: FinetuneConfig, seed: int, base,
              start_from: TrainedAdapter | None = None, flatten: bool | None = None,
              sparse_dropout: bool = False, device_type: str | None = None) -> str:
    """Everything that shapes an adapter: the exact token ids and labels it sees (so prompts, templates and
    data all count), the recipe, the seed, the library versions, and where and in which precision it trains
    (a QLoRA or bf16 adapter is not reused for a float32 run, nor CPU seconds priced at a GPU rate).

    Not how the work was laid out: the number of processes (finetune.batch_size is the global batch) and the
    micro-batches a step is computed in (`micro_batch_tokens`, and the rows at once it gives) change only which
    dropout masks are drawn, as two seeds would, so an adapter `harness train` made on N processes is the one
    `harness run` finds on one. harness_meta.json records both (`processes`, `micro_batch`). Nor whether the
    processes sharded the base (FSDP): `device_type` is where it trains, for a base FSDP loaded off the GPU, and
    the 4-bit storage dtype FSDP needs is left out (`quantization_identity`)."""
    data = hashlib.sha256(json.dumps([(e["input_ids"], e["labels"]) for e in examples]).encode()).hexdigest()
    quant = quantization_identity(getattr(base.config, "quantization_config", None))
    recipe = cfg.model_dump(exclude={"micro_batch_tokens"})
    fields = {"model": model_id, "kind": kind, "data": data, "cfg": recipe, "seed": seed,
              "device": device_type or base.device.type, "dtype": str(base.dtype), "quantization": quant,
              "versions": [torch.__version__, transformers.__version__, peft.__version__]}
    if start_from is not None:  # only when set, so adapters trained from scratch keep their earlier keys
        fields["start_from"] = start_from.path.name
    if flatten is not None:  # a layout forced by a bench; the automatic choice gives the same loss
        fields["flatten"] = flatten
    if sparse_dropout:  # another random stream: not the adapter torch's dropout would have trained
        fields["dropout"] = "sparse"
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def quantization_identity(quant) -> str:
    """The quantization config as the cache key reads it: bitsandbytes' 4-bit weights packed in uint8 words, as
    outside FSDP, whatever `bnb_4bit_quant_storage` a QLoRA+FSDP load chose (the same 4-bit numbers)."""
    storage = getattr(quant, "bnb_4bit_quant_storage", torch.uint8)
    if storage != torch.uint8:
        quant = copy.copy(quant)
        quant.bnb_4bit_quant_storage = torch.uint8
    return str(quant)


def label_weight(base) -> float:
    """What a labelled token's logits add to its training memory, for this model (batches.labelled_token_weight)."""
    text = base.config.get_text_config(decoder=True)
    return labelled_token_weight(text.vocab_size, text.hidden_size, text.num_hidden_layers)


def rows_at_once(base, examples: list[dict], rows: int, cfg: FinetuneConfig, budget: int | None = None) -> int:
    """The micro-batch a training of `examples` computes at once (batches.py), its labelled tokens weighed by
    this model's vocabulary against its layers; `budget` in place of cfg.micro_batch_tokens (a GPU's)."""
    budget = cfg.micro_batch_tokens if budget is None else budget
    return micro_batch_rows([len(e["input_ids"]) for e in examples], rows, budget,
                            [sum(t != IGNORE for t in e["labels"]) for e in examples], label_weight(base))


def _read_meta(path: Path, cached: bool) -> TrainedAdapter:
    meta = json.loads((path / "harness_meta.json").read_text())
    return TrainedAdapter(path=path, cached=cached, **meta)


def cached_adapter(key: str, cache_dir: Path) -> TrainedAdapter | None:
    final = cache_dir / "adapters" / key
    return _read_meta(final, cached=True) if (final / "harness_meta.json").is_file() else None


def eval_split(examples: list[dict], cfg: FinetuneConfig, seed: int):
    """The Trainer's train/eval split: a fixed share, at least one example, the same for the same seed and size."""
    return Dataset.from_list(examples).train_test_split(
        test_size=max(1, round(cfg.eval_fraction * len(examples))), seed=seed)


def train_adapter(base, tokenizer, examples: list[dict], cfg: FinetuneConfig, seed: int, cache_dir: Path,
                  model_id: str, kind: str = "qa", start_from: TrainedAdapter | None = None,
                  flatten: bool | None = None, sparse_dropout: bool | None = None,
                  fsdp: bool = False) -> TrainedAdapter:
    """A LoRA adapter trained on `examples` (token ids + labels), or the cached one with the same key.
    With `start_from`, training continues that adapter's weights instead of a fresh LoRA. `flatten` forces
    the batch layout (batches.py) for benches; None flattens where it is checked exact and cheaper.
    `sparse_dropout` (dropout.py) defaults to on a CPU, where drawing torch's dropout masks is a quarter of a step.
    With `fsdp` (sharding.py) the processes shard `base`, loaded off the GPU, as they train: it is left wrapped by
    FSDP, no longer usable (`harness train` loads it again for the next training)."""
    device_type = "cuda" if fsdp else base.device.type
    if sparse_dropout is None:
        sparse_dropout = device_type == "cpu" and cfg.lora_dropout > 0
    world, rows, budget, micro = _step_layout(base, examples, cfg, fsdp)
    key = cache_key(model_id, kind, examples, cfg, seed, base, start_from, flatten, sparse_dropout, device_type)
    found = cached_adapter(key, cache_dir)
    if found:
        return found
    final = cache_dir / "adapters" / key
    if len(examples) < 4:
        raise HarnessError(f"{kind} training needs at least 4 examples (it has {len(examples)})")
    set_seed(seed)
    split = eval_split(examples, cfg, seed)
    train_tok = copy.deepcopy(tokenizer)
    train_tok.padding_side = "right"  # plain causal positions while training; left padding is for generation
    work = final.with_name(final.name + ".tmp")
    resume = _last_checkpoint(work / "checkpoints")
    args = training_arguments(cfg, work / "checkpoints", seed, rows, micro, device_type, base.dtype, world,
                              layer_classes(base) if fsdp else None)
    # LoRA layers go straight into the shared base (no second copy of the weights in memory) and are
    # unloaded afterwards, leaving the base exactly as it was for the other pipelines.
    use_cache = base.config.use_cache
    model = lora_model(base, cfg, start_from, sparse_dropout)
    recompute = LayerRecompute(model, budget, label_weight(base))
    try:
        trainer, batches = _labelled_only_trainer(model, args, split, train_tok, base, cfg, flatten, examples, recompute)
        _announce(trainer, "continuing" if start_from else "training", kind, split, cfg.epochs, rows, micro)
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - start
        _save(trainer, model, work, fsdp)
    finally:
        recompute.close()
        if not fsdp:  # FSDP replaced the base's layers by its shards: nothing to hand back
            model.unload()
        base.config.use_cache = use_cache
        base.eval()
        release_freed_memory()
    state = trainer.state
    if trainer.is_world_process_zero():
        _publish(work, final, {
            "train_seconds": seconds, "epochs_run": float(state.epoch or 0),
            "train_tokens": int(sum(len(r) for r in split["train"]["input_ids"]) * (state.epoch or 0)),
            "best_eval_loss": state.best_metric, "n_train": len(split["train"]), "n_eval": len(split["test"]),
            "processes": world, "kind": kind, "log_history": state.log_history, "batches": batches.counts,
            "start_from": start_from.path.name if start_from else None,
            "dropout": "sparse" if sparse_dropout else "torch", "micro_batch": micro,
            "recomputed_micro_batches": recompute.micro_batches})
    trainer.accelerator.wait_for_everyone()  # the other ranks read the adapter rank 0 just renamed
    return _read_meta(final, cached=False)


def _step_layout(base, examples: list[dict], cfg: FinetuneConfig, fsdp: bool) -> tuple[int, int, int, int]:
    """The processes, the rows each takes per step, the memory budget in tokens (the task's on a CPU, from free
    memory on a GPU) and the rows computed at once. Under FSDP the base is not on its GPU yet to measure, and the
    shards leave most of it free: no micro-batches, no recomputation."""
    world = _training_processes(cfg)
    rows = cfg.batch_size // world
    budget = 0 if fsdp else token_budget(base, cfg.micro_batch_tokens)
    return world, rows, budget, rows_at_once(base, examples, rows, cfg, budget)


def _save(trainer: Trainer, model, work: Path, fsdp: bool) -> None:
    """The trained LoRA weights into `work`, written by one process when several trained together. Under FSDP each
    holds a shard: every one joins the gathering of the full state dict, from which rank 0 writes the same adapter
    files as without FSDP."""
    full = {"state_dict": trainer.accelerator.get_state_dict(trainer.model)} if fsdp else {}
    if trainer.is_world_process_zero():
        model.save_pretrained(str(work), **full)


def _announce(trainer, doing: str, kind: str, split, epochs: int, rows: int, micro: int) -> None:
    """One line on what trains, then one progress bar with its loss, in place of the Trainer's own output."""
    log.info(f"{doing} {kind} adapter: {len(split['train'])} examples, {len(split['test'])} held out for eval "
             f"loss, up to {epochs} epochs" + (f", batches of {rows} computed {micro} rows at a time"
                                               if micro < rows else ""))
    use_loss_bar(trainer, f"{doing} {kind}")


def _training_processes(cfg: FinetuneConfig) -> int:
    """How many data-parallel processes train (WORLD_SIZE), checked to split finetune.batch_size evenly.

    finetune.batch_size is the global batch: under torchrun / accelerate launch each process takes its share, so
    the same config trains the same recipe on 1 process or N (and the adapter lands under the same cache key,
    where `harness run` finds it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise HarnessError(f"finetune.batch_size {cfg.batch_size} does not split evenly over {world} processes; "
                           f"choose a multiple of {world}")
    return world


def _last_checkpoint(checkpoints: Path) -> str | None:
    """The last complete epoch checkpoint an interrupted training of the same key left, to continue from.

    trainer_state.json is written last, so a kill mid-save leaves a folder without it: such folders are removed."""
    complete = [c for c in checkpoints.glob("checkpoint-*") if (c / "trainer_state.json").is_file()]
    for c in set(checkpoints.glob("checkpoint-*")) - set(complete):
        shutil.rmtree(c)
    return str(max(complete, key=lambda c: int(c.name.split("-")[-1]))) if complete else None


def training_arguments(cfg: FinetuneConfig, checkpoints: Path, seed: int, rows: int, micro: int, device_type: str,
                       dtype: torch.dtype, world: int, fsdp_layers: list[str] | None = None) -> TrainingArguments:
    """The Trainer's settings: `rows` per process and step, computed `micro` at a time; an eval and a checkpoint
    each epoch, keeping the best by eval loss; precision and device from the base's (`device_type`, `dtype`).
    One process trains on one device (`one_device`). With `fsdp_layers` (the model's decoder layer classes) the
    processes shard the base with FSDP (sharding.fsdp_config) instead of each holding it whole (DDP)."""
    return one_device(TrainingArguments(
        output_dir=str(checkpoints), seed=seed, data_seed=seed,
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, weight_decay=cfg.weight_decay,
        per_device_train_batch_size=micro, gradient_accumulation_steps=rows // micro,
        per_device_eval_batch_size=rows,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        prediction_loss_only=True, logging_steps=5, report_to="none", use_cpu=device_type == "cpu",
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        ddp_backend="gloo" if world > 1 and device_type == "cpu" else None,
        ddp_find_unused_parameters=False,
        **({"fsdp": True, "fsdp_config": fsdp_config(fsdp_layers)} if fsdp_layers is not None else {}),
    ), world)


def one_device(args: TrainingArguments, world: int) -> TrainingArguments:
    """`args` with a single process pinned to one GPU.

    With several GPUs visible and no launcher, transformers counts them all (`n_gpu`) and the Trainer wraps the
    model in nn.DataParallel, which scatters every tensor argument over the GPUs: `labelled_loss`'s
    `logits_to_keep` index too, so logits and targets stop lining up, and the batch grows n_gpu-fold under the
    same cache key. Data-parallel training is `harness train` under torchrun (one process per GPU, DDP); a model
    too big for one GPU is spread over them by its device_map (models.load_generator), which the Trainer runs
    as one model (transformers pins n_gpu to 1 itself then, through the same attribute)."""
    if world == 1 and args.n_gpu > 1:
        log.info("%d GPUs visible to one process: training on one (launch `harness train` with torchrun for "
                 "data-parallel training)", args.n_gpu)
        args._n_gpu = 1
    return args


def lora_model(base, cfg: FinetuneConfig, start_from: TrainedAdapter | None, sparse_dropout: bool):
    """`base` with trainable LoRA layers: a fresh LoRA, or `start_from`'s weights to continue."""
    if start_from is not None:
        model = peft.PeftModel.from_pretrained(base, str(start_from.path), is_trainable=True)
    else:
        model = peft.get_peft_model(base, peft.LoraConfig(
            r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules, task_type="CAUSAL_LM", layers_to_transform=top_layers(base, cfg)))
    if sparse_dropout:
        use_sparse_dropout(model)
    return model


def _labelled_only_trainer(model, args: TrainingArguments, split, tokenizer, base, cfg: FinetuneConfig,
                           flatten: bool | None, examples: list[dict],
                           recompute: LayerRecompute) -> tuple[LabelledOnlyTrainer, CheapestBatches]:
    """The Trainer for `model` on the train/eval `split`, with early stopping, and the collator whose counts of
    flattened and padded batches the adapter's metadata records."""
    if flatten is None:
        # Measured on coffee (bench/precision.py, 3 seeds): flattening makes a float32 epoch 1.27x faster at a
        # held-out loss within the seed spread, and a bf16 epoch no faster (21.9 vs 22.2 s), so bf16 pads.
        # Proving it exact runs the base, which FSDP has not placed yet: FSDP pads (the same loss).
        flatten = base.dtype == torch.float32 and not args.fsdp and _flattens(model, tokenizer, examples, base)
    batches = CheapestBatches(tokenizer, base, flatten)
    trainer = LabelledOnlyTrainer(
        model=model, args=args, train_dataset=split["train"], eval_dataset=split["test"], data_collator=batches,
        recompute=recompute, callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience),
                   *([training_callback(), ReturnFreePages()] if args.use_cpu else [])])
    return trainer, batches


# Whether packed rows stay apart is a property of the model's attention code, not of the rows: proven once for a
# model, it holds for every later training in the process (a run trains up to six adapters on one base).
_PROVEN_FLAT: set[tuple] = set()


def _flattens(model, tokenizer, examples: list[dict], base) -> bool:
    key = (type(base).__name__, base.config.name_or_path, getattr(base.config, "_attn_implementation", None),
           str(base.dtype), base.device.type)
    if key not in _PROVEN_FLAT and flattening_is_exact(model, tokenizer, examples, batch_loss):
        _PROVEN_FLAT.add(key)  # a failed check is not kept: it may only have lacked two rows to compare
    return key in _PROVEN_FLAT


class ReturnFreePages(TrainerCallback):
    """Free pages back to the system after each micro-batch: rows of new lengths otherwise leave the heap
    fragmented and the process creeping up step after step (48 of coffee's RAFT rows: 2,870 MB peak without,
    2,727 MB with, at the same loss; bench/README.md)."""

    # A step's last micro-batch ends in on_step_end (after the optimiser step), the others in on_substep_end.
    def on_substep_end(self, args, state, control, **kwargs):
        return_free_pages()

    def on_step_end(self, args, state, control, **kwargs):
        return_free_pages()


def _publish(work: Path, final: Path, meta: dict) -> None:
    """Move a finished adapter from its work folder to its final key, with its metadata and without checkpoints.
    The rename is atomic: a half-trained adapter never sits under the final key."""
    (work / "harness_meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)


def adapted_modules(adapter_dir: Path) -> set[str]:
    """The base's modules an adapter changes, by name (`model.layers.0.self_attn.q_proj`), read from the names of
    its saved tensors (`base_model.model.<module>.lora_A.weight`)."""
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="pt") as f:
        names = list(f.keys())
    return {n.removeprefix("base_model.model.").split(".lora_")[0] for n in names}


def answers_unmerged(base) -> bool:
    """Whether an adapter answers attached to `base` (`attach_adapter`) rather than merged into a copy of it
    (`load_merged`): for a quantized base, whose copy would be a second quantized model and whose merge rounds
    the LoRA product into 4 or 8 bits, and for a base spread over several GPUs because one cannot hold it, beside
    which a copy of its changed layers may not fit either. A full-precision base on one device merges (its numbers
    are the committed examples')."""
    return quantized(base) or sharded(base)


def attach_adapter(base, adapter: TrainedAdapter):
    """The adapter's LoRA layers put into `base` itself, unmerged: no weight is copied, and each forward pass adds
    the small LoRA product. `detach_adapter` takes them out again, leaving the base as it was."""
    return peft.PeftModel.from_pretrained(base, str(adapter.path)).eval()


def detach_adapter(model) -> None:
    """Undo `attach_adapter` (the base answers for itself again); a merged copy (`load_merged`) needs nothing:
    dropping it frees it."""
    if isinstance(model, peft.PeftModel):
        model.unload()


def answering_model(base, adapter: TrainedAdapter):
    """What answers for `adapter`: attached to the base where that saves a copy (`answers_unmerged`), else a
    merged copy."""
    return attach_adapter(base, adapter) if answers_unmerged(base) else load_merged(base, adapter)


def load_merged(base, adapter: TrainedAdapter):
    """A copy of the base with the adapter merged in: LoRA costs nothing extra at answer time.

    Only the weights of the layers the adapter changes are copied. The rest (embeddings and the tied LM head,
    norms, layers below the lowest LoRA) stay the base's own tensors, which merging never writes: the same
    numbers, and 113 MB less for SmolLM2 (its embeddings), 670 MB for Gemma 3 270M, while an arm answers."""
    changed = adapted_modules(adapter.path)
    shared = {id(p): p for name, p in base.named_parameters() if name.rpartition(".")[0] not in changed}
    model = peft.PeftModel.from_pretrained(copy.deepcopy(base, shared), str(adapter.path))
    return model.merge_and_unload().eval()
