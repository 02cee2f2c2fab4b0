"""The layouts a peer's own evaluation code reads unchanged (docs/format.md, "Peer layouts").

  hsi  OUT/{split}/{size}/Group_{g}/{wnid}/{fg_key}_{g}_{size}.{ext}, as Mishalfatima/Corner_Cases'
       create_dataset.py `save_img` (lines 133-142) writes Hard-Spurious-ImageNet and its timm
       validate.py / inference.py read one `--data-dir OUT/test/56/Group_1` (timm's folder reader:
       the leaf folder is the class, classes in natural-sort order). Group g: 1 centre + own
       background, 2 corner + own, 3 centre + another class's, 4 corner + another's
       (create_dataset.py lines 181-193). OUT/{split}/class_map.txt lists the wnids in label order
       for timm's `--class-map`, so a Group folder without some class keeps bgforge's labels.
  in9  OUT/{variant}/{val|train}/{NN}_{class}/{source_key}.{ext}, as MadryLab/backgrounds_challenge's
       in9_eval.py (line 37: ImageNet9(f'{data_path}/{variation}')) and tools/datasets.py (line 14:
       os.path.join(data_path, 'val')) read ImageNet-9; tools/folder.py (lines 120-126) numbers the
       class folders in sorted order, so the NN prefix (the class index) keeps bgforge's labels.
       Source images of split `train` go to train/, every other split to val/.
Each layout fits one recipe family (PLANNER); every path part goes through io/paths.readable_key.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..errors import BgforgeError
from .atomic import write_atomic
from .paths import check_split, readable_key

# layout -> the planner whose samples carry the fields its paths need
PLANNER = {"hsi": "hard_spurious", "in9": "variants"}
CLASS_MAP = "class_map.txt"
_INDEX_PREFIX = re.compile(r"^\d+[_ ]")


def check_peer_layout(layout: str, planner: str | None) -> None:
    """Refuse a peer layout for a recipe whose samples do not have its fields (before planning)."""
    if layout in PLANNER and planner is not None and planner != PLANNER[layout]:
        raise BgforgeError(f"--layout {layout} is the folder layout of the {PLANNER[layout]} recipes; this recipe's "
                           f"planner is {planner}: use --layout shards or imagefolder")


def hsi_group(meta: dict) -> int:
    """Corner Cases' group number: 1 CeO, 2 CoO, 3 CeR, 4 CoR."""
    return 1 + (meta["position"] != "center") + 2 * (meta["background"] != "own")


def hsi_path(split: str, meta: dict, ext: str) -> str:
    g, size, wnid = hsi_group(meta), int(meta["size"]), readable_key(str(meta["wnid"]))
    return f"{check_split(split)}/{size}/Group_{g}/{wnid}/{readable_key(str(meta['fg_key']))}_{g}_{size}.{ext}"


def in9_class_folder(meta: dict) -> str:
    """`{class_index:02d}_{label}` (IN-9's own `00_dog`, ...): sorted, the folders give the class indices."""
    index = int(meta["class_index"])
    if not 0 <= index < 100:
        raise BgforgeError(f"--layout in9 numbers class folders 00_ to 99_ as ImageNet-9 does; class index {index} "
                           "does not fit: use --layout imagefolder")
    name = _INDEX_PREFIX.sub("", str(meta["label"]).strip()) or str(meta["label"])
    return f"{index:02d}_{readable_key(name)}"


def in9_path(split: str, meta: dict, key: str, ext: str) -> str:
    sub = "train" if meta.get("source_split") == "train" else "val"
    name = readable_key(str(meta.get("source_key") or key))
    return f"{check_split(split)}/{sub}/{in9_class_folder(meta)}/{name}.{ext}"


def peer_path(layout: str, split: str, key: str, ext: str, meta: dict) -> str:
    """The image's path relative to OUT in a peer layout."""
    if layout == "hsi":
        return hsi_path(split, meta, ext)
    return in9_path(split, meta, key, ext)


def write_peer_files(out: str | Path, layout: str) -> list[str]:
    """What a peer layout needs beside the images once metadata.csv is final (hsi: each split's
    class_map.txt); returns the paths written, relative to OUT."""
    if layout != "hsi":
        return []
    out = Path(out)
    splits: set[str] = set()
    wnid_of: dict[int, str] = {}   # labels are the class indices, the same in every split
    with open(out / "metadata.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            splits.add(row["split"])
            wnid_of[int(row["label"])] = row["wnid"]
    # a label no sample has keeps its line (a name no folder has), so the indices after it stay put
    text = "".join(f"{wnid_of.get(i, f'absent_{i}')}\n" for i in range(max(wnid_of, default=-1) + 1))
    written = []
    for split in sorted(splits):
        rel = f"{check_split(split)}/{CLASS_MAP}"
        write_atomic(out / rel, text.encode(), root=out)
        written.append(rel)
    return written
