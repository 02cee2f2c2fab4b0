"""Dataset-level files written when the last shard commits: metadata.csv, groups.json, errors.jsonl.

Everything streams shard by shard, so finalising a million-sample run holds one shard's rows
and a few counters in memory, never the whole table.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

from ..association import association
from ..ordering import ordered_counts, ordered_splits
from ..sample_meta import group_of, split_of
from .atomic import atomic_file, write_atomic
from .shards import json_bytes


def group_label(row: dict) -> str:
    """A row's group name as groups.json counts it; `all` for outputs without groups (stage commands)."""
    name = group_of(row)
    return "all" if name in (None, "") else str(name)


class MetadataWriter:
    """Streams rows into metadata.csv (an open text file) and keeps the group summary."""

    def __init__(self, fh, leading: list[str], label_field=None, attr_fields=(), tars: bool = True,
                 files: bool = False):
        """attr_fields: the spurious attributes set against label_field (each gets its correlation);
        tars: a `shard` column (the sample's tar); files: a `file_name` column (its image file)."""
        self.label_field, self.attr_fields = label_field, tuple(attr_fields or ())
        # every output has one `split` column (stage outputs' rows carry it as split_name only)
        trailing = ("split", "group", *(("shard",) if tars else ()), "key", *(("file_name",) if files else ()))
        self.columns = list(leading) + [c for c in trailing if c not in leading]
        self._csv = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        self._csv.writeheader()
        self.groups = defaultdict(Counter)
        self.pairs = {attr: defaultdict(Counter) for attr in self.attr_fields}
        self.rows = 0

    def add(self, rows: list[dict]) -> None:
        for r in rows:
            if r.get("split") in (None, "") and r.get("split_name") is not None:
                r["split"] = r["split_name"]
        self._csv.writerows(rows)
        self.rows += len(rows)
        for r in rows:
            split = split_of(r)
            self.groups[split][group_label(r)] += 1
            if self.label_field:
                for attr, pairs in self.pairs.items():
                    pairs[split][(r[self.label_field], r[attr])] += 1

    def summary(self) -> dict:
        """The groups.json content."""
        summary = {}
        for split in ordered_splits(self.groups):
            counts = self.groups[split]
            entry = {"total": sum(counts.values()), "groups": ordered_counts(counts)}
            if self.label_field and self.attr_fields:
                # the first attribute's under `correlation`; a multi-cue recipe (UrbanCars: bg, co_obj)
                # adds every cue's, by attribute
                entry["correlation"] = association(self.pairs[self.attr_fields[0]][split])
                if len(self.attr_fields) > 1:
                    entry["correlations"] = {attr: association(self.pairs[attr][split]) for attr in self.attr_fields}
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
            fh = self.stack.enter_context(atomic_file(self.out / split / "metadata.csv", "w", root=self.out))
            self._csv[split] = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
            self._csv[split].writeheader()
        prefix = f"{split}/"
        self._csv[split].writerows({**r, "file_name": r["file_name"].removeprefix(prefix)} for r in rows)


def write_json(path, obj, root=None, sort_keys: bool = True) -> None:
    """`obj` as indented JSON, atomically; `root`: the output folder `path` lies in (io.atomic).
    `sort_keys=False` keeps the order `obj` was built in (groups.json: ordering.py's order)."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str).encode() + b"\n", root)


__all__ = ["MetadataWriter", "SplitTables", "write_json", "json_bytes"]
