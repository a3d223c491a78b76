"""Where the trained arms' pairs come from (`training_pairs` in task.yaml), and the generated ones made.

    written    train.jsonl (and updates/train.jsonl): the default when train.jsonl has pairs
    generated  pairs made from docs/ (and from updates/docs/ for the update), filtered: built from each
               sentence's parse (`pair_generation.writer: parse`, harness/pairs/construct.py), or written by the
               generator model (`writer: model`, harness/pairs/writer.py)
    both       the two together

A run whose only readers of pairs are demonstrations (prompt's few-shot, rag's format choice, cpt's) makes only
a demonstration pool: candidates (or facts) sampled before writing, spread over every document (`pool_sample`);
the rest are written when an arm that trains on pairs runs, and the model writer's cache (writer.py, one entry a
candidate) hands that run the pool's questions back.

Generated pairs become ordinary `QAPair`s with origin "generated", so everything downstream treats them as
hand-written ones are treated: the demonstration pool drops any whose answer is a test reference
(harness/task/demo_pool.py), and the knowledge labels keep the questions they cover apart (harness/task/taught.py).
"""
from __future__ import annotations

import dataclasses
import logging
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.pairs.candidates import candidates
from harness.config import TaskConfig
from harness.pairs.construct import build, fact, facts_of, per_fact, sample_facts
from harness.pairs.filters import Written, apply_filters
from harness.sampling import spread
from harness.task.demo_pool import demo_pool
from harness.pairs.writer import Demo, QuestionWriter, demos_for
from harness.task.types import Document, Knowledge, QAPair, Task
from harness.task.taught import GENERATED, Coverage

log = logging.getLogger(__name__)

WRITTEN, BOTH = "written", "both"
PARSE = "parse"
# A demonstration pool samples POOL_MARGIN times as many candidate answers (or built facts) as the arms read pairs
# free of test answers (arms/catalog.py's `demonstrations_needed`): the filters keep about 0.31 of a model
# writer's candidates on coffee (run/forecast.py's KEPT_SHARE), and the pool then drops pairs whose answer is a
# test reference; 4x leaves room for both. A built fact keeps about 0.9 of its up to `phrasings` pairs, so as
# many facts are ample. A pool that still comes out short is made again from every candidate (written ones are
# read back from the cache).
POOL_MARGIN = 4


def pair_source(task: Task, config: TaskConfig) -> str:
    """The run's `training_pairs`, or its default: written when train.jsonl has pairs, else generated. `config`
    is the run's (seed and sweep point applied), never task.config read behind its back."""
    setting = config.training_pairs
    # Hand-written pairs only: a task whose pairs were already generated keeps its default.
    return setting or (WRITTEN if any(p.origin != GENERATED for p in task.knowledge.pairs) else GENERATED)


def generates(task: Task, config: TaskConfig) -> bool:
    return pair_source(task, config) != WRITTEN


@dataclass
class Part:
    """One set of documents' generation: the original docs/, or the update's."""

    name: str  # "original" | "update"
    kept: list[Written]
    left: dict[str, int]  # how many remained after writing and after each filter
    counts: dict[str, int]  # chunks, sentences, candidate spans before the per-chunk cap
    seconds: float
    cached: bool
    prompt_tokens: int | None = None  # the generator's tokens, which the cost projection prices as serving
    new_tokens: int | None = None
    sample: dict | None = None  # what `sampling.facts` kept of the filtered pairs (None: all of them)
    reused: int | None = None  # the model writer's questions read from the cache (None: built, no cache)
    pool: dict | None = None  # what a demonstration pool sampled (None: every candidate was written)


