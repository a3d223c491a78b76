"""The five ways of answering, behind one interface: build from knowledge, answer a batch, report costs.

The runner and the reports only ever call `build`, `add_documents`, `answer` and `costs`; they never
know which pipeline they hold. Test answers never reach a pipeline: `answer` gets question strings only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from .config import TaskConfig
from .answerlog import AnswerLog
from .finetune import TrainedAdapter, cached_adapter, chat, load_merged, train_adapter
from .generate import Messages, generate
from .retrieval import Passage, VectorIndex, cached_index
from .task import Document, Knowledge


@dataclass
class Shared:
    """What every pipeline builds on: one base model load, one embedder, one config."""

    model: object
    tokenizer: object
    embedder: object
    config: TaskConfig
    model_id: str
    cache_dir: Path
    log: AnswerLog = field(default_factory=AnswerLog)
    embedder_id: str = ""  # what --embedder named: part of the index cache key
    engine: object | None = None  # a VllmEngine with --engine vllm; None answers through transformers
    _merged: dict = field(default_factory=dict)

    def merged(self, adapter: TrainedAdapter):
        # finetune and finetune+rag share one merged copy instead of each holding its own.
        if adapter.path not in self._merged:
            self._merged.clear()
            self._merged[adapter.path] = load_merged(self.model, adapter)
        return self._merged[adapter.path]

    def release_merged(self) -> None:
        """Drop the merged copy before training another adapter, so two never sit in memory at once."""
        self._merged.clear()


@dataclass(frozen=True)
class Answer:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    passages: tuple[Passage, ...] = ()


class Pipeline:
    name = ""
    retrieves = False

    def __init__(self, shared: Shared):
        self.shared = shared
        self.cfg = shared.config
        self.model = shared.model
        self.index: VectorIndex | None = None

    def build(self, knowledge: Knowledge) -> None:
        """Everything done once, before any question: indexing, training, choosing examples."""
        if self.retrieves:
            r = self.cfg.retrieval
            s = self.shared
            self.index = cached_index(s.embedder, s.embedder_id, knowledge.docs, r.chunk_words, r.chunk_overlap,
                                      s.cache_dir)

    def add_documents(self, docs: tuple[Document, ...]) -> None:
        """New documents arrive; take them in without rebuilding (only a retriever can)."""
        if self.index is not None:
            self.index.add(docs)

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        raise NotImplementedError

    def answer(self, questions: list[str]) -> list[Answer]:
        found = self.index.search(questions, self.cfg.retrieval.top_k) if self.index else [[] for _ in questions]
        gen = self.cfg.generation
        prompts = [self.messages(q, p) for q, p in zip(questions, found)]
        if self.shared.engine is not None:
            outs = self.shared.engine.generate(self.shared.tokenizer, prompts, gen.max_new_tokens, self.adapter_path)
            return [Answer(o.text, o.prompt_tokens, o.new_tokens, o.seconds, tuple(p)) for o, p in zip(outs, found)]
        outs = generate(self.model, self.shared.tokenizer, prompts,
                        gen.max_new_tokens, gen.batch_size, desc=f"answering [{self.name}]",
                        log=self.shared.log, model_tag=self.model_tag)
        return [Answer(o.text, o.prompt_tokens, o.new_tokens, o.seconds, tuple(p)) for o, p in zip(outs, found)]

    @property
    def model_tag(self) -> str:
        """Names the weights that answer, for the answer log: the base model unless an adapter is merged."""
        return "base"

    @property
    def adapter_path(self) -> str | None:
        return None

    def costs(self) -> dict[str, float | int | bool | None]:
        return {"index_mb": self.index.nbytes / 1e6 if self.index else None,
                "index_kind": self.index.kind if self.index else None,
                "index_chunks": len(self.index.passages) if self.index else None}


def _context_prompt(instruction: str, question: str, passages: list[Passage]) -> Messages:
    context = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, 1))
    return [{"role": "system", "content": instruction},
            {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"}]


class BasePipeline(Pipeline):
    """Control: the untouched model, the bare question."""

    name = "base"

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        return [{"role": "user", "content": question}]


class PromptPipeline(Pipeline):
    """System instruction plus k few-shot examples drawn (seeded) from the training pairs."""

    name = "prompt"

    def build(self, knowledge: Knowledge) -> None:
        super().build(knowledge)
        k = min(self.cfg.prompt.few_shot, len(knowledge.pairs))
        self.shots = random.Random(self.cfg.seed).sample(list(knowledge.pairs), k)

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        turns: Messages = [{"role": "system", "content": self.cfg.prompt.system}]
        for s in self.shots:
            turns += [{"role": "user", "content": s.question}, {"role": "assistant", "content": s.answer}]
        return turns + [{"role": "user", "content": question}]


class RagPipeline(Pipeline):
    """Top-k passages from a FAISS index over the task's documents, placed in the prompt."""

    name = "rag"
    retrieves = True

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        return _context_prompt(self.cfg.prompt.rag_instruction, question, passages)


class FinetunePipeline(Pipeline):
    """A LoRA adapter trained on the training pairs, merged into a copy of the base weights."""

    name = "finetune"

    def build(self, knowledge: Knowledge) -> None:
        super().build(knowledge)
        s = self.shared
        args = (knowledge.pairs, self.cfg.prompt.system, self.cfg.finetune, self.cfg.seed, s.cache_dir, s.model_id)
        if cached_adapter(*args) is None:
            self.model = None
            s.release_merged()  # training is coming: don't hold the previous merged copy through it
        self.adapter = train_adapter(s.model, s.tokenizer, *args)
        # vLLM serves the adapter itself; only the transformers path needs the merged weights.
        self.model = s.merged(self.adapter) if s.engine is None else s.model

    @property
    def adapter_path(self) -> str | None:
        return str(self.adapter.path)

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        return chat(self.cfg.prompt.system, question)  # the format it was trained on

    @property
    def model_tag(self) -> str:
        return f"adapter:{self.adapter.path.name}"

    def costs(self) -> dict[str, float | int | bool | None]:
        a = self.adapter
        size = sum(f.stat().st_size for f in a.path.iterdir() if f.name.startswith("adapter_model"))
        return {**super().costs(), "adapter_mb": size / 1e6, "train_seconds": a.train_seconds,
                "train_tokens": a.train_tokens, "epochs_run": a.epochs_run, "adapter_cached": a.cached,
                "best_eval_loss": a.best_eval_loss, "adapter": a.path.name, "log_history": a.log_history}


class FinetuneRagPipeline(FinetunePipeline):
    """The fine-tuned weights answering from retrieved passages."""

    name = "finetune+rag"
    retrieves = True

    def messages(self, question: str, passages: list[Passage]) -> Messages:
        return _context_prompt(self.cfg.prompt.rag_instruction, question, passages)


PIPELINES: dict[str, type[Pipeline]] = {p.name: p for p in
                                        (BasePipeline, PromptPipeline, RagPipeline, FinetunePipeline,
                                         FinetuneRagPipeline)}
