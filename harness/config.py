"""The typed schema of `task.yaml`. Every key is optional except `name`; defaults live here, once."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from harness.kinds import RETRIEVAL_METHODS, WEIGHTS_NAMES

METRICS = ("exact_match", "contains", "f1", "recall", "rouge_l", "semantic")
Metric = Literal[METRICS]  # type: ignore[valid-type]  (one list of names to keep)


class _Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid")


class PromptConfig(_Strict):
    system: str = "Answer the question with a short phrase only."
    few_shot: int = Field(3, ge=0, le=32)
    rag_instruction: str = "Use the context to answer. Answer with a short phrase only."


class RetrievalConfig(_Strict):
    method: Literal[RETRIEVAL_METHODS] = "hybrid"  # type: ignore[valid-type]  (harness/kinds.py)
    chunk_words: int = Field(120, ge=16, le=2000)
    chunk_overlap: int = Field(30, ge=0)
    top_k: int = Field(3, ge=1, le=50)


class FinetuneConfig(_Strict):
    lora_rank: int = Field(16, ge=1, le=512)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)  # best held-out loss on coffee (bench/README.md)
    epochs: int = Field(8, ge=1, le=200)
    batch_size: int = Field(8, ge=1, le=1024)
    # A step's rows are computed in micro-batches of at most this many tokens (rows x longest row) and their
    # gradients summed: the same batch and loss, a fraction of the activation memory (harness/arms/batches.py). A row
    # over it alone recomputes just enough of its layers' activations in the backward pass (recompute.py). 0: never.
    micro_batch_tokens: int = Field(512, ge=0, le=10**7)
    weight_decay: float = Field(0.0, ge=0.0)
    eval_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    early_stopping_patience: int = Field(2, ge=1)
    # The share of the model's top layers that carry LoRA. Below the lowest adapted layer nothing needs a gradient,
    # so the backward pass stops there and keeps no activations for it: 0.5 trains in about 2/3 the FLOPs and half
    # the activation memory. 1.0: every layer.
    lora_layers: float = Field(1.0, gt=0.0, le=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class RaftConfig(_Strict):
    """RAFT (Zhang et al. 2024): LoRA trained on prompts that carry retrieved-style passages. A prompt holds
    retrieval.top_k passages, as many as the arm is asked with: the source with oracle_probability, the rest the
    pair's own hard negatives."""

    oracle_probability: float = Field(0.8, ge=0.0, le=1.0)  # share of examples whose source passage is shown
    max_examples: int = Field(128, ge=4)  # it learns to read, not the facts: a sample of pairs suffices
    # The continuation after an update: at most this many examples, new and replayed in update.replay's
    # proportion (None: every new one, each with its replay). No cap by default: on coffee's dev set (held-out
    # phrasings of the update's pairs) a cap that drops 40-60% of the new pairs lost 4-6 of 40 fresh questions,
    # as RAFT's after-rebuild gain on a 135M reader comes from the pairs it saw (bench/README.md).
    continue_examples: int | None = Field(None, ge=4)
    epochs: int = Field(2, ge=1, le=200)
    learning_rate: float = Field(5e-4, gt=0.0, le=1.0)
    # RAFT rows are long (passages), so most of its training time is the backward pass: LoRA on the top layers
    # only stops it early (on coffee the top half lost 8-10 held-out points: bench/README.md). None: finetune's.
    lora_layers: float | None = Field(None, gt=0.0, le=1.0)
    # finetune.micro_batch_tokens for RAFT's rows, one at a time whichever the budget (each over 256 tokens): 384
    # only recomputes part of the layers of the longest. coffee's demo peaked in RAFT's training (3,053 MB); at 384
    # its RAFT arm alone peaked 145 MB lower at the same time and the same adapters (bench/README.md).
    micro_batch_tokens: int | None = Field(384, ge=0, le=10**7)  # None: finetune's


class CptConfig(_Strict):
    """Continued pretraining: LoRA with next-token loss on the document text itself, no Q&A."""

    block_tokens: int = Field(256, ge=16, le=8192)
    epochs: int = Field(4, ge=1, le=200)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    lora_layers: float | None = Field(None, gt=0.0, le=1.0)  # None: finetune.lora_layers


class UpdateConfig(_Strict):
    """How a trained arm takes in an update: continue its adapter on the new material plus a replay sample of
    the old (cheap; may forget), or retrain from scratch on everything (what a full rebuild costs)."""

    strategy: Literal["continue", "retrain"] = "continue"
    replay: float = Field(1.0, ge=0.0, le=100.0)  # old examples replayed per new one, against forgetting


def _asks_with_passages(candidate: list[int]) -> list[int]:
    if len(candidate) == 3 and candidate[2] < 1:
        raise ValueError("the third number, the passages retrieved for the question, must be 1 or more")
    return candidate


# [demonstrations, passages each demonstration shows] or, with a third number, also the passages retrieved for
# the question (otherwise retrieval.top_k).
Candidate = Annotated[list[Annotated[int, Field(ge=0, le=50)]], Field(min_length=2, max_length=3),
                      AfterValidator(_asks_with_passages)]


