"""Scoring a classifier on a built dataset: per-group and worst-group accuracy, and each
recipe's own numbers (`bgforge eval`, docs/format.md "Scores").

    from bgforge.eval import score
    score(predictions, "out/wb95", "test")   # {key: class index or name}, or a .csv / .jsonl

Reads what the build wrote (groups.json, the shards' rows); never re-plans.
"""

from .score import across_splits, score, score_split

__all__ = ["score", "score_split", "across_splits"]
