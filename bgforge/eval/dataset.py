"""The split a classifier is scored on, read from a finished bgforge output.

Each sample's record (every json field: its label, group and attributes) comes from the
shards' commit markers, which hold exactly the rows metadata.csv was written from, in plan
order. Nothing is re-planned: eval reads what the build wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import planners
from ..errors import BgforgeError
from ..execution import commit
from ..execution import plan as planmod
from ..io.class_folders import read_classes
from ..io.metadata import group_label
from ..ordering import ordered_splits
from ..sample_meta import split_of

WNID_RE = re.compile(r"^n\d{8}$")


@dataclass
class EvalSplit:
    """One split: keys in plan order, their class indices and group names, and the rows themselves."""

    out: Path
    split: str
    planner: planners.Planner
    recipe: dict
    keys: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    label_names: dict[int, str] = field(default_factory=dict)   # class index -> name
    group_order: list[str] = field(default_factory=list)        # as groups.json lists them
    train_groups: dict[str, int] | None = None                  # the train split's counts (WILDS' weights)

    # imagefolder outputs: the class index of ImageFolder's index i (OUT/classes.json), which index
    # predictions are read through (--index-order imagefolder); None: indices are the label column's
    imagefolder: list[int] | None = None
    folders: dict[str, int] = field(default_factory=dict)       # class folder name -> class index

    def __len__(self) -> int:
        return len(self.keys)

    def class_indices(self) -> set[int]:
        """The class indices a prediction may name: 0 .. the highest class of the split."""
        return set(range(max(self.label_names, default=-1) + 1)) | set(self.label_names)

    def name_to_index(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Every spelling a prediction file may give for a class (its name, its class folder, for ImageNet
        recipes its wnid), and the spellings that name several classes (ImageNet's two "crane"s)."""
        spellings: dict[str, set[int]] = {}
        for i, name in self.label_names.items():
            spellings.setdefault(name, set()).add(i)
        for folder, i in self.folders.items():
            spellings.setdefault(folder, set()).add(i)
        for row, y in zip(self.rows, self.labels):
            for spelling in (row.get("wnid"), row.get("class_name"), row.get("label")):
                if isinstance(spelling, str) and spelling:
                    spellings.setdefault(spelling, set()).add(y)
        names = {s: next(iter(ys)) for s, ys in spellings.items() if len(ys) == 1}
        wnid = {y: r.get("wnid") for r, y in zip(self.rows, self.labels)}
        ambiguous = {s: [str(wnid.get(y) or y) for y in sorted(ys)] for s, ys in spellings.items() if len(ys) > 1}
        return names, ambiguous


def _split_of(row: dict) -> str:
    return str(split_of(row))


def splits(out: str | Path) -> list[str]:
    """The splits of a finished output (groups.json's), train, val, test first."""
    return ordered_splits(_groups_json(Path(out)))


def _groups_json(out: Path) -> dict:
    """groups.json, type-checked (a damaged one is a one-line error): io/readback.py."""
    from ..io import readback

    return readback.groups(out)


def keys_of_other_splits(out: str | Path, skip: set[str]) -> dict[str, str]:
    """key -> split of every written sample outside the splits in `skip` (a predictions file made for
    the whole dataset names them: they are counted, not refused)."""
    out = Path(out)
    found: dict[str, str] = {}
    for entry in planmod.load_plan(out).shards:
        if entry.split in skip:
            continue
        for row in commit.read_marker(out, entry.name)["rows"]:
            found[str(row["key"])] = _split_of(row)
    return found


def load_split(out: str | Path, split: str) -> EvalSplit:
    """Every sample of `split` in plan order; a one-line BgforgeError for an unknown split."""
    out = Path(out)
    groups = _groups_json(out)
    if split not in groups:
        raise BgforgeError(f"{out} has no split {split!r}; it has {', '.join(groups)} (pass --split)")
    plan = planmod.load_plan(out)
    planner = planners.get(plan.recipe["planner"])
    target = planner.TARGET_FIELD or planner.LABEL_FIELD
    data = EvalSplit(out, split, planner, plan.recipe, group_order=list(groups[split]["groups"]),
                     train_groups=dict(groups.get("train", {}).get("groups", {})) or None)
    raw = []
    for entry in plan.shards:
        if entry.split != split:
            continue
        for row in commit.read_marker(out, entry.name)["rows"]:
            if _split_of(row) != split:
                continue
            if row.get(target) in (None, ""):
                raise BgforgeError(f"sample {row.get('key')} of {out} has no class {target!r}: recipe "
                                   f"{plan.recipe['name']} cannot be scored by class")
            raw.append(row)
    # Class indices as the `cls` member holds them; a phase whose label is a name (HSI's backgrounds:
    # the wnid) is indexed by its sorted names, which a 1000-way classifier reaches through its wnid
    try:
        labels = [int(r[target]) for r in raw]
        names = {y: planner.label_name(r) for y, r in zip(labels, raw)}
    except (TypeError, ValueError):
        order = sorted({str(r[target]) for r in raw})
        labels = [order.index(str(r[target])) for r in raw]
        names = dict(enumerate(order))
    for row, y in zip(raw, labels):
        data.keys.append(str(row["key"]))
        data.labels.append(y)
        data.groups.append(group_label(row))
        data.rows.append(row)
        data.label_names.setdefault(y, names[y])
    _class_folders(data)
    return data


def _class_folders(data: EvalSplit) -> None:
    """Read OUT/classes.json (imagefolder layout): ImageFolder's class order for this split and each folder's class."""
    doc = read_classes(data.out)
    if not doc:
        return
    by_value = {str(v): y for y, v in zip(data.labels, (r.get(data.planner.TARGET_FIELD or data.planner.LABEL_FIELD)
                                                        for r in data.rows))}
    folders = doc.get("folders") if isinstance(doc.get("folders"), dict) else {}
    for folder, entry in folders.items():
        label = entry.get("label") if isinstance(entry, dict) else None
        if str(label) in by_value:
            data.folders[str(folder)] = by_value[str(label)]
        elif isinstance(label, int) and not isinstance(label, bool):
            data.folders[str(folder)] = label   # a class this split lacks, still ImageFolder's index
    order = (doc.get("splits") or {}).get(data.split)
    if isinstance(order, list) and order and all(str(f) in data.folders for f in order):
        data.imagefolder = [data.folders[str(f)] for f in order]
