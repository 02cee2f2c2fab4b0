"""LVIS v1 instance masks on COCO 2017 images: the co-occurring objects of UrbanCars.

  LVIS root   lvis_v1_train.json and lvis_v1_val.json (the LVIS v1 annotation files)
  COCO root   train2017/ and val2017/ (LVIS v1 annotates COCO 2017 images; an image's file is
              <image id, 12 digits>.jpg in whichever of the two folders holds it)

Objects are listed as the reference (Whac-A-Mole's `LVISDataset`) lists them: train json then
val json, each in annotation order, filtered by category, by an area threshold (box area w*h or
the annotation's mask `area`) and to masks of a single connected component.

Masks are rasterised as the reference's `lvis` package does (lvis-api `lvis/lvis.py:171-193`,
`ann_to_rle` then `ann_to_mask`): pycocotools' `frPyObjects` of the polygons, `merge`d into
their union, decoded. The union matters: OpenCV's `fillPoly` of several polygons fills their
overlap by the even-odd rule (a hole), which changes the single-component filter and so the pool.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..errors import BgforgeError

HINT = "pass --lvis-root DIR (lvis_v1_train.json, lvis_v1_val.json) or set BGFORGE_LVIS_ROOT"


@dataclass(frozen=True)
class LvisObject:
    ann_id: int
    category: str
    image_id: int
    image_path: str
    height: int
    width: int
    bbox: tuple            # x, y, w, h
    segmentation: object   # polygons (list) or RLE (dict)

    @property
    def key(self) -> str:
        return f"lvis_{self.ann_id}"


class LvisSource:
    def __init__(self, lvis_root: str | Path, coco_root: str | Path):
        self.root, self.coco = Path(lvis_root), Path(coco_root)
        for split in ("train", "val"):
            if not (self.root / f"lvis_v1_{split}.json").is_file():
                raise BgforgeError(f"LVIS annotations {self.root / f'lvis_v1_{split}.json'} not found; {HINT}")
        if not (self.coco / "train2017").is_dir() and not (self.coco / "val2017").is_dir():
            raise BgforgeError(f"COCO root {self.coco} holds neither train2017/ nor val2017/; pass --coco-root DIR")

    def objects(self, categories: Iterable[str], threshold: str, min_area: float) -> list[LvisObject]:
        """The single-component objects of `categories` (LVIS names, in this order within each json)
        whose box area (`threshold` "bbox") or mask area ("mask") is at least `min_area`."""
        wanted = list(categories)
        splits = {split: json.loads((self.root / f"lvis_v1_{split}.json").read_text()) for split in ("train", "val")}
        found: list[LvisObject] = []
        for name in wanted:  # one dataset per category, each train json then val json (the reference's ConcatDataset)
            for split, data in splits.items():
                cat = next((c["id"] for c in data.get("categories", []) if c.get("name") == name), None)
                if cat is None:
                    raise BgforgeError(f"LVIS {split} json has no category {name!r}")
                images = {im["id"]: im for im in data.get("images", [])}
                for ann in data.get("annotations", []):
                    if ann.get("category_id") != cat:
                        continue
                    area = ann["bbox"][2] * ann["bbox"][3] if threshold == "bbox" else ann.get("area", 0)
                    im = images.get(ann["image_id"])
                    if area < min_area or im is None:
                        continue
                    try:
                        mask = lvis_mask(ann["segmentation"], im["height"], im["width"])
                    except (ValueError, TypeError, IndexError, KeyError) as exc:
                        raise BgforgeError(f"LVIS {split} annotation {ann.get('id')}: unreadable segmentation "
                                           f"({exc}); expected polygons or an RLE") from None
                    if cv2.connectedComponents(mask, connectivity=8)[0] - 1 != 1:
                        continue  # single-component masks only (the reference's skimage measure.label)
                    found.append(LvisObject(int(ann["id"]), name, int(ann["image_id"]), self.image_path(ann["image_id"]),
                                            int(im["height"]), int(im["width"]), tuple(ann["bbox"]), ann["segmentation"]))
        return found

    def image_path(self, image_id: int) -> str:
        name = f"{int(image_id):012d}.jpg"
        for folder in ("train2017", "val2017"):
            path = os.path.join(self.coco, folder, name)
            if os.path.exists(path):
                return path
        return os.path.join(self.coco, "train2017", name)


def lvis_mask(segmentation, height: int, width: int) -> np.ndarray:
    """uint8 (H, W), 1 inside the object: lvis-api's `ann_to_mask` (pycocotools' union of the
    polygons, or the RLE as given)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, int(height), int(width)))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, int(height), int(width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise ValueError(f"unknown segmentation form {type(segmentation).__name__}")
    with warnings.catch_warnings():  # pycocotools' own numpy-2 notice, once per mask: nothing for a user to do
        warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        return np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)
