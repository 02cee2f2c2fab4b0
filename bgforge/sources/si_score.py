"""SI-Score's inputs: a foreground folder `<class>/<file>.png` of cut-out objects (RGBA, the alpha
channel is the object) and a flat folder of background images.

Classes are the sorted sub-folder names (the reference's `sorted(set(labels))`); files are sorted
within each class and in the background folder (the reference takes `glob` order).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BgforgeError
from ..io.images import image_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Foreground:
    class_name: str
    class_index: int
    instance: int          # index within its class
    path: str
    width: int             # the cut-out's bounding rectangle
    height: int
    box: tuple | None = None         # COCO: the crop (x0, y0, x1, y1) of `path` ...
    segmentation: object = None      # ... and the mask that is its alpha
    image_size: tuple | None = None  # (width, height) of `path`


def _images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)


def foregrounds(root: str | Path | None) -> list[Foreground]:
    """Every foreground, class by class, with its size read from the file's header."""
    if root is None:
        raise BgforgeError("SI-Score needs foregrounds: --set foregrounds=DIR (DIR/<class>/<object>.png, RGBA)")
    root = Path(root)
    if not root.is_dir():
        raise BgforgeError(f"foregrounds folder {root} does not exist; expected DIR/<class>/<object>.png")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    out = []
    for c, name in enumerate(classes):
        for j, file in enumerate(_images(root / name)):
            path = root / name / file
            w, h = image_size(path)
            out.append(Foreground(name, c, j, str(path), w, h))
    if not out:
        raise BgforgeError(f"foregrounds folder {root} holds no <class>/<image> files")
    return out


def coco_foregrounds(root: str | Path | None, categories: list[str], split: str, per_class: int,
                     min_box: float) -> list[Foreground]:
    """COCO objects as cut-outs: per category (sorted), the first `per_class` non-crowd annotations by id
    whose box is at least min_box on each side, cropped to the box rounded outwards, alpha = the mask."""
    from .coco import CocoSource, coco_root

    if not categories:
        raise BgforgeError("foreground_source: coco needs coco_categories, e.g. --set \"coco_categories=[dog, zebra]\"")
    source = CocoSource(coco_root(root), split)
    objects = source.objects(categories, min_box=min_box)
    out = []
    for c, name in enumerate(sorted(categories)):
        for j, obj in enumerate([o for o in objects if o.category == name][:per_class]):
            x, y, w, h = obj.bbox
            x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
            x1, y1 = min(obj.width, math.ceil(x + w)), min(obj.height, math.ceil(y + h))
            out.append(Foreground(name, c, j, str(source.image_path(obj)), x1 - x0, y1 - y0, (x0, y0, x1, y1),
                                  obj.segmentation, (obj.width, obj.height)))
    if not out:
        raise BgforgeError(f"no COCO object of {', '.join(categories)} with a box of at least {min_box:g} px in {split}")
    return out


def backgrounds(root: str | Path | None) -> list[str]:
    """The background images' paths, sorted (no pixels read)."""
    if root is None:
        raise BgforgeError("SI-Score needs backgrounds: --set backgrounds=DIR (a folder of images)")
    root = Path(root)
    if not root.is_dir():
        raise BgforgeError(f"backgrounds folder {root} does not exist")
    files = [str(root / f) for f in _images(root)]
    if not files:
        raise BgforgeError(f"backgrounds folder {root} holds no .jpg/.png images")
    return files
