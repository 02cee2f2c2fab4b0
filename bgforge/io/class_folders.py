"""The class folders of `--layout imagefolder`, and OUT/classes.json that describes them.

A folder name is unique and stable: an ImageNet class's folder is its wnid (ImageNet's real names
collide: two "crane", two "maillot"; and sorted wnids are the standard ImageNet class order), any
other class's folder is its class name (Waterbirds: landbird / waterbird). torchvision's
`ImageFolder(OUT/<split>)` numbers the folders it finds in sorted order, which is not the label
column's order (UrbanCars: country_car 0, urban_car 1, but y = 0 is urban), so classes.json writes
both, per split, beside the data:

    {"splits": {"test": ["country_car", "urban_car"]},          # ImageFolder(OUT/test).classes
     "folders": {"urban_car": {"label": 0, "name": "urban_car"}, ...}}   # folder -> label column, name

`bgforge eval` maps index predictions through it (docs/format.md, "Class folders").
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Callable

from .atomic import write_atomic
from .paths import readable_key

CLASSES_FILE = "classes.json"
_WNID = re.compile(r"^n\d{8}$")


def class_folder(meta: dict, label_name: Callable[[dict], str] | None) -> str:
    """The sample's class folder name (sanitised by the one path rule)."""
    wnid = meta.get("wnid")
    if isinstance(wnid, str) and _WNID.match(wnid):
        return wnid
    label = label_name(meta) if label_name else str(meta.get("label", "all"))
    return readable_key(str(label))


class ClassFolders:
    """Collects folder -> (label, name) from the committed rows, per split, while finalize streams them."""

    def __init__(self, target_field: str, label_name: Callable[[dict], str]):
        self.target, self.label_name = target_field, label_name
        self.splits: dict[str, set[str]] = {}
        self.folders: dict[str, dict] = {}

    def add(self, split: str, rows: list[dict]) -> None:
        seen = self.splits.setdefault(split, set())
        for row in rows:
            parts = PurePosixPath(str(row.get("file_name", ""))).parts
            if len(parts) < 3:
                continue
            folder = parts[1]
            seen.add(folder)
            if folder not in self.folders:
                self.folders[folder] = {"label": row.get(self.target), "name": self.label_name(row),
                                        **({"wnid": row["wnid"]} if row.get("wnid") else {})}

    def document(self) -> dict:
        return {"order": "splits.<split>[i] is the folder torchvision ImageFolder(OUT/<split>) gives class index i "
                         "(sorted folder names); folders.<folder>.label is the label column's value (the cls member)",
                "splits": {split: sorted(found) for split, found in sorted(self.splits.items())},
                "folders": {name: self.folders[name] for name in sorted(self.folders)}}

    def write(self, out) -> None:
        write_atomic(out / CLASSES_FILE, (json.dumps(self.document(), indent=2) + "\n").encode(), root=out)


def read_classes(out) -> dict | None:
    """OUT/classes.json, or None when the output has none (layouts other than imagefolder)."""
    from . import strict_json

    path = out / CLASSES_FILE
    if not path.is_file():
        return None
    try:
        doc = strict_json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        from ..errors import BgforgeError

        raise BgforgeError(f"{path} is not valid JSON ({str(exc)[:120]}); re-run `bgforge finalize {out}`") from None
    return doc if isinstance(doc, dict) else None
