"""LoRA fine-tuning with the transformers Trainer, cached by content so an unchanged run reuses its adapter."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import peft
import torch
import transformers
from datasets import Dataset
from transformers import (DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, TrainingArguments,
                          set_seed)

from .config import FinetuneConfig
from .errors import HarnessError
from .generate import Messages
from .task import QAPair


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


def chat(system: str, question: str) -> Messages:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def _encode(tokenizer, system: str, pair: QAPair) -> dict[str, list[int]]:
    """Full chat as input; labels only on the answer (and its end-of-turn), so the model learns answers, not prompts."""
    prompt = chat(system, pair.question)
    full = prompt + [{"role": "assistant", "content": pair.answer}]
    p_ids = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    f_ids = tokenizer.apply_chat_template(full, tokenize=False)
    p_ids = tokenizer(p_ids, add_special_tokens=False).input_ids
    f_ids = tokenizer(f_ids, add_special_tokens=False).input_ids
    if f_ids[:len(p_ids)] != p_ids:  # a template that rewrites the prompt when an answer follows
        raise HarnessError("the model's chat template changes the prompt when an answer is appended; "
                           "cannot mask the loss to answer tokens")
    return {"input_ids": f_ids, "labels": [-100] * len(p_ids) + f_ids[len(p_ids):]}


def cache_key(model_id: str, system: str, pairs: tuple[QAPair, ...], cfg: FinetuneConfig, seed: int) -> str:
    blob = json.dumps({"model": model_id, "system": system, "pairs": [asdict(p) for p in pairs],
                       "cfg": cfg.model_dump(), "seed": seed,
                       "versions": [torch.__version__, transformers.__version__, peft.__version__]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _read_meta(path: Path, cached: bool) -> TrainedAdapter:
    meta = json.loads((path / "harness_meta.json").read_text())
    return TrainedAdapter(path=path, cached=cached, **meta)


def cached_adapter(pairs: tuple[QAPair, ...], system: str, cfg: FinetuneConfig, seed: int, cache_dir: Path,
                   model_id: str) -> TrainedAdapter | None:
    final = cache_dir / "adapters" / cache_key(model_id, system, pairs, cfg, seed)
    return _read_meta(final, cached=True) if (final / "harness_meta.json").is_file() else None


def train_adapter(base, tokenizer, pairs: tuple[QAPair, ...], system: str, cfg: FinetuneConfig, seed: int,
                  cache_dir: Path, model_id: str) -> TrainedAdapter:
    found = cached_adapter(pairs, system, cfg, seed, cache_dir, model_id)
    if found:
        return found
    final = cache_dir / "adapters" / cache_key(model_id, system, pairs, cfg, seed)
    if len(pairs) < 4:
        raise HarnessError(f"fine-tuning needs at least 4 training pairs (train.jsonl has {len(pairs)})")

    # finetune.batch_size is the global batch: under torchrun / accelerate launch each of the WORLD_SIZE
    # processes takes its share, so the same config trains the same recipe on 1 process or N (and the
    # adapter lands under the same cache key, where `harness run` finds it).
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise HarnessError(f"finetune.batch_size {cfg.batch_size} does not split evenly over {world} processes; "
                           f"choose a multiple of {world}")
    set_seed(seed)
    rows = Dataset.from_list([_encode(tokenizer, system, p) for p in pairs])
    split = rows.train_test_split(test_size=max(1, round(cfg.eval_fraction * len(rows))), seed=seed)
    train_tok = copy.deepcopy(tokenizer)
    train_tok.padding_side = "right"  # plain causal positions while training; left padding is for generation
    # An interrupted training of the same key left its epoch checkpoints here: continue from the last
    # complete one (trainer_state.json is written last; a kill mid-save leaves a folder without it).
    work = final.with_name(final.name + ".tmp")
    complete = [c for c in (work / "checkpoints").glob("checkpoint-*") if (c / "trainer_state.json").is_file()]
    for c in set((work / "checkpoints").glob("checkpoint-*")) - set(complete):
        shutil.rmtree(c)
    resume = str(max(complete, key=lambda c: int(c.name.split("-")[-1]))) if complete else None
    args = TrainingArguments(
        output_dir=str(work / "checkpoints"), seed=seed, data_seed=seed,
        learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size // world, per_device_eval_batch_size=cfg.batch_size // world,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        logging_steps=5, report_to="none", use_cpu=base.device.type == "cpu",
        bf16=base.dtype == torch.bfloat16, fp16=base.dtype == torch.float16,
        ddp_backend="gloo" if world > 1 and base.device.type == "cpu" else None,
        ddp_find_unused_parameters=False,
    )
    # LoRA layers go straight into the shared base (no second copy of the weights in memory) and are
    # unloaded afterwards, leaving the base exactly as it was for the other pipelines.
    use_cache = base.config.use_cache
    model = peft.get_peft_model(base, peft.LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    try:
        trainer = Trainer(model=model, args=args, train_dataset=split["train"], eval_dataset=split["test"],
                          data_collator=DataCollatorForSeq2Seq(train_tok, padding=True, label_pad_token_id=-100),
                          callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)])
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - start
        if trainer.is_world_process_zero():  # one writer when several processes trained together
            model.save_pretrained(str(work))
    finally:
        model.unload()
        base.config.use_cache = use_cache
        base.eval()
    state = trainer.state
    if trainer.is_world_process_zero():
        meta = {"train_seconds": seconds, "epochs_run": float(state.epoch or 0),
                "train_tokens": int(sum(len(r) for r in split["train"]["input_ids"]) * (state.epoch or 0)),
                "best_eval_loss": state.best_metric, "n_train": len(split["train"]), "n_eval": len(split["test"]),
                "processes": world, "log_history": state.log_history}
        (work / "harness_meta.json").write_text(json.dumps(meta, indent=1))
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)  # atomic: a half-trained adapter never sits under the final key
    trainer.accelerator.wait_for_everyone()  # the other ranks read the adapter rank 0 just renamed
    return _read_meta(final, cached=False)


def load_merged(base, adapter: TrainedAdapter):
    """A copy of the base with the adapter merged in: LoRA costs nothing extra at answer time."""
    model = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(adapter.path))
    return model.merge_and_unload().eval()