@dataclass
class Generated:
    generator: str
    rule: str
    demos_from: str  # "task" (its own training pairs) or "generic"
    demos: list[Demo]
    parts: list[Part] = field(default_factory=list)
    writer: str = PARSE
    phrasings: int | None = None  # parse: the most phrasings kept a fact

    def pairs(self, part: str) -> tuple[QAPair, ...]:
        return tuple(q for p in self.parts if p.name == part for q in pairs_of(p.kept))

    def summary(self) -> dict:
        """What run.json records: the generator, and per part the counts, time and whether it was cached."""
        return {"writer": self.writer, "generator": self.generator, "candidates": self.rule,
                "phrasings": self.phrasings,
                "demonstrations_from": self.demos_from,
                "demonstrations": [vars(d) for d in self.demos],
                "parts": {p.name: {"counts": p.counts, "left_after": p.left, "kept": len(p.kept),
                                   "seconds": round(p.seconds, 2), "cached": p.cached,
                                   "prompt_tokens": p.prompt_tokens, "new_tokens": p.new_tokens,
                                   **({"reused": p.reused} if p.reused is not None else {}),
                                   **({"sample": p.sample} if p.sample else {}),
                                   **({"pool": p.pool} if p.pool else {})}
                          for p in self.parts}}


def generate_part(name: str, docs: Sequence[Document], task: Task, config: TaskConfig, writer: QuestionWriter | None,
                  search: Callable[[list[str], int], list[list]], pool: int | None = None) -> Part:
    """The pairs of `docs` that pass the filters: built from the parse when `writer` is None, else a question
    the writer model wrote for each candidate answer. `search` is the retriever the round trip asks (over the
    documents a retrieving arm would hold at that point). `pool`: only demonstrations read the pairs, and need
    this many free of test answers, so only a sample of the candidates is written (`pool_sample`)."""
    part = (built_part if writer is None else written_part)(name, docs, task, config, writer, search, pool)
    if part.pool is None:
        return part
    free = len(demo_pool(pairs_of(part.kept), task.test).pairs)
    part.pool.update(pairs=len(part.kept), free_of_test_answers=free)
    if free >= pool:
        p = part.pool
        log.info(f"only demonstrations read training pairs: a pool of {len(part.kept)} pairs ({free} free of test "
                 f"answers, {pool} needed) from {p['sampled']} of {p['of']} {p['unit']}, spread over "
                 f"{p['documents']} of {p['of_documents']} documents; the rest are made only when an arm that "
                 "trains on pairs runs")
        return part
    log.info(f"the demonstration pool kept {free} pairs free of test answers of the {pool} needed: making pairs "
             f"from every one of the {part.pool['of']} {part.pool['unit']}")
    whole = generate_part(name, docs, task, config, writer, search)
    whole.pool = {**part.pool, "too_few": True}
    return whole


def pool_sample(items: Sequence, doc: Callable, pool: int | None, unit: str, seed: int,
                docs: int) -> tuple[list, dict | None]:
    """POOL_MARGIN x `pool` of `items` (each item's document by `doc`), seeded and spread over the documents,
    and the sample's record; all of them and None when there is no pool or it would take them all."""
    if pool is None or POOL_MARGIN * pool >= len(items):
        return list(items), None
    out = spread(items, doc, POOL_MARGIN * pool, seed)
    return out, {"needed": pool, "margin": POOL_MARGIN, "unit": unit, "sampled": len(out), "of": len(items),
                 "documents": len({doc(x) for x in out}), "of_documents": docs, "seed": seed}


def built_part(name: str, docs: Sequence[Document], task: Task, config: TaskConfig, writer: None,
               search: Callable, pool: int | None) -> Part:
    """Pairs built from the parse; a pool samples whole facts (every phrasing of each) before the filters."""
    r, g = config.retrieval, config.pair_generation
    t = time.perf_counter()
    built = build(tuple(docs), r.chunk_words, r.chunk_overlap, g.facts_per_sentence)
    chosen, taken = pool_sample(facts_of(built.items), lambda f: f[0], pool, "facts", config.seed, len(docs))
    keep = set(chosen)
    items = built.items if taken is None else [w for w in built.items if fact(w) in keep]
    kept, left = apply_filters(items, task.test, search, r.top_k)
    kept = per_fact(kept, g.phrasings)
    left["phrasings_per_fact"] = len(kept)
    kept, sample = sampled(kept, left, config) if taken is None else (kept, None)
    counts = {**built.counts, "candidates": built.counts["facts"], **coverage(kept)}
    return Part(name, kept, left, counts, built.seconds + time.perf_counter() - t, False, sample=sample, pool=taken)


