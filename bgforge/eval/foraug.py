"""ForAug's four bias metrics (Nauen et al., arXiv 2503.09399) over a `fornet-eval` build's groups.

tobna/ForAug releases no evaluation code; the definitions follow the paper's text (see
docs/fidelity.md, ForNet, for what could not be checked):

  background robustness  accuracy with backgrounds of any class (`all`) over accuracy with backgrounds
                         of the object's own class (`same`): 1 = the background does not matter
  centre bias            1 - mean over the 8 outer nonants of acc(nonant) / acc(centre nonant 4)
  size bias              1 - mean over the other size factors of acc(f) / acc(f = 1)
  foreground focus       attribution per foreground pixel over attribution per image pixel (needs
                         attribution maps, not predictions: `foreground_focus` below)

Each accuracy pools the grid's other axes (the grid is balanced: every foreground in every cell).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

CENTRE = "4"


def _key(v) -> str:
    """A metadata value as one spelling: nonants `4` (int, "4"), sizes `1.0` ("1", "1.0")."""
    if v is None or v == "":
        return "free"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return str(int(f)) if f.is_integer() else repr(f)


def accuracy_by(rows: Sequence[dict], field: str, labels: Sequence[int], preds: Sequence) -> dict[str, float]:
    """field value -> accuracy over the scored samples (a prediction of None is not scored)."""
    hit, n = defaultdict(int), defaultdict(int)
    for r, y, p in zip(rows, labels, preds):
        if p is None:
            continue
        k = _key(r.get(field))
        n[k] += 1
        hit[k] += int(p) == int(y)
    return {k: hit[k] / n[k] for k in n}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def background_robustness(acc: dict[str, float]) -> float | None:
    return _ratio(acc.get("all"), acc.get("same"))


def relative(acc: dict[str, float], reference: str) -> dict[str, float]:
    base = acc.get(reference)
    return {k: v / base for k, v in sorted(acc.items())} if base else {}


def one_minus_mean_relative(acc: dict[str, float], reference: str) -> float | None:
    rel = relative(acc, reference)
    others = [v for k, v in rel.items() if k != reference]
    return 1.0 - float(np.mean(others)) if others else None


def foreground_focus(attribution: np.ndarray, mask: np.ndarray) -> float | None:
    """Attribution mass per foreground pixel over mass per image pixel (|attribution| summed)."""
    a = np.abs(np.asarray(attribution, np.float64))
    m = np.asarray(mask).astype(bool)
    total, fg = a.sum(), m.sum()
    if total == 0 or fg == 0:
        return None
    return float((a[m].sum() / fg) / (total / m.size))


def compute(data, preds: list, result: dict) -> dict:
    """`bgforge eval` on a fornet-eval split: the three metrics predictions give, and their tables."""
    rows, labels = data.rows, data.labels
    bg = accuracy_by(rows, "bg_source", labels, preds)
    pos = accuracy_by(rows, "nonant", labels, preds)
    size = accuracy_by(rows, "size_fact", labels, preds)
    out = {"background_robustness": background_robustness(bg),
           "centre_bias": one_minus_mean_relative(pos, CENTRE) if CENTRE in pos else None,
           "size_bias": one_minus_mean_relative(size, "1") if "1" in size else None,
           "foraug_tables": {"background": bg, "nonant_relative": relative(pos, CENTRE),
                             "size_relative": relative(size, "1")}}
    return {k: v for k, v in out.items() if v is not None}
