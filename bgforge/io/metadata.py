"""Dataset-level files written when the last shard commits: metadata.csv, groups.json, errors.jsonl."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict

from .shards import json_bytes, write_atomic


def write_metadata_csv(path, rows: list[dict], leading: list[str]) -> None:
    columns = list(leading) + [c for c in ("group", "shard", "key") if c not in leading]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode())


def correlation(pairs: list[tuple[int, int]]) -> dict:
    """How strongly a binary label predicts a binary attribute in one split.

    `aligned_fraction` = P(attr == label) (0.95 for Waterbirds train), `phi` = Pearson's
    correlation of the two 0/1 variables (0 means the attribute carries no label information).
    """
    n = len(pairs)
    if not n:
        return {"aligned_fraction": None, "phi": None}
    aligned = sum(1 for y, a in pairs if y == a) / n
    my, ma = sum(y for y, _ in pairs) / n, sum(a for _, a in pairs) / n
    cov = sum((y - my) * (a - ma) for y, a in pairs) / n
    var = my * (1 - my) * ma * (1 - ma)
    return {"aligned_fraction": round(aligned, 6), "phi": round(cov / math.sqrt(var), 6) if var > 0 else None}


def mutual_information(pairs) -> float:
    """I(X; Y) in bits of the empirical joint distribution of (x, y) pairs."""
    n = len(pairs)
    if n == 0:
        return 0.0
    joint = Counter(pairs)
    px = Counter(x for x, _ in pairs)
    py = Counter(y for _, y in pairs)
    return sum(c / n * math.log2(c * n / (px[x] * py[y])) for (x, y), c in joint.items())


def cramers_v(pairs) -> float | None:
    n = len(pairs)
    xs, ys = sorted({x for x, _ in pairs}), sorted({y for _, y in pairs})
    if n == 0 or len(xs) < 2 or len(ys) < 2:
        return None
    joint, px, py = Counter(pairs), Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    chi2 = sum((joint[(x, y)] - px[x] * py[y] / n) ** 2 / (px[x] * py[y] / n) for x in xs for y in ys)
    return math.sqrt(chi2 / (n * (min(len(xs), len(ys)) - 1)))


def association(pairs) -> dict:
    """How much the attribute tells about the label: MI in bits, Cramér's V, and for two
    binary variables P(attr = label) and phi."""
    out = {"mutual_information_bits": round(mutual_information(pairs), 6)}
    v = cramers_v(pairs)
    out["cramers_v"] = None if v is None else round(v, 6)
    if {str(x) for p in pairs for x in p} <= {"0", "1"}:
        out.update(correlation([(int(x), int(y)) for x, y in pairs]))
    return out


def group_summary(rows: list[dict], label_field=None, attr_field=None) -> dict:
    by_split = defaultdict(list)
    for r in rows:
        by_split[r.get("split_name", r.get("split"))].append(r)
    out = {}
    for split, items in by_split.items():
        counts = Counter(r.get("group_name", str(r.get("group"))) for r in items)
        entry = {"total": len(items), "groups": dict(sorted(counts.items()))}
        if label_field and attr_field:
            entry["correlation"] = association([(r[label_field], r[attr_field]) for r in items])
        out[split] = entry
    return out


def write_errors(path, errors: list[dict]) -> None:
    write_atomic(path, b"".join(json.dumps(e, sort_keys=True).encode() + b"\n" for e in errors))


def write_json(path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode() + b"\n")


__all__ = ["write_metadata_csv", "group_summary", "write_errors", "write_json", "json_bytes", "correlation",
           "association", "mutual_information", "cramers_v"]