def written_part(name: str, docs: Sequence[Document], task: Task, config: TaskConfig, writer: QuestionWriter,
                 search: Callable, pool: int | None) -> Part:
    """A question the writer model wrote for each candidate answer (a pool: for a sample of them)."""
    r, g = config.retrieval, config.pair_generation
    cands, counts = candidates(docs, r.chunk_words, r.chunk_overlap, g.candidates, g.per_chunk)
    counts["candidates"] = len(cands)
    chosen, taken = pool_sample(cands, lambda c: c.doc, pool, "candidate answers", config.seed, len(docs))
    w = writer.write(chosen)
    written = [Written(c, q) for c, q in zip(chosen, w.questions)]
    kept, left = apply_filters(written, task.test, search, r.top_k, [d.question for d in writer.demos])
    kept, sample = sampled(kept, left, config) if taken is None else (kept, None)
    return Part(name, kept, left, counts, w.seconds, w.cached, w.prompt_tokens, w.new_tokens, sample, w.reused,
                taken)


def pairs_of(kept: Sequence[Written]) -> tuple[QAPair, ...]:
    return tuple(QAPair(w.question, w.candidate.answer, w.candidate.doc, GENERATED) for w in kept)


def sampled(kept: list[Written], left: dict[str, int], config: TaskConfig) -> tuple[list[Written], dict | None]:
    """The share of the kept facts `sampling.facts` names (every phrasing of a sampled fact), and its record for
    run.json: how many pairs and facts of how many, and the seed. With the whole share, `kept` and no record."""
    share = config.sampling.facts
    if share >= 1:
        return kept, None
    out = sample_facts(kept, share, config.seed)
    left["sampled"] = len(out)
    return out, {"share": share, "pairs": len(out), "of_pairs": len(kept), "facts": coverage(out)["facts_kept"],
                 "of_facts": coverage(kept)["facts_kept"], "seed": config.seed}


def coverage(kept: Sequence[Written]) -> dict[str, int]:
    """How many facts and sentences the kept pairs teach."""
    return {"facts_kept": len({(w.candidate.sentence, w.candidate.answer) for w in kept}),
            "sentences_covered": len({(w.candidate.doc, w.candidate.sentence) for w in kept})}


def make_pairs(task: Task, config: TaskConfig, writer: QuestionWriter | None, generator: str,
               retriever: Callable[[tuple[Document, ...]], object], pool: int | None = None) -> Generated:
    """Generated pairs for the original documents and, when there is an update, for its documents. A writer
    model is shown demonstrations from the task's pairs that carry no test answer (else generic ones). `pool`:
    only demonstrations read the pairs, this many free of test answers (arms/catalog.py's
    `demonstration_pool`), so only a pool of the original documents' is made; the update's are for training."""
    g = config.pair_generation
    if writer is None:
        out = Generated(generator, PARSE, "", [], writer=PARSE, phrasings=g.phrasings)
    else:
        free = demo_pool(task.knowledge.pairs, task.test).pairs
        writer.demos, where = demos_for(free, task.knowledge.docs, g.demonstrations, config.seed)
        out = Generated(generator, g.candidates, where, writer.demos, writer="model")
    sets = [("original", task.knowledge.docs, task.knowledge.docs)]
    if task.update.docs and pool is None:  # the round trip asks the index a rebuilt retriever would hold
        sets.append(("update", task.update.docs, task.knowledge.docs + task.update.docs))
    for name, docs, indexed in sets:
        if pool is None:
            log.info(f"making training pairs from {len(docs)} {name} document(s) with {generator}")
        out.parts.append(generate_part(name, docs, task, config, writer, retriever(indexed).search, pool))
    return out


