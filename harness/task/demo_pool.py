"""Demonstrations: solved examples shown before a question. Drawn only from training pairs that carry no
test answer, so a demonstration can never hand an arm the answer it is scored on.

The pool is computed by the harness, which sees the test references; pipelines receive only the pool.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.task.types import QAPair, TestQuestion
from harness.text import normalize


@dataclass(frozen=True)
class DemoPool:
    pairs: tuple[QAPair, ...]
    excluded: int  # training pairs left out because their answer matches a test reference


def _overlaps(answer: str, ref: str) -> bool:
    """Same normalised text, or one contains the other as whole words ("5.2" inside "firmware 5.2")."""
    a, r = f" {normalize(answer)} ", f" {normalize(ref)} "
    return bool(a.strip() and r.strip()) and (a in r or r in a)


def demo_pool(pairs: Sequence[QAPair], test: Sequence[TestQuestion]) -> DemoPool:
    """Training pairs whose answer matches no reference of any test question (fresh ones included)."""
    refs = [r for q in test for r in q.answers]
    exact = {normalize(r) for r in refs}
    keep = [p for p in pairs if normalize(p.answer) not in exact and not any(_overlaps(p.answer, r) for r in refs)]
    return DemoPool(tuple(keep), len(pairs) - len(keep))


def draw(pool: DemoPool, k: int, seed: int, avoid: Sequence[QAPair] = ()) -> list[QAPair]:
    """k pairs drawn (seeded) from the pool; refuses, rather than leaking, when the pool is too small."""
    choices = [p for p in pool.pairs if p not in set(avoid)]
    if k > len(choices):
        raise HarnessError(f"{k} demonstrations were asked for but only {len(choices)} training pairs carry no test "
                           f"answer ({pool.excluded} were excluded because their answer is a test reference). Add "
                           "training pairs about facts the test does not ask, or lower the demonstrations")
    return random.Random(seed).sample(choices, k)


def check_pool(pool: DemoPool, wanted: dict[str, int | str], where: str) -> None:
    """Before any model loads: every arm that shows demonstrations must find enough of them."""
    for arm, k in wanted.items():
        need = 1 if k == "auto" else int(k)
        if need and len(pool.pairs) < need:
            raise HarnessError(f"arm {arm!r} shows {k} demonstration(s) but no training pair is free of test answers "
                               f"({pool.excluded} excluded): add training pairs on facts the test does not ask, or set "
                               "that arm's demonstrations to 0", where)
