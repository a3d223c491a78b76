"""One pipeline class runs every arm: weights x context x demonstrations, as declared in harness/arms/catalog.py.

The runner and the reports only call `build`, `rebuild`, `add_documents`, `answer` and `costs`; they never
know which arm they hold. Test answers never reach a pipeline: `answer` gets question strings only, and the
demonstration pool it draws from was cleared of test answers by the harness (harness/task/demo_pool.py).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.arms import catalog as arms_mod
from harness.inference.answerlog import AnswerLog
from harness.config import ArmConfig, FinetuneConfig, TaskConfig
from harness.task.demo_pool import DemoPool, draw
from harness.arms.finetune import TrainedAdapter, answering_model, answers_unmerged, detach_adapter, train_adapter
from harness.arms.precision import cast_copy
from harness.measure import release_freed_memory
from harness.inference.generate import generate
from harness.inference.gpu import answer_batch, free_bytes, kv_bytes_per_token, park
from harness.retrieval.registry import build_retriever
from harness.metrics import score
from harness.names import CONTINUED, NOT_RETRAINED, NOTHING_TO_REBUILD, REINDEXED, RETRAINED
from harness.prompts import Demonstration, Messages, chat_template, messages
from harness.retrieval.chunking import Passage
from harness.task.types import Document, Knowledge, QAPair
from harness.task.taught import all_built
from harness.arms.training_data import (all_chunks, cpt_blocks, qa_examples, raft_examples, raft_mix, sample_cpt,
                                        sample_raft)


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
    # The base LoRA trains on, as given: a bf16 copy where precision.py found bf16 fast and faithful, else `model`.
    train_model: object | None = None
    # `harness train`'s processes shard the base with FSDP as they train (sharding.py); each training uses it up.
    fsdp: bool = False
    _merged: dict = field(default_factory=dict)
    # A copy in another precision is held only while an adapter trains, then cast again from `model` (the same
    # numbers) for the next: answering holds the merged copy instead (270 MB for SmolLM2 in bf16). Kept here, not
    # in `train_model`, so every `dataclasses.replace` of this Shared holds the one copy and lets go of it at once.
    _training: dict = field(default_factory=dict)
    # Where the base was before vLLM's turn moved it to the CPU ("device"), shared by every replace of this Shared.
    _parked: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train_model is not None and self.train_model is not self.model:
            self._training.update(model=self.train_model, dtype=next(self.train_model.parameters()).dtype)
        self.train_model = None

    @property
    def training_base(self):
        if "dtype" not in self._training:
            return self.model
        if self._training.get("model") is None:
            self._training["model"] = cast_copy(self.model, self._training["dtype"])
        return self._training["model"]

    def release_training_copy(self) -> None:
        self._training.pop("model", None)

    def merged(self, adapter: TrainedAdapter):
        """The model that answers with `adapter`: a merged copy, or the base with the adapter attached where that
        saves a copy (finetune.answering_model). Arms on the same adapter share it; only one is held at a time."""
        if adapter.path not in self._merged:
            self.release_merged()
            self.release_training_copy()
            self._merged[adapter.path] = answering_model(self.model, adapter)
            # The training's and the merge's freed memory, returned before answering: answering an arm is its peak.
            release_freed_memory()
        return self._merged[adapter.path]

    def base(self):
        """The base model answering for itself: an adapter attached to it is taken out first."""
        if answers_unmerged(self.model):
            self.release_merged()
        return self.model

    def release_merged(self) -> None:
        """Drop the merged copy (or take the attached adapter out of the base) before training another adapter,
        so two never sit in memory at once and training starts from the bare base."""
        for model in self._merged.values():
            detach_adapter(model)
        self._merged.clear()

    def engine_turn(self) -> None:
        """vLLM answers next: what only training or transformers answering hold goes first, and the base leaves
        the GPU where it can move, so vLLM sizes its reservation from the memory they held (vllm_engine.py)."""
        self.release_merged()
        self.release_training_copy()
        if self._parked.get("device") is None:
            self._parked["device"] = park(self.model)

    def training_turn(self) -> None:
        """A training comes: vLLM sleeps and the base goes back to its GPU. Nothing to do without vLLM."""
        if self.engine is None:
            return
        self.engine.sleep()
        device = self._parked.pop("device", None)
        if device is not None:
            self.model.to(device)


@dataclass(frozen=True)
class Answer:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # generation share plus this question's retrieval time
    passages: tuple[Passage, ...] = ()


class Pipeline:
    def __init__(self, name: str, arm: ArmConfig, shared: Shared):
        self.name, self.arm, self.shared = name, arm, shared
        self.cfg = shared.config
        self.index = None
        self.adapter: TrainedAdapter | None = None
        self.demos: list[Demonstration] = []
        # (demonstrations, passages each shows, passages retrieved for the question) once chosen
        self.demo_format: tuple[int, int, int] | None = None
        self.top_k = self.cfg.retrieval.top_k  # passages retrieved for each question
        self.demo_selection: list[dict] = []
        self.timing: dict[str, float] = {}
        self.raft_oracle_share: float | None = None
        self.rebuild_note = ""
        self.trains_on_build = arm.weights != "base"  # False after a rebuild that kept the old adapter
        self.trained_pairs: dict[str, int] = {}  # pairs the adapter learnt from, by origin (written, generated)
        self._pool = DemoPool((), 0)
        self.sampled: dict[str, dict] = {}  # what `sampling` kept of the material the build trained on, by kind
        self._continued = (0, 0)  # (new, replayed) examples of the last continued training

    @property
    def retrieves(self) -> bool:
        return self.arm.context == "retrieved"

    @property
    def instruction(self) -> str | None:
        if not self.arm.instruction:
            return None
        return self.cfg.prompt.rag_instruction if self.retrieves else self.cfg.prompt.system

    @property
    def template(self) -> str | None:
        """The chat template the arm is trained and asked in; None for the tokenizer's own."""
        return chat_template(self.shared.tokenizer, self.arm.format)

    # ------------------------------------------------------------------ building

    def build(self, knowledge: Knowledge, pool: DemoPool) -> None:
        """Everything done once, before any question: indexing, training, choosing demonstrations."""
        self.timing = {}
        self._index(knowledge.docs)
        if self.arm.weights != "base":
            self._train(knowledge)
        self._demonstrations(pool)

    def rebuild(self, knowledge: Knowledge, pool: DemoPool, update: Knowledge) -> str:
        """The rebuild after an update. A trained arm continues its adapter on the update plus a replay sample
        of what it learnt before (`update.strategy: continue`), or retrains from scratch (`retrain`). An arm
        that learns only from training pairs is not retrained when the update brings none: saying "retrained"
        while reusing the old adapter would be a lie."""
        trains = self._rebuild_trains(update) if self.arm.weights != "base" else RETRAINED
        if trains is None:
            self.timing, self.trains_on_build = {}, False
            self._index(knowledge.docs)
            self._demonstrations(pool)
            self.rebuild_note = NOT_RETRAINED
        elif trains == CONTINUED:
            self.timing, self.trains_on_build = {}, True
            self._index(knowledge.docs)
            self._train(knowledge, update)
            self._demonstrations(pool)
            self.rebuild_note = f"{CONTINUED}: {self._continued[0]} new + {self._continued[1]} replayed examples"
        else:
            self.build(knowledge, pool)
            self.rebuild_note = RETRAINED if self.adapter else (REINDEXED if self.index else NOTHING_TO_REBUILD)
        return self.rebuild_note

    def _index(self, docs: tuple[Document, ...]) -> None:
        if not (self.retrieves or self.arm.weights in arms_mod.TRAINS_WITH_PASSAGES):
            return
        r, s = self.cfg.retrieval, self.shared
        t = time.perf_counter()
        self.index = build_retriever(r.method, s.embedder, s.embedder_id, docs, r.chunk_words, r.chunk_overlap,
                                     s.cache_dir)
        self.timing["index_s"] = time.perf_counter() - t

    def _train(self, knowledge: Knowledge, update: Knowledge | None = None) -> None:
        """Train the arm's adapter (`_fit`), then prepare the model that answers with it, within the build."""
        self._fit(knowledge, update)
        if self.shared.engine is None:  # vLLM serves the adapter itself; transformers answers with the merge
            self.shared.merged(self.adapter)

    def train(self, knowledge: Knowledge, update: Knowledge | None = None) -> TrainedAdapter | None:
        """Only the training `build` would do (or, with `update`, `rebuild` on `knowledge` after it), with the
        index RAFT's distractors need: no demonstrations, nothing merged or answered. `harness train` calls this,
        so its adapters are the ones `harness run` looks up. None when the rebuild would train nothing."""
        how = None if update is None else self._rebuild_trains(update)
        if update is not None and how is None:
            return None
        self._index(knowledge.docs)
        self._fit(knowledge, update if how == CONTINUED else None)
        return self.adapter

    def _rebuild_trains(self, update: Knowledge) -> str | None:
        """How a rebuild after `update` trains a trained arm: CONTINUED (its adapter, on the update plus replay),
        RETRAINED (from scratch), or None: an arm that learns only from training pairs, when the update brings none."""
        if self.arm.weights in arms_mod.TRAINS_ON_PAIRS and not update.pairs:
            return None
        if self.adapter is not None and self.cfg.update.strategy == "continue":
            return CONTINUED
        return RETRAINED

    def _fit(self, knowledge: Knowledge, update: Knowledge | None = None) -> None:
        """Train the arm's adapter on `knowledge`; with `update`, continue the current adapter on the update's
        material plus `update.replay` old examples per new one instead."""
        s, cfg = self.shared, self.cfg
        if self.arm.weights in arms_mod.TRAINS_ON_PAIRS:
            self.trained_pairs = origin_counts(knowledge.pairs)
        training = TRAINING[self.arm.weights]

        def rows(k: Knowledge) -> list[dict]:  # RAFT draws distractors from all of the documents, even for an update
            return training.rows(self, k, knowledge.docs)
        if update is None:
            examples, start_from = rows(knowledge), None
        else:
            examples, start_from = self._continued_rows(knowledge, update, rows), self.adapter
        s.release_merged()  # training may come: don't hold a merged copy through it
        s.training_turn()
        self.adapter = train_adapter(s.training_base, s.tokenizer, examples,
                                     training.settings(cfg, all_built(knowledge.pairs)), cfg.seed,
                                     s.cache_dir, s.model_id, training.kind, start_from, fsdp=s.fsdp)

    def _continued_rows(self, knowledge: Knowledge, update: Knowledge,
                        rows: Callable[[Knowledge], list[dict]]) -> list[dict]:
        """The update's examples plus a replay sample of the examples from what was known before it."""
        new_docs, new_pairs = set(update.docs), set(update.pairs)
        old = Knowledge(tuple(d for d in knowledge.docs if d not in new_docs),
                        tuple(p for p in knowledge.pairs if p not in new_pairs))
        new, seen = rows(update), rows(old)
        cap = arms_mod.continue_cap(self.arm.weights, self.cfg)
        if cap is not None and len(new) * (1 + self.cfg.update.replay) > cap:
            new = random.Random(self.cfg.seed).sample(new, max(1, round(cap / (1 + self.cfg.update.replay))))
        # At least enough replay for a train/eval split, however small the update.
        want = max(round(self.cfg.update.replay * len(new)), 4 - len(new))
        replay = random.Random(self.cfg.seed).sample(seen, min(len(seen), want))
        self._continued = (len(new), len(replay))
        return new + replay

    def training_set(self, knowledge: Knowledge) -> tuple[Training, list[dict]]:
        """What `build` would train this arm on, without training it: how it trains and its examples (the
        documents are indexed first, as RAFT's distractors need). For measuring training on its own."""
        self._index(knowledge.docs)
        training = TRAINING[self.arm.weights]
        return training, training.rows(self, knowledge, knowledge.docs)

    def _raft_examples(self, knowledge: Knowledge, docs: tuple[Document, ...]) -> list[dict]:
        """RAFT prompts for `knowledge`'s pairs, with distractors drawn from all of `docs`."""
        cfg = self.cfg
        pairs = list(knowledge.pairs)
        most = cfg.sampling.raft_examples
        if most is not None and len(pairs) > most:  # a budget's cut: spread over the documents
            pairs, record = sample_raft(pairs, most, cfg.raft.max_examples, cfg.seed)
            self.sampled.setdefault("raft", record)  # the build's sample is the one the report states
        elif len(pairs) > cfg.raft.max_examples:
            pairs = random.Random(cfg.seed).sample(pairs, cfg.raft.max_examples)
        r = cfg.retrieval
        hits = self.index.search([p.question for p in pairs], r.top_k * 2)
        items = raft_mix(pairs, all_chunks(docs, r.chunk_words, r.chunk_overlap), hits, r.top_k,
                         cfg.raft.oracle_probability, cfg.seed)
        self.raft_oracle_share = sum(i.oracle for i in items) / len(items) if items else None
        return raft_examples(self.shared.tokenizer, items, self.instruction, self.template)

    def _demonstrations(self, pool: DemoPool) -> None:
        self._pool = pool
        want = arms_mod.demonstrations(self.arm, self.cfg)
        t = time.perf_counter()
        if want == "auto" and self.demo_format is None:
            self.demo_format = self._choose_format(pool)
        elif want != "auto":
            (self.demo_format,) = arms_mod.format_candidates(self.arm, self.cfg)
        k, each, self.top_k = self.demo_format
        self.demos = self._make_demos(draw(pool, k, self.cfg.seed) if k else [], each)
        self.timing["demonstrations_s"] = time.perf_counter() - t

    def _make_demos(self, pairs: list[QAPair], passages_each: int) -> list[Demonstration]:
        if not pairs:
            return []
        if not (self.retrieves and passages_each):
            return [Demonstration(p.question, p.answer) for p in pairs]
        found = self.index.search([p.question for p in pairs], passages_each)
        return [Demonstration(p.question, p.answer, tuple(x.text for x in f)) for p, f in zip(pairs, found)]

    def _choose_format(self, pool: DemoPool) -> tuple[int, int, int]:
        """Demonstration count, passages per demonstration and passages for the question, chosen by the task
        metric on held-out training pairs (never on test); ties go to the shorter prompt."""
        top = self.cfg.retrieval.top_k
        cands = arms_mod.format_candidates(self.arm, self.cfg)
        most = max(k for k, _, _ in cands)
        n_eval = min(self.cfg.demonstrations.eval_questions, len(pool.pairs) - most)
        if n_eval < 2:
            fallback = (1, 1, top) if pool.pairs else (0, 0, top)
            self.demo_selection = [{"demonstrations": fallback[0], "passages_each": fallback[1],
                                    "question_passages": top, "score": None,
                                    "note": f"only {len(pool.pairs)} demonstration pairs: too few to choose"}]
            return fallback
        held = random.Random(self.cfg.seed + 1).sample(list(pool.pairs), n_eval)
        rest = DemoPool(tuple(p for p in pool.pairs if p not in set(held)), pool.excluded)
        metric = self.cfg.metric if self.cfg.metric != "semantic" else "f1"  # the embedder is not ours to call
        rows = []
        for k, each, top_k in cands:
            self.top_k = top_k  # what `answer` retrieves with, for this candidate's questions
            self.demos = self._make_demos(draw(rest, k, self.cfg.seed) if k else [], each)
            answers = self.answer([p.question for p in held],
                                  desc=f"choosing demonstrations [{self.name}] {k}x{each}, {top_k} passages")
            rows.append({"demonstrations": k, "passages_each": each, "question_passages": top_k,
                         "eval_questions": n_eval,
                         metric: sum(score(a.text, (p.answer,))[metric] for a, p in zip(answers, held)) / n_eval,
                         "prompt_tokens_mean": sum(a.prompt_tokens for a in answers) / n_eval})
        best = max(rows, key=lambda r: (r[metric], -r["prompt_tokens_mean"]))
        for r in rows:
            r["chosen"] = r is best
        self.demo_selection = rows
        return best["demonstrations"], best["passages_each"], best["question_passages"]

    def add_documents(self, docs: tuple[Document, ...]) -> None:
        """New documents arrive; take them in without rebuilding (only a retriever can)."""
        if self.index is not None:
            self.index.add(docs)

    # ------------------------------------------------------------------ answering

    def prompt(self, question: str, passages: list[Passage]) -> Messages:
        return messages(question, [p.text for p in passages] if self.retrieves else (), self.instruction, self.demos)

    def answer(self, questions: list[str], desc: str | None = None) -> list[Answer]:
        t = time.perf_counter()
        found = self.index.search(questions, self.top_k) if self.retrieves else [[] for _ in questions]
        retrieval_each = (time.perf_counter() - t) / max(1, len(questions)) if self.retrieves else 0.0
        gen = self.cfg.generation
        prompts = [self.prompt(q, p) for q, p in zip(questions, found)]
        if self.shared.engine is not None:
            self.shared.engine_turn()
            outs = self.shared.engine.generate(self.shared.tokenizer, prompts, gen.max_new_tokens,
                                               str(self.adapter.path) if self.adapter else None, self.template,
                                               log=self.shared.log, model_tag=self.model_tag)
        else:
            # Through the shared holder, not a model kept since training: an adapter attached to the base is taken
            # out for a base arm, and put back for this one if another arm's replaced it.
            model = self.shared.merged(self.adapter) if self.adapter else self.shared.base()
            # On a GPU, batches sized from its free memory; on a CPU, the task's figures.
            free = free_bytes(model.device)
            kv = kv_bytes_per_token(model.config, model.dtype.itemsize) if free is not None else 0
            rows, tokens = answer_batch(gen.batch_size, gen.batch_tokens, free, kv)
            outs = generate(model, self.shared.tokenizer, prompts, gen.max_new_tokens, rows,
                            desc=desc or f"answering [{self.name}]", log=self.shared.log, model_tag=self.model_tag,
                            template=self.template, batch_tokens=tokens)
        return [Answer(o.text, o.prompt_tokens, o.new_tokens, o.seconds + retrieval_each, tuple(p))
                for o, p in zip(outs, found)]

    @property
    def model_tag(self) -> str:
        """Names the weights that answer, for the answer log: the base model unless an adapter is merged."""
        return f"adapter:{self.adapter.path.name}" if self.adapter else "base"

    # ------------------------------------------------------------------ costs

    def costs(self) -> dict:
        idx = self.index
        out = {"arm": arms_mod.describe(self.arm, self.cfg, self.top_k), "weights": self.arm.weights,
               "context": self.arm.context,
               "index_mb": idx.nbytes / 1e6 if idx is not None else None,
               "index_kind": idx.kind if idx is not None else None,
               "index_chunks": len(idx.passages) if idx is not None else None,
               "index_s": self.timing.get("index_s"),
               "demonstrations_s": self.timing.get("demonstrations_s"),
               "demonstrations_shown": len(self.demos),
               "demo_passages_each": self.demo_format[1] if self.demo_format else None,
               "demo_pool": len(self._pool.pairs), "demo_pool_excluded": self._pool.excluded,
               "demo_selection": self.demo_selection,
               "demonstrations": [{"question": d.question, "answer": d.answer, "passages": list(d.passages)}
                                  for d in self.demos]}
        a = self.adapter
        if a is not None:
            size = sum(f.stat().st_size for f in a.path.iterdir() if f.name.startswith("adapter_model"))
            out.update({"adapter_mb": size / 1e6, "train_seconds": a.train_seconds, "train_tokens": a.train_tokens,
                        "train_examples": a.n_train + a.n_eval, "train_kind": a.kind,
                        "epochs_run": a.epochs_run, "adapter_cached": a.cached, "best_eval_loss": a.best_eval_loss,
                        "adapter": a.path.name, "log_history": a.log_history,
                        "raft_oracle_share": self.raft_oracle_share})
            if self.trained_pairs:
                out["training_pairs"] = dict(self.trained_pairs)
            if self.sampled:
                out["sampled"] = dict(self.sampled)
        # A rebuild costs the training it depends on, even when this run found the adapter in the cache
        # (another arm, or an earlier run, paid for it: a real rebuild would pay again).
        out["build_total_s"] = sum(v for v in (self.timing.get("index_s"), self.timing.get("demonstrations_s"),
                                               a.train_seconds if a is not None and self.trains_on_build else None)
                                   if v)
        return out