def plan(task: Task, config: TaskConfig) -> str:
    """What a run will generate, said by `validate` without loading a model."""
    if not generates(task, config):
        return ""
    r, g = config.retrieval, config.pair_generation
    parts = []
    for name, docs in (("docs/", task.knowledge.docs), ("updates/docs/", task.update.docs)):
        if not docs:
            continue
        if g.writer == PARSE:
            built = build(tuple(docs), r.chunk_words, r.chunk_overlap, g.facts_per_sentence)
            c = built.counts
            parts.append(f"{len(per_fact(built.items, g.phrasings))} questions about {c['facts_phrased']} facts in "
                         f"{c['sentences_with_facts']} of {c['sentences']} sentences of {name}")
        else:
            cands, counts = candidates(docs, r.chunk_words, r.chunk_overlap, g.candidates, g.per_chunk)
            parts.append(f"{len(cands)} candidate answers from {counts['chunks']} chunks of {name}")
    if g.writer == PARSE:
        return (f"training pairs: {pair_source(task, config)}; built from each sentence's parse, true by "
                f"construction, at most {g.phrasings} phrasings a fact: {' and '.join(parts) or 'no documents'}, "
                "then kept where they pass the filters (pairs.generated.jsonl in the run folder)")
    where = "its training pairs" if demo_pool(task.knowledge.pairs, task.test).pairs else "built-in examples"
    return (f"training pairs: {pair_source(task, config)}; the generator (the run's --model unless --generator is "
            f"given; default smollm2-135m) will write a question for each of {' and '.join(parts) or 'no documents'}"
            f" (rule {g.candidates}, at most {g.per_chunk} a chunk, {g.demonstrations} demonstrations from {where}),"
            " then keep those that pass the filters (pairs.generated.jsonl in the run folder)")


def with_pairs(task: Task, config: TaskConfig, generated: Generated | None) -> Task:
    """The task as the arms see it: its knowledge's pairs are the ones `training_pairs` names."""
    source = pair_source(task, config)
    if source == WRITTEN or generated is None:
        return task
    written = (task.knowledge.pairs, task.update.pairs) if source == BOTH else ((), ())
    knowledge = Knowledge(task.knowledge.docs, written[0] + generated.pairs("original"))
    update = Knowledge(task.update.docs, written[1] + generated.pairs("update"))
    sizes = {**task.sizes, "generated": len(generated.pairs("original")),
             "generated_update": len(generated.pairs("update"))}
    return dataclasses.replace(task, knowledge=knowledge, update=update, sizes=sizes)


def write_jsonl(path: Path, generated: Generated, task: Task) -> int:
    """pairs.generated.jsonl: every kept pair with its source chunk and the test questions it covers (ids),
    one JSON object a line, in the train.jsonl fields first so a team can copy lines into its train.jsonl."""
    stable = [q for q in task.test if not q.fresh]
    fresh = [q for q in task.test if q.fresh]
    n = 0
    with open(path, "w") as f:
        for part in generated.parts:
            for w in part.kept:
                c = w.candidate
                pair = QAPair(w.question, c.answer, c.doc, GENERATED)
                cover = Coverage([pair], same_fact=True)
                covers = [q.id for q in (stable if part.name == "original" else fresh) if cover.covers(q)]
                f.write(json.dumps({"question": w.question, "answer": c.answer, "doc": c.doc, "part": part.name,
                                    "kind": c.kind, "form": w.form, "sentence": c.sentence, "chunk": c.chunk,
                                    "covers_test": covers},
                                   ensure_ascii=False) + "\n")
                n += 1
    return n
