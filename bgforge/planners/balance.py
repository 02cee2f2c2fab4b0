"""Seeded subsets of at most N items, optionally class-balanced (BAP's "N = 5,000 class-balanced")."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def class_quotas(counts: dict, limit: int, rng: np.random.Generator) -> dict:
    """Per class how many to keep: equal shares where the pool allows (water-filling: a class with
    fewer items than the share keeps them all and the rest is shared among the others), the few
    left over by integer division going to seeded classes among those that still have items."""
    level = 0
    while level < max(counts.values()) and sum(min(n, level + 1) for n in counts.values()) <= limit:
        level += 1
    quotas = {c: min(n, level) for c, n in counts.items()}
    spare = limit - sum(quotas.values())
    open_classes = sorted(c for c, n in counts.items() if n > level)
    if spare > 0 and open_classes:
        for c in rng.choice(len(open_classes), size=min(spare, len(open_classes)), replace=False):
            quotas[open_classes[int(c)]] += 1
    return quotas


def seeded_subset(items: Sequence[T], limit: int | None, rng: np.random.Generator,
                  label_of: Callable[[T], object] | None = None) -> list[T]:
    """At most `limit` items, kept in their order: a uniform seeded choice, or with `label_of`
    class-balanced (class_quotas) and uniform within each class."""
    if limit is None or int(limit) >= len(items):
        return list(items)
    if label_of is None:
        idx = rng.choice(len(items), size=int(limit), replace=False)
        return [items[i] for i in sorted(idx)]
    by_class: dict = {}
    for i, item in enumerate(items):
        by_class.setdefault(label_of(item), []).append(i)
    quotas = class_quotas({c: len(v) for c, v in by_class.items()}, int(limit), rng)
    keep = [int(i) for c in sorted(by_class, key=str)
            for i in rng.choice(by_class[c], size=quotas[c], replace=False)]
    return [items[i] for i in sorted(keep)]