class DemoConfig(_Strict):
    """How retrieving arms with `demonstrations: auto` pick their format, on training pairs, never on test.

    A candidate's third number lets the choice find how many passages the reader does best with: on coffee's
    held-out training pairs a 135M reader answered more of them with one passage than with three (bench/README.md),
    so the defaults also try one. Arms trained with passages (RAFT) are always asked with retrieval.top_k, the
    number they were trained with."""

    candidates: list[Candidate] = Field([[0, 0], [1, 1], [2, 1], [3, 1], [1, 1, 1], [2, 1, 1]], min_length=1)
    eval_questions: int = Field(24, ge=4, le=500)


class ArmConfig(_Strict):
    """One arm = weights x context x demonstrations. Declared, never coded."""

    weights: Literal[WEIGHTS_NAMES] = "base"  # type: ignore[valid-type]  (harness/kinds.py)
    context: Literal["none", "retrieved"] = "none"
    demonstrations: int | Literal["auto", "few_shot"] = 0
    instruction: bool = True  # False: the bare question, no system text (the untouched-model control)
    # chat: the model's own chat template. plain: "Question: ...\nAnswer: ..." lines, no chat preamble: about
    # half the tokens of a short Q&A turn, so half the training cost; for arms trained in it (or shown it).
    format: Literal["chat", "plain"] = "chat"


class PairGenerationConfig(_Strict):
    """Training pairs made from the documents (harness/pairs/). `writer: parse` (the default) builds each question
    from a sentence's parse around a span of it, so every pair is true by construction, in several phrasings
    (construct.py); `writer: model` has the generator model write one question per candidate answer (writer.py),
    which the 135M model gets mostly wrong (bench/README.md)."""

    writer: Literal["parse", "model"] = "parse"
    facts_per_sentence: int = Field(4, ge=1, le=20)  # parse: numbers and names first, then terms
    phrasings: int = Field(3, ge=1, le=5)  # parse: at most this many questions per fact (short, fronted, ...)
    # A fine-tune on built pairs trains this many epochs instead of finetune.epochs (None: finetune.epochs): its
    # phrasings already repeat each fact. 3 phrasings x 2 epochs tied 2 x 3 on coffee's dev questions (0.264
    # against 0.274, 3 of 307) in less training; 1 phrasing learnt nothing (bench/README.md, true pairs).
    epochs: int | None = Field(2, ge=1, le=200)
    candidates: Literal["numbers-names", "numbers-names-terms"] = "numbers-names"  # model: bench/README.md
    per_chunk: int = Field(4, ge=1, le=50)  # model: candidate answers per document chunk
    demonstrations: int = Field(4, ge=0, le=8)  # model: solved examples shown to the question writer


class SamplingConfig(_Strict):
    """The share of the training material a run keeps: what `budget` plans (harness/run/budget.py), or set by hand
    to repeat a sample. Each sample is drawn with the task's seed, spread evenly over the documents
    (harness/sampling.py). The defaults keep everything."""

    cpt_tokens: float = Field(1.0, gt=0.0, le=1.0)  # cpt's blocks of the documents
    facts: float = Field(1.0, gt=0.0, le=1.0)  # generated facts, each with every phrasing; hand-written pairs stay
    raft_examples: int | None = Field(None, ge=4)  # at most this many RAFT examples (None: raft.max_examples)


MAX_BATCH_GROWTH = 8  # a batch of short prompts grows to at most this many times generation.batch_size


class GenerationConfig(_Strict):
    max_new_tokens: int = Field(32, ge=1, le=4096)
    batch_size: int = Field(16, ge=1, le=1024)
    # A decode step reads every weight however few rows it runs, so short prompts answer faster in bigger
    # batches: a batch grows past batch_size (to MAX_BATCH_GROWTH times it at most) while rows x (prompt tokens
    # each row computes + max_new_tokens) stays within this. 0: always batch_size rows.
    batch_tokens: int = Field(5120, ge=0, le=10**7)


class TaskConfig(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    metric: Metric = "contains"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    # Where the trained arms' question/answer pairs come from: train.jsonl (written), pairs made from the
    # documents (generated, see pair_generation), or both. Unset: written when train.jsonl has pairs, else generated.
    training_pairs: Literal["written", "generated", "both"] | None = None
    pair_generation: PairGenerationConfig = PairGenerationConfig()
    prompt: PromptConfig = PromptConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    raft: RaftConfig = RaftConfig()
    cpt: CptConfig = CptConfig()
    update: UpdateConfig = UpdateConfig()
    demonstrations: DemoConfig = DemoConfig()
    arms: dict[str, ArmConfig] = {}  # extra arms on top of the defaults (harness/arms/catalog.py), or overrides
    generation: GenerationConfig = GenerationConfig()
    # Minutes the run may take on this CPU (`--budget` overrides): the forecast then shrinks the training
    # material to fit, never the arms, phases or test questions (harness/run/budget.py). None: everything.
    budget: float | None = Field(None, gt=0.0, le=10**6)
    sampling: SamplingConfig = SamplingConfig()
    # "Cost at your scale": a built-in deployment profile's name or a YAML file inside the task folder
    # (harness/task/deployment.py); `--deployment` overrides it.
    deployment: str | None = Field(None, min_length=1, max_length=200)
