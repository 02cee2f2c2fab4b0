"""COCO 2017 instances in the distributed layout.

root/annotations/instances_<split>.json   images, annotations (bbox, segmentation, iscrowd), categories
root/<split>/<file_name>                  the images (split = train2017 | val2017)

Objects are selected by category name and a minimum box size (a box is dropped when its width
or height is below the minimum). Segmentations come in three forms: polygons (lists of
x, y coordinates; rasterised with cv2.fillPoly), uncompressed RLE (`counts` a list of run
lengths, column-major, starting with a run of zeros: decoded here) and compressed RLE
(`counts` a string: decoded with pycocotools when it is installed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import BgforgeError, SampleError
from . import source_root

log = logging.getLogger(__name__)

HINT = "pass --coco-root DIR or set BGFORGE_COCO_ROOT (the folder holding annotations/ and train2017/)"


def coco_root(value: str | Path | None) -> Path:
    return source_root("coco", value)


@dataclass(frozen=True)
class CocoObject:
    ann_id: int
    image_id: int
    file_name: str
    width: int              # of the image
    height: int
    category: str
    bbox: tuple             # (x, y, w, h) as in the annotation
    segmentation: object    # polygons, or an RLE dict
    iscrowd: bool
    area: float = 0.0       # the annotation's `area` (its mask's pixel count, as COCO computed it)

    @property
    def key(self) -> str:
        return f"coco_{self.ann_id:012d}"


class CocoSource:
    def __init__(self, root: str | Path, split: str = "train2017"):
        self.root = Path(root)
        self.split = split
        self.annotations = self.root / "annotations" / f"instances_{split}.json"
        self.image_dir = self.root / split
        for path in (self.annotations, self.image_dir):
            if not path.exists():
                raise BgforgeError(f"COCO root {self.root} has no {path.relative_to(self.root)}; "
                                   f"expected the COCO 2017 layout: {HINT}")
        self._data = None
        self.dropped = {"small": 0, "crowd": 0}   # filled by objects(), reported as planning notes

    def _load(self) -> dict:
        if self._data is None:
            log.info("reading %s", self.annotations)
            try:
                self._data = json.loads(self.annotations.read_text())
            except json.JSONDecodeError as exc:
                raise BgforgeError(f"{self.annotations} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
            missing = [k for k in ("images", "annotations", "categories") if k not in self._data]
            if missing:
                raise BgforgeError(f"{self.annotations} lacks {', '.join(missing)}: not a COCO instances file")
        return self._data

    def category_names(self) -> dict[int, str]:
        return {int(c["id"]): c["name"] for c in self._load()["categories"]}

    def objects(self, categories: Sequence[str], min_box: float = 0, include_crowd: bool = False) -> list[CocoObject]:
        """Annotations of the named categories whose box is at least min_box x min_box, sorted by id."""
        names = self.category_names()
        by_name = {n: i for i, n in names.items()}
        unknown = [c for c in categories if c not in by_name]
        if unknown:
            raise BgforgeError(f"COCO category {', '.join(map(repr, unknown))} not in {self.annotations.name}; "
                               f"known: {', '.join(sorted(by_name))}")
        wanted = {by_name[c] for c in categories}
        images = {int(im["id"]): im for im in self._load()["images"]}
        self.dropped = {"small": 0, "crowd": 0}
        out = []
        for ann in self._load()["annotations"]:
            if int(ann["category_id"]) not in wanted:
                continue
            if ann.get("iscrowd") and not include_crowd:
                self.dropped["crowd"] += 1
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            if w < min_box or h < min_box:
                self.dropped["small"] += 1
                continue
            im = images.get(int(ann["image_id"]))
            if im is None:
                raise BgforgeError(f"{self.annotations}: annotation {ann['id']} names image {ann['image_id']}, "
                                   "which is not in `images`")
            out.append(CocoObject(int(ann["id"]), int(ann["image_id"]), im["file_name"], int(im["width"]),
                                  int(im["height"]), names[int(ann["category_id"])], (x, y, w, h),
                                  ann["segmentation"], bool(ann.get("iscrowd")), float(ann.get("area", 0.0))))
        out.sort(key=lambda o: o.ann_id)
        if any(_is_compressed_rle(o.segmentation) for o in out) and not _has_pycocotools():
            raise BgforgeError(f"{self.annotations} holds compressed RLE segmentations, which need pycocotools: "
                               "pip install pycocotools")
        return out

    def image_path(self, obj: CocoObject) -> Path:
        return self.image_dir / obj.file_name


def decode_rle(counts: list[int], height: int, width: int) -> np.ndarray:
    """Uncompressed COCO RLE -> uint8 (H, W) of 0/1. Runs alternate 0, 1, 0, ... in column-major order."""
    total = int(sum(counts))
    if total != height * width:
        raise ValueError(f"RLE counts sum to {total}, expected {height} x {width} = {height * width}")
    values = np.arange(len(counts), dtype=np.int64) % 2
    flat = np.repeat(values.astype(np.uint8), np.asarray(counts, dtype=np.int64))
    return flat.reshape(width, height).T.copy()


def _is_compressed_rle(segmentation) -> bool:
    return isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes))


def _has_pycocotools() -> bool:
    try:
        import pycocotools.mask  # noqa: F401
    except ImportError:
        return False
    return True


def _decode_compressed_rle(rle: dict) -> np.ndarray:
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise SampleError("read_mask", "compressed RLE segmentation needs pycocotools: pip install pycocotools") from None
    counts = rle["counts"]
    return mask_utils.decode({"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts})


def annotation_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons or RLE) as uint8 (H, W), 255 inside the object."""
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), np.uint8)
        polys = [np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
                 for p in segmentation if len(p) >= 6]
        if not polys:
            raise SampleError("read_mask", "polygon segmentation has no polygon with 3 or more points")
        cv2.fillPoly(mask, polys, 255)
        return mask
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        h, w = (int(v) for v in segmentation["size"])
        if (h, w) != (height, width):
            raise SampleError("read_mask", f"RLE size {w}x{h} differs from the image size {width}x{height}")
        if isinstance(segmentation["counts"], list):
            binary = decode_rle(segmentation["counts"], h, w)
        else:
            binary = _decode_compressed_rle(segmentation)
        return (np.asarray(binary, np.uint8) > 0).astype(np.uint8) * 255
    raise SampleError("read_mask", f"unknown segmentation form {type(segmentation).__name__}: "
                                   "expected polygons or an RLE dict with counts and size")
