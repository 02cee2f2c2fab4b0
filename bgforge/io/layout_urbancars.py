"""`--layout whac-a-mole`: UrbanCars where facebookresearch/Whac-A-Mole's own loaders read it.

  OUT/urbancars/bg-{r_bg}_co_occur_obj-{r_co}/{split}/obj-{car}_bg-{bg}_co_occur_obj-{co}/{NNN}.jpg
     + {NNN}_mask.png, {NNN}_co_occur_obj_mask.png (every split), {NNN}_bg_only.png (train)

as `create_datasets/urbancars/gen_urbancars.py:255-257, 324-350, 410-416` writes it,
`dataset/urbancars.py:57-92` reads a split (`UrbanCars("OUT", split)`: the ratio folder
bg-0.95_co_occur_obj-0.95 for train, bg-0.5_co_occur_obj-0.5 for val and test, the eight
composition folders in car -> background -> co-object order, `*.jpg` in each) and
`dataset/urbancars_aug.py:67-105, 186-205` reads the train split's masks and bg-only images.
The ratio folders carry the build's own ratios (Python's float repr, as the reference's f-string);
`NNN` is the image's index within its composition (`{i:03d}`). Cue-set extras (not in the
reference) go to split folders of their own name (test_bg_only, ...), which no reference loader reads.
"""

from __future__ import annotations

import posixpath

from ..errors import BgforgeError
from .paths import check_split

NAME = "whac-a-mole"
PLANNER = "urbancars"
BASE = "urbancars"
TYPES = ("urban", "country")
# tar members written beside the image as <stem>_<member>: the per-image files the reference writes
SIDE_MEMBERS = ("mask.png", "co_occur_obj_mask.png", "bg_only.png")


def check(layout: str, planner: str | None) -> None:
    if layout == NAME and planner is not None and planner != PLANNER:
        raise BgforgeError(f"--layout {NAME} is the folder layout of UrbanCars (Whac-A-Mole's loaders); this recipe's "
                           f"planner is {planner}: use --layout shards or imagefolder")


def ratio_folder(meta: dict) -> str:
    return f"bg-{float(meta['bg_ratio'])}_co_occur_obj-{float(meta['co_obj_ratio'])}"


def composition_folder(meta: dict) -> str:
    return f"obj-{TYPES[int(meta['y'])]}_bg-{TYPES[int(meta['bg'])]}_co_occur_obj-{TYPES[int(meta['co_obj'])]}"


def image_path(split: str, meta: dict, ext: str) -> str:
    try:
        return (f"{BASE}/{ratio_folder(meta)}/{check_split(split)}/{composition_folder(meta)}/"
                f"{int(meta['composition_index']):03d}.{ext}")
    except (KeyError, ValueError, TypeError, IndexError):
        raise BgforgeError(f"--layout {NAME} needs the UrbanCars fields (y, bg, co_obj, bg_ratio, co_obj_ratio, "
                           "composition_index) in every sample") from None


def side_files(image_rel: str, files: dict) -> dict[str, str]:
    """member -> its path beside the image: 000.jpg's `mask.png` is 000_mask.png."""
    stem = posixpath.splitext(image_rel)[0]
    return {m: f"{stem}_{m}" for m in SIDE_MEMBERS if m in files}


def row_files(row: dict) -> list[str]:
    """Every file a committed row names (its image and the files beside it), relative to OUT."""
    return [str(f) for f in [row.get("file_name"), *(row.get("side_files") or [])] if f]