@dataclass(frozen=True)
class Training:
    """How one kind of trained weights learns: the adapter cache's kind, its settings from the task's config,
    and its examples from (pipeline, knowledge to learn, all documents)."""

    kind: str
    settings: Callable[[TaskConfig, bool], FinetuneConfig]  # (config, trained on pairs built from the documents)
    rows: Callable[[Pipeline, Knowledge, tuple[Document, ...]], list[dict]]


def _qa_rows(pipe: Pipeline, knowledge: Knowledge, docs: tuple[Document, ...]) -> list[dict]:
    return arm_qa_examples(pipe.arm, pipe.cfg, pipe.shared.tokenizer, knowledge.pairs)


def _cpt_rows(pipe: Pipeline, knowledge: Knowledge, docs: tuple[Document, ...]) -> list[dict]:
    blocks = cpt_blocks(pipe.shared.tokenizer, knowledge.docs, pipe.cfg.cpt.block_tokens)
    rows, record = sample_cpt(blocks, pipe.cfg.sampling.cpt_tokens, pipe.cfg.seed)
    if record is not None:
        pipe.sampled.setdefault("cpt", record)  # the build's sample is the one the report states
    return rows


# A table rather than branches in _train, so a new kind of weights is one entry here beside its entry in
# harness/kinds.py (tests/test_registries.py checks the two agree); "base" trains nothing.
TRAINING: dict[str, Training] = {
    "qa-lora": Training("qa", lambda cfg, built=False: arms_mod.training_settings("qa-lora", cfg, built), _qa_rows),
    "raft-lora": Training("raft", lambda cfg, built=False: arms_mod.training_settings("raft-lora", cfg),
                          Pipeline._raft_examples),
    "cpt-lora": Training("cpt", lambda cfg, built=False: arms_mod.training_settings("cpt-lora", cfg), _cpt_rows),
}


def arm_qa_examples(arm: ArmConfig, config: TaskConfig, tokenizer, pairs) -> list[dict]:
    """A qa-lora arm's training examples: the pairs without passages, in the arm's own format and instruction
    (a qa-lora arm that is then given passages is the fine-tune + RAG control, not an arm trained to read).
    `harness train` calls this too, so the adapters it trains are the ones `harness run` looks for."""
    instruction = config.prompt.system if arm.instruction else None
    return qa_examples(tokenizer, pairs, instruction, chat_template(tokenizer, arm.format))


def origin_counts(pairs) -> dict[str, int]:
    """How many pairs were written by hand and how many generated from the documents."""
    out: dict[str, int] = {}
    for p in pairs:
        out[p.origin] = out.get(p.origin, 0) + 1
    return out


def make_pipeline(name: str, shared: Shared) -> Pipeline:
    return Pipeline(name, arms_mod.arms(shared.config)[name], shared)
