"""The one order in which splits and group names are listed, in every file and summary.

Splits: train, val, test, then the others by name. Names: numbers inside them compare as numbers
(CeO-56 before CeO-112, group 2 before group 10), so tables read in the recipe's size order; letters
compare without case (class rows: "box turtle" before "Chihuahua"); a few values have their own order
(easy, medium, hard; ImageNet-9's `original` before its variants).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

_SPLITS = {"train": 0, "val": 1, "validation": 1, "test": 2}


def split_key(split: str) -> tuple:
    return (_SPLITS.get(str(split), 3), natural_key(str(split)))


# Values whose order is their meaning, not their spelling (compared without case).
_RANKED = {"original": -1, "easy": 0, "medium": 1, "hard": 2}


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")   # 56, 112, and decimals: size factor 1.25 before 1.5


def natural_key(name) -> tuple:
    text = str(name)
    parts = tuple((0, float(part), "") if _NUMBER.fullmatch(part) else (1, 0, part.casefold())
                  for part in _NUMBER.split(text) if part)
    return (_RANKED.get(text.casefold(), 0), parts, text)   # the spelling last: a total, stable order


def ordered_splits(splits: Iterable[str]) -> list[str]:
    return sorted(splits, key=split_key)


def ordered_names(names: Iterable) -> list:
    return sorted(names, key=natural_key)


def ordered_counts(counts: Mapping) -> dict:
    """{name: count} in natural name order (group tables, value counts)."""
    return {name: counts[name] for name in ordered_names(counts)}
