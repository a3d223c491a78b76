"""The typed schema of `task.yaml`. Every key is optional except `name`; defaults live here, once."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

METRICS = ("exact_match", "contains", "f1", "rouge_l", "semantic")


class _Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid")


class PromptConfig(_Strict):
    system: str = "Answer the question with a short phrase only."
    few_shot: int = Field(3, ge=0, le=32)
    rag_instruction: str = "Use the context to answer. Answer with a short phrase only."


class RetrievalConfig(_Strict):
    chunk_words: int = Field(120, ge=16, le=2000)
    chunk_overlap: int = Field(30, ge=0)
    top_k: int = Field(3, ge=1, le=50)


class FinetuneConfig(_Strict):
    lora_rank: int = Field(16, ge=1, le=512)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    epochs: int = Field(8, ge=1, le=200)
    batch_size: int = Field(8, ge=1, le=1024)
    weight_decay: float = Field(0.0, ge=0.0)
    eval_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    early_stopping_patience: int = Field(2, ge=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class GenerationConfig(_Strict):
    max_new_tokens: int = Field(32, ge=1, le=4096)
    batch_size: int = Field(16, ge=1, le=1024)


class TaskConfig(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    metric: Literal["exact_match", "contains", "f1", "rouge_l", "semantic"] = "contains"
    seed: int = 0
    prompt: PromptConfig = PromptConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    generation: GenerationConfig = GenerationConfig()
