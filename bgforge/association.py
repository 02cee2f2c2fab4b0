"""How much an attribute (a background, a cue) tells about the label, from counts of (label, attr) pairs.

groups.json carries these per split (written by io.metadata), and `bgforge inspect` shows them.
"""

from __future__ import annotations

import math
from collections import Counter


def _joint(pairs) -> Counter:
    return pairs if isinstance(pairs, Counter) else Counter(pairs)


def correlation(pairs) -> dict:
    """How strongly a binary label predicts a binary attribute in one split.

    `aligned_fraction` = P(attr == label) (0.95 for Waterbirds train), `phi` = Pearson's
    correlation of the two 0/1 variables (0 means the attribute carries no label information).
    `pairs`: (label, attr) tuples or a Counter of them.
    """
    joint = _joint(pairs)
    n = sum(joint.values())
    if not n:
        return {"aligned_fraction": None, "phi": None}
    aligned = sum(c for (y, a), c in joint.items() if y == a) / n
    my = sum(y * c for (y, _), c in joint.items()) / n
    ma = sum(a * c for (_, a), c in joint.items()) / n
    cov = sum((y - my) * (a - ma) * c for (y, a), c in joint.items()) / n
    var = my * (1 - my) * ma * (1 - ma)
    return {"aligned_fraction": round(aligned, 6), "phi": round(cov / math.sqrt(var), 6) if var > 0 else None}


def _marginals(joint: Counter):
    px, py = Counter(), Counter()
    for (x, y), c in joint.items():
        px[x] += c
        py[y] += c
    return px, py


def mutual_information(pairs) -> float:
    """I(X; Y) in bits of the empirical joint distribution of (x, y) pairs (or their Counter)."""
    joint = _joint(pairs)
    n = sum(joint.values())
    if n == 0:
        return 0.0
    px, py = _marginals(joint)
    return sum(c / n * math.log2(c * n / (px[x] * py[y])) for (x, y), c in joint.items())


def cramers_v(pairs) -> float | None:
    joint = _joint(pairs)
    n = sum(joint.values())
    px, py = _marginals(joint)
    if n == 0 or len(px) < 2 or len(py) < 2:
        return None
    chi2 = sum((joint[(x, y)] - px[x] * py[y] / n) ** 2 / (px[x] * py[y] / n) for x in px for y in py)
    return math.sqrt(chi2 / (n * (min(len(px), len(py)) - 1)))


def association(pairs) -> dict:
    """How much the attribute tells about the label: MI in bits, Cramér's V, and for two
    binary variables P(attr = label) and phi."""
    joint = _joint(pairs)
    out = {"mutual_information_bits": round(mutual_information(joint), 6)}
    v = cramers_v(joint)
    out["cramers_v"] = None if v is None else round(v, 6)
    if {str(x) for p in joint for x in p} <= {"0", "1"}:
        out.update(correlation(Counter({(int(x), int(y)): c for (x, y), c in joint.items()})))
    return out
