"""Arms: what answers the questions, declared as data. An arm is weights x context x demonstrations.

    weights         base | qa-lora (trained on training pairs) | raft-lora (pairs with retrieved passages)
                    | cpt-lora (next-token loss on the documents themselves)
    context         none | retrieved (top-k passages from the task's index)
    demonstrations  0..k solved training pairs in the query's own format; "few_shot" = prompt.few_shot;
                    "auto" = chosen on held-out training pairs (never on test)
    format          chat (the model's chat template) | plain ("Question: ...\nAnswer: ...", no chat preamble),
                    for training and answering alike

The defaults below are the families the report compares. A task.yaml adds more under `arms:` (e.g.
`cpt+rag: {weights: cpt-lora, context: retrieved}`) and `--pipelines` picks any of them by name.
"""
from __future__ import annotations

from harness.config import ArmConfig, FinetuneConfig, TaskConfig
from harness.kinds import DOCUMENTS, PAIRS, WEIGHTS

DEFAULT_ARMS: dict[str, ArmConfig] = {
    # The untouched model with the bare question: the control every other arm must beat.
    "base": ArmConfig(weights="base", instruction=False),
    "prompt": ArmConfig(weights="base", demonstrations="few_shot"),
    "rag": ArmConfig(weights="base", context="retrieved", demonstrations="auto"),
    # Trained and asked in plain "Question/Answer" lines: the chat template's preamble and instruction are more
    # than half of a short pair's tokens, and on coffee's held-out pairs plain trained to a lower answer loss
    # at 1.5-1.7x less time per epoch (bench/README.md, bench/answer_format.py).
    "finetune": ArmConfig(weights="qa-lora", format="plain", instruction=False),
    # Trained with passages, asked with passages (Zhang et al. 2024): fine-tuning and retrieval together.
    "raft": ArmConfig(weights="raft-lora", context="retrieved"),
    # It learns from documents, not Q&A, so it is shown the answer format by demonstrations.
    "cpt": ArmConfig(weights="cpt-lora", demonstrations="few_shot"),
}

# The kinds of weights grouped by what they are (declared once, in harness/kinds.py): memory estimates, forecasts
# and reports read these, never an arm's name.
TRAINS_ON_PAIRS = {n for n, w in WEIGHTS.items() if w.trains_on == PAIRS}  # weights that need training pairs
TRAINS_WITH_PASSAGES = {n for n, w in WEIGHTS.items() if w.passages}  # each pair shown with retrieval.top_k passages
# Next-token loss on the documents' own text, in blocks of cpt.block_tokens.
TRAINS_ON_DOCUMENTS = {n for n, w in WEIGHTS.items() if w.trains_on == DOCUMENTS}
TRAINED = TRAINS_ON_PAIRS | TRAINS_ON_DOCUMENTS
# The task.yaml sections whose settings shape each kind of weights (what a team must choose and keep tuned).
TUNED_BY = {n: (("finetune",) + ((w.section,) if w.section else ())) if w.trains_on else ()
            for n, w in WEIGHTS.items()}


def training_settings(weights: str, config: TaskConfig, built_pairs: bool = False) -> FinetuneConfig:
    """The LoRA recipe a kind of trained weights uses: finetune's, with the raft or cpt section's own learning
    rate, epochs and (when set) LoRA layers and memory budget. A fine-tune on pairs built from the documents
    (`built_pairs`) trains `pair_generation.epochs` epochs: several phrasings of each fact already repeat it.
    The memory estimate and the time forecast read it too."""
    kind = WEIGHTS.get(weights)
    own = getattr(config, kind.section) if kind is not None and kind.section else None
    if own is None:
        epochs = config.pair_generation.epochs if built_pairs and weights in TRAINS_ON_PAIRS else None
        return config.finetune if epochs is None else config.finetune.model_copy(update={"epochs": epochs})
    update = {"learning_rate": own.learning_rate, "epochs": own.epochs}
    if own.lora_layers is not None:
        update["lora_layers"] = own.lora_layers
    if getattr(own, "micro_batch_tokens", None) is not None:  # raft's section has a budget, cpt's has none
        update["micro_batch_tokens"] = own.micro_batch_tokens
    return config.finetune.model_copy(update=update)


def continue_cap(weights: str, config: TaskConfig) -> int | None:
    """The most examples an arm's continuation trains on after an update, new and replayed together: RAFT's
    raft.continue_examples (None: no cap, as for every other arm)."""
    return config.raft.continue_examples if weights in TRAINS_WITH_PASSAGES else None


