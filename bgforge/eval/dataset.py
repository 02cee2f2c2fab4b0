"""The split a classifier is scored on, read from a finished bgforge output.

Each sample's record (every json field: its label, group and attributes) comes from the
shards' commit markers, which hold exactly the rows metadata.csv was written from, in plan
order. Nothing is re-planned: eval reads what the build wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import planners
from ..errors import BgforgeError
from ..execution import commit
from ..execution import plan as planmod
from ..io.metadata import group_label
from ..ordering import ordered_splits


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

    def __len__(self) -> int:
        return len(self.keys)

    def name_to_index(self) -> dict[str, int]:
        """Every spelling a prediction file may give for a class: its name, and for ImageNet recipes its wnid."""
        names = {name: i for i, name in self.label_names.items()}
        for row, y in zip(self.rows, self.labels):
            for spelling in (row.get("wnid"), row.get("class_name"), row.get("label")):
                if isinstance(spelling, str) and spelling:
                    names.setdefault(spelling, y)
        return names


def _split_of(row: dict) -> str:
    return str(row.get("split_name", row.get("split")))


def splits(out: str | Path) -> list[str]:
    """The splits of a finished output (groups.json's), train, val, test first."""
    return ordered_splits(_groups_json(Path(out)))


def _groups_json(out: Path) -> dict:
    path = out / "groups.json"
    if not path.exists():
        raise BgforgeError(f"{path} not found: {out} is not a finished bgforge output (run `bgforge build`, or "
                           "`bgforge finalize` once every slice finished)")
    return json.loads(path.read_text())


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
    return data
