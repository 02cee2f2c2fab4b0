"""`score`: the metrics of one split from predictions, the dict `bgforge eval --json` prints.

    from bgforge.eval import score
    metrics = score({"cub_000001": 1, ...}, "out/wb95", "test")   # or a predictions .csv / .jsonl
    metrics["worst_group"]["accuracy"], metrics["adjusted_accuracy"]

JSON keys (docs/format.md, "Scores"): split, recipe, n, predicted, missing, unscored_groups,
accuracy, groups, worst_group, mean_group_accuracy, adjusted_accuracy (+ adjusted_accuracy_note),
the recipe's headline figures (headlines.py), classes, breakdowns, class_groups, index_order,
other_split_keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from . import headlines
from . import metrics as m
from .dataset import EvalSplit, load_split, splits
from .predictions import check_complete, collect, from_mapping, iter_predictions

# Recipes made of one split per variant (ImageNet-9): the backgrounds challenge's BG-gap across them
BG_GAP = ("mixed_same", "mixed_rand")


def score(predictions: Mapping[str, object] | str | Path, out: str | Path, split: str = "test", *,
          label_map: Mapping[str, int] | None = None, allow_missing: bool = False, column: str = "pred",
          index_order: str | None = None) -> dict:
    """The metrics of `split` of the output `out` for `predictions` ({key: class index or name}, or a
    .csv / .jsonl file with key and pred columns). Keys of other splits are counted, not scored; a
    sample of `split` without a prediction is refused unless `allow_missing`. `index_order`
    "label" reads indices as the label column's on an imagefolder output (default: ImageFolder's)."""
    data = load_split(out, split)
    if index_order == "label":
        data.imagefolder = None
    rows = iter_predictions(predictions, column) if isinstance(predictions, (str, Path)) else from_mapping(predictions)
    found = collect(rows, {split: data}, label_map)
    preds = found.preds[split]
    if not allow_missing:
        check_complete(data, preds)
    result = score_split(data, preds)
    if found.elsewhere:
        result["other_split_keys"] = dict(found.elsewhere)
    return result


def score_split(data: EvalSplit, preds: list[int | None]) -> dict:
    groups = m.group_accuracies(data.labels, data.groups, preds, data.group_order)
    predicted = sum(p is not None for p in preds)
    names = [data.label_names[y] for y in data.labels]
    adjusted, why = m.adjusted_accuracy(groups, data.train_groups)
    result = {
        "split": data.split, "recipe": data.recipe["name"], "n": len(data), "predicted": predicted,
        "missing": len(data) - predicted, "unscored_groups": m.unscored(groups),
        "accuracy": m.accuracy(data.labels, preds), "groups": groups,
        "worst_group": m.worst_group(groups), "mean_group_accuracy": m.mean_group_accuracy(groups),
        "adjusted_accuracy": adjusted, **({"adjusted_accuracy_note": why} if why else {}),
        "classes": m.breakdown(data.labels, names, preds),
        "breakdowns": {attr: m.breakdown(data.labels, [r.get(attr) for r in data.rows], preds)
                       for attr in data.planner.EVAL_BREAKDOWNS},
        "index_order": "imagefolder" if data.imagefolder is not None else "label",
    }
    result.update(headlines.extras(data.recipe.get("planner", ""), data, preds, result))
    if "class_name" in (data.rows[0] if data.rows else {}) and data.planner.EVAL_BREAKDOWNS:  # HSI: Corner Cases' table
        by_class: dict[str, list[int]] = {}   # one pass, not one per class (1,000 classes at ImageNet scale)
        for i, name in enumerate(names):
            by_class.setdefault(name, []).append(i)
        result["class_groups"] = {
            name: {g: v["accuracy"] for g, v in m.group_accuracies(
                [data.labels[i] for i in idx], [data.groups[i] for i in idx], [preds[i] for i in idx],
                data.group_order).items()}
            for name, idx in by_class.items()}
    return result


def across_splits(results: dict[str, dict]) -> dict:
    """What only several splits tell: per-split accuracy, and the BG-gap when the splits are the
    ImageNet-9 variants (mixed_same − mixed_rand, Xiao et al. 2021)."""
    accs = {s: r["accuracy"] for s, r in results.items()}
    summary: dict = {"split_accuracy": accs}
    if all(v in accs for v in BG_GAP):
        summary["bg_gap"] = m.gap(accs, *BG_GAP)
    return summary


__all__ = ["score", "score_split", "across_splits", "splits", "load_split"]
