"""Group-robustness metrics as plain functions over (label, group, prediction) arrays.

Each follows one peer's published definition, named in its docstring, so a number bgforge
reports can be set beside the paper that defined it. `None` marks a sample without a prediction:
it counts as wrong in no metric; a group whose samples all lack one has no accuracy, and every
figure over groups is then undefined (None), never computed over the groups that remain.
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
    """{group: {n, predicted, correct, accuracy}} for every group of the split, in `order` first (the
    recipe's own group order), then any other group in first-seen order. `n` counts the group's
    samples, `predicted` those with a prediction; `accuracy` is over the predicted ones, None when
    the group has none (it is listed, never dropped)."""
    n, predicted, correct = defaultdict(int), defaultdict(int), defaultdict(int)
    for y, g, p in zip(labels, groups, preds):
        n[g] += 1
        if p is None:
            continue
        predicted[g] += 1
        correct[g] += int(y == p)
    order = list(order)
    ordered = set(order)
    names = [g for g in order if g in n] + [g for g in dict.fromkeys(groups) if g not in ordered]
    return {g: {"n": n[g], "predicted": predicted[g], "correct": correct[g], "accuracy": _acc(correct[g], predicted[g])}
            for g in names}


def unscored(groups: dict[str, dict]) -> list[str]:
    """The groups without any prediction (their accuracy is undefined)."""
    return [name for name, v in groups.items() if v["accuracy"] is None]


def worst_group(groups: dict[str, dict]) -> dict | None:
    """group_DRO (Sagawa et al. 2020): the lowest accuracy over **all** groups: {name, accuracy, tied}
    (`name` the first listed of the `tied` groups that share it). None when a group has no prediction:
    the worst group is then unknown, not the worst of the groups that happen to be predicted."""
    if not groups or unscored(groups):
        return None
    acc = min(v["accuracy"] for v in groups.values())
    tied = [name for name, v in groups.items() if v["accuracy"] == acc]
    return {"name": tied[0], "accuracy": acc, "tied": tied}


def mean_group_accuracy(groups: dict[str, dict]) -> float | None:
    """SubpopBench (Yang et al. 2023) `adjusted_accuracy`: the unweighted mean of the group accuracies
    over all groups; None when a group has no prediction."""
    if not groups or unscored(groups):
        return None
    return sum(v["accuracy"] for v in groups.values()) / len(groups)


def adjusted_accuracy(groups: dict[str, dict], train_counts: dict[str, int] | None) -> tuple[float | None, str | None]:
    """WILDS' Waterbirds `eval` "adjusted average" with this output's own train proportions:
    Σ_g acc_g · n_train(g) / Σ_g n_train(g) over the scored split's groups, and why it is undefined
    when it is (None, reason): no train split, a group without a prediction, or a group of the
    scored split that train lacks (Waterbirds-100: a weight of 0 would hide exactly the minority
    groups and report the majority groups' accuracy as the average)."""
    if not train_counts:
        return None, "no train split to take the group proportions from"
    absent = [g for g in groups if not train_counts.get(g)]
    if absent:
        return None, f"train has no {', '.join(absent)}"
    if unscored(groups):
        return None, f"no prediction for {', '.join(unscored(groups))}"
    total = sum(train_counts[g] for g in groups)
    return sum(v["accuracy"] * train_counts[g] for g, v in groups.items()) / total, None


def weighted_by(accuracies: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Σ_g w_g · acc_g / Σ_g w_g over every weighted group; None when one of them has no accuracy.
    WILDS' Waterbirds `adj_acc_avg` uses the published waterbirds-95 train counts as weights."""
    if any(accuracies.get(g) is None for g in weights):
        return None
    return sum(accuracies[g] * w for g, w in weights.items()) / sum(weights.values())


def breakdown(labels: Sequence[int], values: Sequence, preds: Sequence[int | None]) -> dict[str, dict]:
    """Accuracy per value of one attribute (HSI difficulty, size, position; Corner Cases' Easy /
    Medium / Hard): {value: {n, correct, accuracy}}, values in first-seen order."""
    return group_accuracies(labels, [str(v) for v in values], preds)


def weighted_average(accuracies: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """Σ w·acc / Σ w over the cells present: Whac-A-Mole's I-Avg weighs UrbanCars' cells by their
    training frequency (0.9025 / 0.0475 / 0.0475 / 0.0025), over the cells the split has; None
    when one of them has no prediction."""
    present = [k for k in weights if k in accuracies]
    if any(accuracies[k] is None for k in present):   # a cell of the split without a prediction
        return None
    total = sum(weights[k] for k in present)
    return sum(accuracies[k] * weights[k] for k in present) / total if total else None


def gap(accuracies: dict[str, float | None], minuend: str, subtrahend: str) -> float | None:
    """accuracies[minuend] − accuracies[subtrahend]: the backgrounds challenge's BG-gap is
    mixed_same − mixed_rand (Xiao et al. 2021)."""
    a, b = accuracies.get(minuend), accuracies.get(subtrahend)
    return None if a is None or b is None else a - b
