"""Small synthetic Stanford Cars, LVIS + COCO and Places365 trees in their real layouts, so the
urbancars recipe runs end to end on a CPU (tests, `--demo`). Each cue looks distinct on a
contact sheet: urban cars are small and red or blue, country cars big, boxy and brown or green;
urban scenes grey with buildings, country scenes green and yellow fields; urban co-objects
red or yellow posts, country co-objects black-and-white or brown animals."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..rng import rng_for
from .synthetic import _save_jpeg, make_places

CAR_CLASSES = ["Acme Roadster Sedan 2012", "Acme City Coupe 2010", "Acme Hatchback 2011",
               "Acme Trail SUV 2012", "Acme Ranger Crew Cab 2009", "Acme Cargo Van 2012"]  # 3 urban, 3 country
URBAN_SCENES = ["/a/alley", "/s/street", "/d/downtown", "/c/crosswalk", "/g/gas_station", "/g/garage/outdoor",
                "/d/driveway"]
COUNTRY_SCENES = ["/d/desert_road", "/f/field_road", "/f/forest_road"]
URBAN_OBJECTS = ["fireplug", "stop_sign", "street_sign", "parking_meter", "traffic_light"]
COUNTRY_OBJECTS = ["cow", "horse", "sheep"]


def _car_image(rng, class_index: int, w: int, h: int) -> tuple[np.ndarray, tuple, np.ndarray]:
    """(photo, box, the car's exact mask as 0 / 255): the shapes drawn are the mask."""
    country = class_index >= 3
    img = np.full((h, w, 3), 225, np.uint8) + rng.integers(0, 20, (h, w, 1), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    bw, bh = (int(w * rng.uniform(0.6, 0.75)), int(h * rng.uniform(0.5, 0.6))) if country else \
        (int(w * rng.uniform(0.45, 0.6)), int(h * rng.uniform(0.3, 0.4)))
    x0, y0 = int(rng.integers(4, w - bw - 4)), int(rng.integers(4, h - bh - 4))
    colour = [(120, 80, 40), (50, 110, 50), (90, 70, 50)][class_index % 3] if country else \
        [(200, 30, 30), (30, 60, 200), (220, 40, 90)][class_index % 3]
    for target, c, wheel in ((img, colour, (20, 20, 20)), (mask, 255, 255)):
        cv2.rectangle(target, (x0, y0 + bh // 3), (x0 + bw, y0 + bh - bh // 5), c, -1)          # body
        cv2.rectangle(target, (x0 + bw // 5, y0), (x0 + bw - bw // 4, y0 + bh // 3), c, -1)      # cabin
        for cx in (x0 + bw // 5, x0 + bw - bw // 5):                                              # wheels
            cv2.circle(target, (cx, y0 + bh - bh // 5), max(3, bh // 6), wheel, -1)
    return img, (x0, y0, x0 + bw, y0 + bh), mask


def make_stanford_cars(root: str | Path, per_class: int = 25, size: tuple[int, int] = (160, 120), seed: int = 0,
                       layout: str = "devkit") -> Path:
    """Stanford Cars with CAR_CLASSES, half train and half test, in the devkit (.mat) or CSV layout, with
    each car's exact mask where the UrbanCars reference keeps its MaskFormer masks
    (ROOT/mask/cars_<split>/<stem>_mask.png, 8-bit 0 / 255)."""
    import scipy.io

    root = Path(root)
    rows = {"train": [], "test": []}
    n = 0
    for c in range(len(CAR_CLASSES)):
        for j in range(per_class):
            split = "train" if j % 2 == 0 else "test"
            n += 1
            fname = f"{n:05d}.jpg"
            img, box, mask = _car_image(rng_for(seed, "car", c, j), c, *size)
            folder = root / f"cars_{split}" if layout == "devkit" else root / "car_data" / split / CAR_CLASSES[c]
            _save_jpeg(folder / fname, img)
            (root / "mask" / f"cars_{split}").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "mask" / f"cars_{split}" / f"{n:05d}_mask.png"), mask)
            rows[split].append((fname, c + 1, box))
    if layout == "devkit":
        (root / "devkit").mkdir(parents=True, exist_ok=True)
        dtype = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"), ("class", "O"), ("fname", "O")]
        for split, path in (("train", root / "devkit" / "cars_train_annos.mat"),
                            ("test", root / "cars_test_annos_withlabels.mat")):
            annos = np.array([(b[0], b[1], b[2], b[3], cls, fname) for fname, cls, b in rows[split]], dtype=dtype)
            scipy.io.savemat(str(path), {"annotations": annos[None]})
        names = np.empty((len(CAR_CLASSES),), dtype=object)
        names[:] = CAR_CLASSES
        scipy.io.savemat(str(root / "devkit" / "cars_meta.mat"), {"class_names": names[None]})
    else:
        for split in rows:
            (root / f"anno_{split}.csv").write_text("".join(f"{f},{b[0]},{b[1]},{b[2]},{b[3]},{c}\n"
                                                            for f, c, b in rows[split]))
        (root / "names.csv").write_text("".join(f"{name}\n" for name in CAR_CLASSES))
    return root


def _object_polygon(rng, category: str, w: int, h: int) -> np.ndarray:
    """A single-component outline: a post for urban objects, a body with legs for animals."""
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.4, 0.6)
    if category in URBAN_OBJECTS:
        pw, ph = w * rng.uniform(0.18, 0.25), h * rng.uniform(0.6, 0.75)
        pts = [(cx - pw / 2, cy - ph / 2), (cx + pw / 2, cy - ph / 2), (cx + pw / 2, cy + ph / 2), (cx - pw / 2, cy + ph / 2)]
    else:
        bw, bh = w * rng.uniform(0.45, 0.6), h * rng.uniform(0.3, 0.4)
        x0, y0, leg = cx - bw / 2, cy - bh / 2, bh * 0.6
        pts = [(x0, y0), (x0 + bw, y0), (x0 + bw, y0 + bh + leg), (x0 + bw * 0.85, y0 + bh + leg),
               (x0 + bw * 0.85, y0 + bh), (x0 + bw * 0.15, y0 + bh), (x0 + bw * 0.15, y0 + bh + leg),
               (x0, y0 + bh + leg)]
    return np.array(pts, np.float64)


def make_lvis(lvis_root: str | Path, coco_root: str | Path, per_category: int = 30, size: tuple[int, int] = (160, 120),
              seed: int = 0) -> tuple[Path, Path]:
    """lvis_v1_{train,val}.json with every UrbanCars co-object category, on COCO-named images in
    coco_root/{train2017,val2017}/; a few objects per category are too small or in two pieces
    (the reference's filters drop them)."""
    lvis_root, coco_root = Path(lvis_root), Path(coco_root)
    lvis_root.mkdir(parents=True, exist_ok=True)
    names = URBAN_OBJECTS + COUNTRY_OBJECTS + ["bicycle"]
    categories = [{"id": i + 1, "name": n, "synset": f"{n}.n.01"} for i, n in enumerate(names)]
    docs = {s: {"images": [], "annotations": [], "categories": categories} for s in ("train", "val")}
    image_id = ann_id = 0
    w, h = size
    for c, name in enumerate(names):
        for j in range(per_category):
            split = "train" if j % 3 else "val"
            image_id += 1
            ann_id += 1
            rng = rng_for(seed, "lvis", name, j)
            img = (np.full((h, w, 3), 140, np.uint8) + rng.integers(0, 30, (h, w, 1), dtype=np.uint8))
            poly = _object_polygon(rng, name, w, h) * (0.3 if j % 10 == 9 else 1.0)  # a few too small
            colour = {"fireplug": (220, 30, 30), "stop_sign": (200, 0, 0), "street_sign": (30, 140, 60),
                      "parking_meter": (90, 90, 90), "traffic_light": (230, 200, 20), "cow": (20, 20, 20),
                      "horse": (120, 70, 30), "sheep": (245, 245, 235)}.get(name, (0, 0, 255))
            cv2.fillPoly(img, [np.round(poly).astype(np.int32)], colour)
            segmentation = [poly.reshape(-1).round(2).tolist()]
            if j % 10 == 8:  # two pieces: dropped as not single-component
                second = poly + np.array([w * 0.3, 0])
                segmentation.append(second.reshape(-1).round(2).tolist())
            if j % 10 == 7:  # a second piece 1 px from the first: two components as pycocotools rasterises
                # them (the reference drops it), one as OpenCV's fillPoly draws them (edges rounded and drawn)
                xs, ys = poly[:, 0], poly[:, 1]
                x = xs.max() + 1.0 if xs.max() + 12 < w else xs.min() - 11.0
                y = float(np.clip((ys.min() + ys.max()) / 2, 0, h - 11))
                piece = np.array([(x, y), (x + 10, y), (x + 10, y + 10), (x, y + 10)])
                segmentation.append(piece.reshape(-1).round(2).tolist())
            _save_jpeg(coco_root / f"{split}2017" / f"{image_id:012d}.jpg", img)
            xs, ys = poly[:, 0], poly[:, 1]
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]
            area = float(cv2.contourArea(poly.astype(np.float32)))
            docs[split]["images"].append({"id": image_id, "height": h, "width": w,
                                          "coco_url": f"http://images.cocodataset.org/{split}2017/{image_id:012d}.jpg"})
            docs[split]["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": c + 1, "bbox": bbox,
                                               "area": area, "segmentation": segmentation})
    for split, doc in docs.items():
        (lvis_root / f"lvis_v1_{split}.json").write_text(json.dumps(doc))
    return lvis_root, coco_root


def scene(rng, category: str, w: int, h: int) -> np.ndarray:
    """Urban: grey road and buildings with windows. Country: sky over green and yellow fields."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    if category in URBAN_SCENES:
        img = np.where(yy < 0.55, np.float32([150, 150, 160]), np.float32([90, 90, 95])) + rng.normal(0, 6, (h, w, 1))
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(5):
            x0 = int(rng.integers(0, w - 20))
            bw, top = int(rng.integers(15, 50)), int(h * rng.uniform(0.05, 0.35))
            cv2.rectangle(img, (x0, top), (x0 + bw, int(h * 0.55)), (110, 100, 100), -1)
            for y in range(top + 4, int(h * 0.55) - 4, 9):
                cv2.rectangle(img, (x0 + 3, y), (x0 + bw - 3, y + 3), (230, 220, 140), -1)
        return img
    sky = np.float32([150, 200, 240])
    field = np.float32([80, 150, 50]) if category != "/d/desert_road" else np.float32([210, 180, 110])
    img = np.where(yy < 0.4, sky, field) + np.sin(np.linspace(0, 40, w))[None, :, None] * 10 * (yy >= 0.4)
    return np.clip(img + rng.normal(0, 5, (h, w, 1)), 0, 255).astype(np.uint8)


def make_urbancars_places(root: str | Path, per_category: int = 24, seed: int = 0, layout: str = "data_256") -> Path:
    """Places365 with UrbanCars' scene categories (256 x 256, as data_256 and places365_standard are).
    layout "easyformat": ROOT/{train,val}/<category>/ as the reference reads it (train files
    NNNNNNNN.jpg, val files Places365_val_NNNNNNNN.jpg; a third of each category in val)."""
    if layout != "easyformat":
        return make_places(root, URBAN_SCENES + COUNTRY_SCENES, per_category=per_category, size=(256, 256), seed=seed,
                           layout=layout, paint=scene)
    root = Path(root)
    n = 0
    for cat in URBAN_SCENES + COUNTRY_SCENES:
        name = "-".join(cat.strip("/").split("/")[1:])
        for j in range(per_category):
            n += 1
            fname = f"{j + 1:08d}.jpg" if j % 3 else f"Places365_val_{n:08d}.jpg"
            _save_jpeg(root / ("train" if j % 3 else "val") / name / fname, scene(rng_for(seed, "places", cat, j), cat,
                                                                                 256, 256))
    return root


def make_urbancars_sources(base: str | Path, cars_per_class: int = 50, seed: int = 0, car_layout: str = "devkit",
                           objects_per_category: int = 48, scenes_per_category: int = 40,
                           places_layout: str = "data_256") -> dict[str, Path]:
    """Every source of the recipe, big enough for its `demo_sizes` (84 of each pool per type); COCO
    images at 320 x 240, so the reference's area thresholds (4,500 / 3,500 px^2) keep most objects."""
    base = Path(base)
    cars = make_stanford_cars(base / "stanford_cars", per_class=cars_per_class, seed=seed, layout=car_layout)
    lvis, coco = make_lvis(base / "lvis", base / "coco", per_category=objects_per_category, size=(320, 240), seed=seed)
    places = make_urbancars_places(base / "places365", per_category=scenes_per_category, seed=seed, layout=places_layout)
    return {"cars": cars, "lvis": lvis, "coco": coco, "places": places}
