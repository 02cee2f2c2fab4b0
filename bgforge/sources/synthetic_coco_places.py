"""Tiny COCO 2017 and Places365 (data_256) trees for the COCO-on-Places recipe, in the real layouts.

make_coco_places_coco writes, per class, images holding one large instance (area >= 10,000),
every third also a smaller second instance of the class (the largest one is pasted), and every
fifth only a small one (below the area threshold: skipped). `area` is the polygon's pixel count,
as COCO computes it. Everything is drawn from rng_for(seed, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..rng import rng_for
from .synthetic import _save_jpeg, _smooth_noise, make_places
from .synthetic_coco import _blob_polygon, coco_image

# (id, name, supercategory) of the nine classes, as in instances_train2017.json
CLASSES = [(9, "boat", "vehicle"), (5, "airplane", "vehicle"), (8, "truck", "vehicle"), (18, "dog", "animal"),
           (24, "zebra", "animal"), (19, "horse", "animal"), (16, "bird", "animal"), (7, "train", "vehicle"),
           (6, "bus", "vehicle")]
PLACES = ["/b/beach", "/c/canyon", "/b/building_facade", "/s/staircase", "/d/desert/sand", "/c/crevasse",
          "/b/bamboo_forest", "/f/forest/broadleaf", "/b/ball_pit", "/k/kasbah", "/l/lighthouse", "/p/pagoda",
          "/r/rock_arch", "/o/oast_house", "/o/orchard", "/v/viaduct", "/w/water_tower", "/w/waterfall",
          "/z/zen_garden"]


def _annotation(ann_id: int, image_id: int, cat_id: int, poly: np.ndarray, width: int, height: int) -> dict:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    return {"id": ann_id, "image_id": image_id, "category_id": cat_id, "segmentation": [poly.reshape(-1).tolist()],
            "area": float(mask.sum()), "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                                                round(float(y1 - y0), 2)], "iscrowd": 0}


def make_coco_places_coco(root: str | Path, per_class: int = 30, size: tuple[int, int] = (224, 180),
                          seed: int = 0) -> Path:
    """A COCO train2017 tree of per_class images per class (about 4/5 of them qualifying)."""
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    width, height = size
    images, annotations = [], []
    for c, (cat_id, _, _) in enumerate(CLASSES):
        for j in range(per_class):
            rng = rng_for(seed, "coco-places", c, j)
            image_id = 1000 * (c + 1) + j
            big = (25, 60) if j % 5 == 4 else (int(width * 0.75), int(height * 0.85))   # 25 x 60: below 10,000
            w, h = (int(rng.integers(lo, lo + 20)) for lo in big)
            w, h = min(w, width - 4), min(h, height - 4)
            polys = [_blob_polygon(rng, rng.uniform(w / 2 + 1, width - w / 2 - 1),
                                   rng.uniform(h / 2 + 1, height - h / 2 - 1), w, h)]
            if j % 3 == 0:
                polys.insert(0, _blob_polygon(rng, 30, 30, 40, 40))
            for poly in polys:
                annotations.append(_annotation(len(annotations) + 1, image_id, cat_id, poly, width, height))
            file_name = f"{image_id:012d}.jpg"
            _save_jpeg(root / "train2017" / file_name, coco_image(rng, width, height, [(c, p) for p in polys]), quality=95)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    data = {"info": {"description": "bgforge synthetic COCO (COCO-on-Places)"}, "licenses": [], "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": n, "supercategory": s} for i, n, s in sorted(CLASSES)]}
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return root


def place_image(rng: np.random.Generator, category: str, width: int, height: int) -> np.ndarray:
    """A scene tinted by its category (each of the 19 places has its own hue), with smooth texture."""
    hue = (PLACES.index(category) * 180 // len(PLACES)) if category in PLACES else 0
    tint = cv2.cvtColor(np.uint8([[[hue, 120, 200]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    arr = tint * (0.6 + 0.8 * _smooth_noise(rng, height, width, 8))
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_coco_places_sources(root: str | Path, per_class: int = 30, per_place: int = 40, seed: int = 0) -> dict:
    root = Path(root)
    coco = make_coco_places_coco(root / "coco", per_class=per_class, seed=seed)
    places = make_places(root / "places365", categories=PLACES, per_category=per_place, size=(96, 96), seed=seed,
                         layout="data_256", paint=place_image)
    return {"coco": coco, "places": places}


def demo_coco_places_roots() -> dict[str, Path]:
    """The cached demo trees of `bgforge build coco-places --demo`."""
    from .demo import _generated, cache_dir

    root = _generated(cache_dir() / "coco_places", "the demo COCO-on-Places sources",
                      lambda tmp: make_coco_places_sources(tmp, seed=2026))
    return {"coco": root / "coco", "places": root / "places365"}