def arms(config: TaskConfig) -> dict[str, ArmConfig]:
    """Every arm this task can run: the defaults, then the task's own (which may override a default)."""
    return {**DEFAULT_ARMS, **config.arms}


def arm_names(config: TaskConfig) -> list[str]:
    return list(arms(config))


def needs_pairs(config: TaskConfig, names: list[str]) -> set[str]:
    """The selected arms that cannot be built without training pairs."""
    table = arms(config)
    return {n for n in names if table[n].weights in TRAINS_ON_PAIRS}


def pair_users(config: TaskConfig, names: list[str]) -> dict[str, str]:
    """The selected arms that read training pairs, each with why: trained on them (and retrained on an update's),
    shown some as demonstrations, or choosing a demonstration format on held-out ones. An arm missing here
    reads none, so a run of only such arms makes no pairs."""
    table, out = arms(config), {}
    for n in names:
        arm = table[n]
        formats = format_candidates(arm, config)
        if arm.weights in TRAINS_ON_PAIRS:
            out[n] = "trains on them"
        elif len(formats) > 1:
            out[n] = "chooses its demonstration format on held-out ones"
        elif formats[0][0] > 0:
            out[n] = f"shows {formats[0][0]} as demonstrations"
    return out


def demonstrations_needed(config: TaskConfig, names: list[str]) -> int:
    """The most training pairs free of test answers one selected arm reads to show demonstrations: a fixed
    format's count, or, for an arm that chooses its format, its largest candidate's count plus the
    `demonstrations.eval_questions` held-out pairs the choice answers (pipeline.py's `_choose_format`)."""
    most = 0
    for n in names:
        formats = format_candidates(arms(config)[n], config)
        k = max(f[0] for f in formats)
        most = max(most, k + config.demonstrations.eval_questions if len(formats) > 1 else k)
    return most


def demonstration_pool(configs: list[TaskConfig], names: list[str]) -> int | None:
    """When no selected arm trains on pairs at any of `configs` (the --sweep points), only demonstrations read
    them: how many pairs free of test answers the run needs, the most any point reads. None when an arm trains
    on pairs, so every pair is made."""
    if any(needs_pairs(c, names) for c in configs):
        return None
    return max(demonstrations_needed(c, names) for c in configs)


def demonstrations(arm: ArmConfig, config: TaskConfig) -> int | str:
    """How many demonstrations the arm shows (an int), or "auto"."""
    return config.prompt.few_shot if arm.demonstrations == "few_shot" else arm.demonstrations


def full_format(candidate: list[int] | tuple[int, ...], top_k: int) -> tuple[int, int, int]:
    """A demonstration format as (demonstrations, passages each shows, passages retrieved for the question): a
    format of two numbers retrieves `top_k` for the question."""
    return candidate[0], candidate[1], candidate[2] if len(candidate) == 3 else top_k


def format_candidates(arm: ArmConfig, config: TaskConfig) -> list[tuple[int, int, int]]:
    """The formats the arm may be asked in: those `demonstrations: auto` chooses among, else its one fixed format
    (each demonstration with the question's passages when it retrieves). An arm trained with passages is asked
    with as many as it was trained with."""
    top = config.retrieval.top_k
    want = demonstrations(arm, config)
    if want != "auto":
        return [(int(want), top if arm.context == "retrieved" else 0, top)]
    fixed = arm.weights in TRAINS_WITH_PASSAGES
    return list(dict.fromkeys(full_format(c[:2] if fixed else c, top) for c in config.demonstrations.candidates))


def describe(arm: ArmConfig, config: TaskConfig, top_k: int | None = None) -> str:
    """One line for reports: what the arm is made of; `top_k`: the passages it retrieves for a question, once
    known (before its format is chosen, the description says when the choice decides it)."""
    demos = demonstrations(arm, config)
    demo_text = "demonstrations chosen on held-out training pairs" if demos == "auto" else f"{demos} demonstrations"
    method = config.retrieval.method
    if top_k is None:
        ks = {c[2] for c in format_candidates(arm, config)}
        top_k = ks.pop() if len(ks) == 1 else None
    if arm.context != "retrieved":
        context = "no context"
    elif top_k is None:
        context = f"{method} passages, as many as held-out training pairs choose"
    else:
        context = f"top-{top_k} {method} passages"
    return (f"{arm.weights} weights, {context}, {demo_text}" + ("" if arm.instruction else ", no instruction")
            + (", plain Question/Answer format" if arm.format == "plain" else ""))
