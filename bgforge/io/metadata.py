"""Dataset-level files written when the last shard commits: metadata.csv, groups.json, errors.jsonl.

Everything streams shard by shard, so finalising a million-sample run holds one shard's rows
and a few counters in memory, never the whole table.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

from .shards import atomic_file, json_bytes, write_atomic


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


def group_label(row: dict) -> str:
    """A row's group name as groups.json counts it; `all` for outputs without groups (stage commands)."""
    name = row.get("group_name", row.get("group"))
    return "all" if name in (None, "") else str(name)


class MetadataWriter:
    """Streams rows into metadata.csv (an open text file) and keeps the group summary."""

    def __init__(self, fh, leading: list[str], label_field=None, attr_field=None, tars: bool = True,
                 files: bool = False):
        """tars: a `shard` column (the sample's tar); files: a `file_name` column (its image file)."""
        self.label_field, self.attr_field = label_field, attr_field
        # every output has one `split` column (stage outputs' rows carry it as split_name only)
        trailing = ("split", "group", *(("shard",) if tars else ()), "key", *(("file_name",) if files else ()))
        self.columns = list(leading) + [c for c in trailing if c not in leading]
        self._csv = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        self._csv.writeheader()
        self.groups = defaultdict(Counter)
        self.pairs = defaultdict(Counter)
        self.rows = 0

    def add(self, rows: list[dict]) -> None:
        for r in rows:
            if r.get("split") in (None, "") and r.get("split_name") is not None:
                r["split"] = r["split_name"]
        self._csv.writerows(rows)
        self.rows += len(rows)
        for r in rows:
            split = r.get("split_name", r.get("split"))
            self.groups[split][group_label(r)] += 1
            if self.label_field and self.attr_field:
                self.pairs[split][(r[self.label_field], r[self.attr_field])] += 1

    def summary(self) -> dict:
        """The groups.json content."""
        summary = {}
        for split, counts in self.groups.items():
            entry = {"total": sum(counts.values()), "groups": dict(sorted(counts.items()))}
            if self.label_field and self.attr_field:
                entry["correlation"] = association(self.pairs[split])
            summary[split] = entry
        return summary


class SplitTables:
    """metadata.csv inside each split folder (imagefolder layout), `file_name` relative to that folder,
    as Hugging Face `imagefolder` pairs a metadata file with the images beside and below it."""

    def __init__(self, out, columns: list[str], stack: ExitStack):
        self.out, self.columns, self.stack = Path(out), columns, stack
        self._csv: dict = {}

    def add(self, split: str, rows: list[dict]) -> None:
        if split not in self._csv:
            fh = self.stack.enter_context(atomic_file(self.out / split / "metadata.csv", "w"))
            self._csv[split] = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
            self._csv[split].writeheader()
        prefix = f"{split}/"
        self._csv[split].writerows({**r, "file_name": r["file_name"].removeprefix(prefix)} for r in rows)


def write_json(path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode() + b"\n")


__all__ = ["MetadataWriter", "SplitTables", "write_json", "json_bytes", "correlation", "association",
           "mutual_information", "cramers_v"]
