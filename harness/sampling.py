"""Seeded samples spread evenly over documents: what a time budget (harness/run/budget.py) keeps of the training
material. One rule for cpt's blocks, generated facts and RAFT examples, so each is reproducible from the seed and
no document is left out while the sample has room for it: a sample drawn at random from the whole could miss the
few documents that hold a test question's fact."""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# No sample goes below these: the trainer needs 4 examples for a train/eval split (arms/finetune.py), and a
# handful of facts leave a few pairs free of test answers for the demonstrations.
MIN_ROWS = 4
MIN_FACTS = 8


def kept_count(share: float, n: int, least: int) -> int:
    """How many of `n` items a share keeps: all at a share of 1, else the share rounded, never under `least`
    (nor over `n`)."""
    if share >= 1:
        return n
    return min(n, max(least, round(share * n)))


def quotas(sizes: dict[str, int], k: int, rng: random.Random) -> dict[str, int]:
    """`k` spread over groups of these sizes: one each first (groups drawn at random when `k` is short of them),
    the rest in proportion to what each has left, by largest remainder."""
    names = sorted(sizes)
    if k < len(names):
        return {g: int(g in set(rng.sample(names, k))) for g in names}
    left = {g: sizes[g] - 1 for g in names}
    spare, room = k - len(names), sum(left.values())
    ideal = {g: spare * left[g] / room if room else 0.0 for g in names}
    out = {g: 1 + int(ideal[g]) for g in names}
    # The largest remainders take what flooring left over; ties by name, so the split is the same every time.
    for g in sorted(names, key=lambda g: (int(ideal[g]) - ideal[g], g))[:k - sum(out.values())]:
        out[g] += 1
    return out


def spread(items: Sequence[T], group: Callable[[T], str], k: int, seed: int) -> list[T]:
    """`k` of `items`, spread over their groups (documents) in proportion to each group's size, drawn at random
    within a group with `seed`; in the items' own order."""
    if k >= len(items):
        return list(items)
    members: dict[str, list[int]] = {}
    for i, x in enumerate(items):
        members.setdefault(group(x), []).append(i)
    rng = random.Random(seed)
    quota = quotas({g: len(ix) for g, ix in members.items()}, k, rng)
    chosen = {i for g in sorted(members) for i in rng.sample(members[g], quota[g])}
    return [x for i, x in enumerate(items) if i in chosen]
