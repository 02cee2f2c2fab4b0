"""A tiny COCO 2017 tree and a texture folder in the real layouts, for tests and benchmarks.

make_coco writes `annotations/instances_<split>.json` (real category ids and names, polygon
segmentations, COCO `[x, y, w, h]` boxes, one crowd region per few images as uncompressed RLE,
as COCO stores crowds) and the images under `<split>/`. Object sizes cycle through small
(< 28 px), medium and large (>= 112 px) so that both BAP size filters keep and drop objects.
make_textures writes a DTD-like folder `images/<texture>/<texture>_NNNN.jpg`.
Everything is drawn from rng_for(seed, ...): a tree is identical wherever it is generated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..rng import rng_for
from .synthetic import _save_jpeg, _smooth_noise

# (id, name, supercategory) as in instances_train2017.json
COCO_CATEGORIES = [(1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
                   (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
                   (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
                   (18, "dog", "animal")]
SIZE_RANGES = ((10, 24), (30, 100), (115, 180))   # small (dropped by both filters), medium, large
TEXTURES = ("banded", "dotted", "zigzagged")


def _blob_polygon(rng, cx, cy, w, h, n=16) -> np.ndarray:
    """A star-convex blob whose bounding box is about w x h around (cx, cy), as float (n, 2)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(0.75, 1.0, n)
    pts = np.stack([np.cos(angles) * radius, np.sin(angles) * radius], 1)
    pts = (pts - pts.min(0)) / (pts.max(0) - pts.min(0))        # exactly spans [0, 1] on both axes
    return np.round(pts * [w - 1, h - 1] + [cx - w / 2, cy - h / 2], 2)


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE of a 0/1 mask (column-major runs, starting with zeros)."""
    flat = mask.T.reshape(-1)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def coco_image(rng: np.random.Generator, width: int, height: int, objects: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """A textured scene with filled polygon objects; objects = [(category_idx, polygon)]."""
    arr = 255 * (_smooth_noise(rng, height, width, 20) * 0.7 + _smooth_noise(rng, height, width, 4) * 0.3)
    for cat_idx, poly in objects:
        colour = cv2.cvtColor(np.uint8([[[(cat_idx * 29) % 180, 210, 220]]]), cv2.COLOR_HSV2RGB)[0, 0]
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        texture = (_smooth_noise(rng, height, width, 5, 1)[..., 0] * 60 - 30)[..., None]
        arr = np.where(mask[..., None] > 0, np.float32(colour)[None, None] + texture, arr)
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_coco(root: str | Path, n_images: int = 24, size: tuple[int, int] = (256, 224), seed: int = 0,
              split: str = "train2017", crowd_every: int = 5, categories: list[tuple] = COCO_CATEGORIES) -> Path:
    """Write a COCO 2017 tree with n_images images of 1-3 objects each. Returns the root."""
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    width, height = size
    images, annotations = [], []
    ann_id = 0
    for i in range(n_images):
        rng = rng_for(seed, "coco", i)
        image_id = 1000 + i
        objects = []
        for j in range(1 + i % 3):
            cat_idx = (i * 3 + j) % len(categories)
            lo, hi = SIZE_RANGES[(i + j) % 3]
            w, h = (int(rng.integers(lo, hi + 1)) for _ in range(2))
            w, h = min(w, width - 4), min(h, height - 4)
            cx = rng.uniform(w / 2 + 1, width - w / 2 - 1)
            cy = rng.uniform(h / 2 + 1, height - h / 2 - 1)
            poly = _blob_polygon(rng, cx, cy, w, h)
            objects.append((cat_idx, poly))
            ann_id += 1
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": categories[cat_idx][0],
                                "segmentation": [poly.reshape(-1).tolist()], "area": float(w * h) * 0.7,
                                "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                                         round(float(y1 - y0), 2)], "iscrowd": 0})
        file_name = f"{image_id:012d}.jpg"
        _save_jpeg(root / split / file_name, coco_image(rng, width, height, objects), quality=95)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        if crowd_every and i % crowd_every == 0:
            crowd = np.zeros((height, width), np.uint8)
            crowd[height // 2:height // 2 + 130, 10:140] = 1      # a big crowd of people: large box, dropped
            ann_id += 1
            annotations.append({"id": 900000000000 + ann_id, "image_id": image_id, "category_id": 1,
                                "segmentation": {"counts": _rle_counts(crowd), "size": [height, width]},
                                "area": float(crowd.sum()), "bbox": [10.0, float(height // 2), 130.0,
                                                                     float(min(130, height - height // 2))],
                                "iscrowd": 1})
    data = {"info": {"description": "bgforge synthetic COCO", "version": "1.0"}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"id": c, "name": n, "supercategory": s} for c, n, s in categories]}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def texture_image(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(6, 14)
    if kind == "banded":
        pattern = np.sin(yy * 2 * np.pi / period)
    elif kind == "dotted":
        pattern = np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period)
    else:  # zigzagged
        pattern = np.sin((xx + 4 * np.abs(((yy / period) % 2) - 1) * period) * 2 * np.pi / period)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (pattern[..., None] + 1) / 2
    arr = c0 * t + c1 * (1 - t) + 20 * _smooth_noise(rng, height, width, 3) - 10
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_textures(root: str | Path, kinds: Sequence[str] = TEXTURES, per_kind: int = 6,
                  size: tuple[int, int] = (128, 128), seed: int = 0) -> Path:
    """A DTD-like texture folder: root/images/<kind>/<kind>_NNNN.jpg. Returns root/images."""
    root = Path(root)
    for kind in kinds:
        for j in range(per_kind):
            rng = rng_for(seed, "texture", kind, j)
            _save_jpeg(root / "images" / kind / f"{kind}_{j + 1:04d}.jpg", texture_image(rng, kind, *size))
    return root / "images"
