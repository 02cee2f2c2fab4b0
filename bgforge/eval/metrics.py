"""Group-robustness metrics as plain functions over (label, group, prediction) arrays.

Each follows one peer's published definition, named in its docstring, so a number bgforge
reports can be set beside the paper that defined it. `None` marks a sample without a prediction:
it counts as wrong in no metric; it is reported as `missing`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence


def _acc(correct: int, n: int) -> float | None:
    return correct / n if n else None


def accuracy(labels: Sequence[int], preds: Sequence[int | None]) -> float | None:
    """Plain accuracy over the samples that have a prediction."""
    pairs = [(y, p) for y, p in zip(labels, preds) if p is not None]
    return _acc(sum(y == p for y, p in pairs), len(pairs))


def group_accuracies(labels: Sequence[int], groups: Sequence[str], preds: Sequence[int | None],
                     order: Iterable[str] = ()) -> dict[str, dict]:
    """{group: {n, correct, accuracy}} over the predicted samples of each group, in `order` first
    (the recipe's own group order), then any other group in first-seen order."""
    n, correct = defaultdict(int), defaultdict(int)
    for y, g, p in zip(labels, groups, preds):
        if p is None:
            continue
        n[g] += 1
        correct[g] += int(y == p)
    order = list(order)
    ordered = set(order)
    names = [g for g in order if g in n] + [g for g in dict.fromkeys(groups) if g in n and g not in ordered]
    return {g: {"n": n[g], "correct": correct[g], "accuracy": _acc(correct[g], n[g])} for g in names}


def worst_group(groups: dict[str, dict]) -> dict | None:
    """group_DRO (Sagawa et al. 2020): the lowest accuracy over groups ({name, accuracy}); ties go to
    the group listed first."""
    scored = [(v["accuracy"], name) for name, v in groups.items() if v["accuracy"] is not None]
    if not scored:
        return None
    acc, name = min(scored, key=lambda t: t[0])
    return {"name": name, "accuracy": acc}


def mean_group_accuracy(groups: dict[str, dict]) -> float | None:
    """SubpopBench (Yang et al. 2023) `adjusted_accuracy`: the unweighted mean of the group accuracies."""
    accs = [v["accuracy"] for v in groups.values() if v["accuracy"] is not None]
    return sum(accs) / len(accs) if accs else None


def adjusted_accuracy(groups: dict[str, dict], train_counts: dict[str, int] | None) -> float | None:
    """WILDS' Waterbirds `eval` "adjusted average": group accuracies weighted by the train split's
    group proportions, Σ_g acc_g · n_train(g) / Σ_g n_train(g) over the groups evaluated here.
    None without a train split (no proportions to weigh by)."""
    if not train_counts:
        return None
    pairs = [(v["accuracy"], train_counts.get(g, 0)) for g, v in groups.items() if v["accuracy"] is not None]
    total = sum(w for _, w in pairs)
    return sum(a * w for a, w in pairs) / total if total else None


def breakdown(labels: Sequence[int], values: Sequence, preds: Sequence[int | None]) -> dict[str, dict]:
    """Accuracy per value of one attribute (HSI difficulty, size, position; Corner Cases' Easy /
    Medium / Hard): {value: {n, correct, accuracy}}, values in first-seen order."""
    return group_accuracies(labels, [str(v) for v in values], preds)


def weighted_average(accuracies: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Σ w·acc / Σ w over the cells present: Whac-A-Mole's I-Avg weighs UrbanCars' cells by their
    training frequency (0.9025 / 0.0475 / 0.0475 / 0.0025)."""
    pairs = [(accuracies[k], w) for k, w in weights.items() if accuracies.get(k) is not None]
    total = sum(w for _, w in pairs)
    return sum(a * w for a, w in pairs) / total if total else None


def gap(accuracies: dict[str, float | None], minuend: str, subtrahend: str) -> float | None:
    """accuracies[minuend] − accuracies[subtrahend]: the backgrounds challenge's BG-gap is
    mixed_same − mixed_rand (Xiao et al. 2021)."""
    a, b = accuracies.get(minuend), accuracies.get(subtrahend)
    return None if a is None or b is None else a - b
