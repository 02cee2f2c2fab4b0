"""Small synthetic datasets in the real on-disk layouts.

They let the demo, the tests and the benchmarks run every recipe end to end with the same
source code that reads the real CUB-200-2011 and Places365 trees. Everything is drawn from
rng_for(seed, ...), so a tree is identical wherever it is generated.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..rng import rng_for

# Real CUB class folder names: water birds (the reference list), land birds, and the three
# species that the reference's substring match mislabels as water birds ("tern").
DEMO_SPECIES = [
    "001.Black_footed_Albatross", "023.Brandt_Cormorant", "059.California_Gull", "086.Pacific_Loon",
    "100.Brown_Pelican", "141.Artic_Tern", "050.Eared_Grebe",
    "009.Brewer_Blackbird", "029.American_Crow", "073.Blue_Jay", "094.White_breasted_Nuthatch",
    "138.Tree_Swallow", "190.Red_cockaded_Woodpecker",
    "149.Brown_Thrasher", "156.White_eyed_Vireo",
    "154.Red_eyed_Vireo", "162.Canada_Warbler",
    "147.Eastern_Towhee", "088.Western_Meadowlark", "102.Western_Wood_Pewee",
]

LAND = ("/b/bamboo_forest", "/f/forest/broadleaf")
WATER = ("/o/ocean", "/l/lake/natural")


def _smooth_noise(rng, h, w, scale, channels=3):
    small = rng.random((max(2, h // scale), max(2, w // scale), channels)).astype(np.float32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)  # cv2 drops a single channel axis


def _save_jpeg(path: Path, arr: np.ndarray, quality=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=quality)


def bird_image(rng, species_idx: int, width: int, height: int):
    """A cluttered scene with an ellipse 'bird' and its soft mask (uint8 0..255)."""
    scene = _smooth_noise(rng, height, width, 24) * 0.6 + _smooth_noise(rng, height, width, 4) * 0.4
    img = (scene * 255).astype(np.uint8)
    hue = (species_idx * 37) % 180
    body = cv2.cvtColor(np.uint8([[[hue, 200, 220]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
    hard = np.zeros((height, width), np.uint8)
    cx, cy = int(width * rng.uniform(0.35, 0.65)), int(height * rng.uniform(0.35, 0.65))
    ax, ay = int(width * rng.uniform(0.15, 0.25)), int(height * rng.uniform(0.12, 0.2))
    angle = float(rng.uniform(-30, 30))
    cv2.ellipse(hard, (cx, cy), (ax, ay), angle, 0, 360, 255, -1)
    head = (cx + int(ax * 0.9), cy - int(ay * 0.8))
    cv2.circle(hard, head, max(4, ay // 2), 255, -1)
    texture = (_smooth_noise(rng, height, width, 6, 1)[..., 0] * 60 - 30)[..., None]
    bird = np.clip(np.float32(body)[None, None] + texture, 0, 255).astype(np.uint8)
    img = np.where(hard[..., None] > 0, bird, img)
    soft = cv2.GaussianBlur(hard, (0, 0), 2.0)  # CUB masks are soft: an average of annotators
    return img, soft


def make_cub(root, species=None, per_species=20, size=(500, 375), seed=0, train_frac=0.5, jitter=0.15):
    """Write a CUB-200-2011 tree (images, segmentations, txt indices). Returns the root."""
    root = Path(root)
    species = list(species or DEMO_SPECIES)
    counts = per_species if isinstance(per_species, dict) else {s: per_species for s in species}
    root.mkdir(parents=True, exist_ok=True)
    lines_img, lines_split, lines_lab, lines_box = [], [], [], []
    img_id = 0
    for s_idx, sp in enumerate(species):
        name = sp.split(".", 1)[1]
        for j in range(counts[sp]):
            img_id += 1
            rng = rng_for(seed, "cub", sp, j)
            w = int(size[0] * rng.uniform(1 - jitter, 1))
            h = int(size[1] * rng.uniform(1 - jitter, 1))
            img, mask = bird_image(rng, s_idx, w, h)
            rel = f"{sp}/{name}_{j + 1:04d}_{img_id}.jpg"
            _save_jpeg(root / "images" / rel, img)
            mpath = root / "segmentations" / rel.replace(".jpg", ".png")
            mpath.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(mpath)
            ys, xs = np.nonzero(mask > 127)
            lines_img.append(f"{img_id} {rel}")
            lines_split.append(f"{img_id} {int(rng.random() < train_frac)}")
            lines_lab.append(f"{img_id} {s_idx + 1}")
            lines_box.append(f"{img_id} {xs.min()}.0 {ys.min()}.0 {xs.max() - xs.min() + 1}.0 {ys.max() - ys.min() + 1}.0")
    (root / "images.txt").write_text("\n".join(lines_img) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(lines_split) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(lines_lab) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(lines_box) + "\n")
    (root / "classes.txt").write_text("".join(f"{i + 1} {s}\n" for i, s in enumerate(species)))
    return root


def scene_image(rng, category: str, width: int, height: int) -> np.ndarray:
    """Land-like (greens/browns, vertical structure) or water-like (blues, horizontal waves)."""
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    noise = _smooth_noise(rng, height, width, 16)
    if category in WATER:
        sky = np.float32([150, 190, 235]) if category == "/o/ocean" else np.float32([90, 130, 80])
        water = np.float32([20, 70, 150]) if category == "/o/ocean" else np.float32([40, 100, 120])
        horizon = rng.uniform(0.2, 0.4)
        base = np.where(yy < horizon, sky, water) * (0.8 + 0.4 * noise)
        waves = np.sin(np.linspace(0, rng.uniform(30, 60), height))[:, None, None] * 12
        arr = base + np.where(yy < horizon, 0, waves)
    else:
        green = np.float32([40, 120, 40]) if category == "/b/bamboo_forest" else np.float32([70, 110, 40])
        stripes = np.sin(np.linspace(0, rng.uniform(20, 50), width))[None, :, None] * 25
        arr = green * (0.6 + 0.8 * noise) + stripes + 40 * _smooth_noise(rng, height, width, 3)
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_places(root, categories=LAND + WATER, per_category=100, size=(683, 512), seed=0, layout="data_large"):
    """Write a Places365 tree with categories_places365.txt in the chosen layout."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    all_cats = sorted(set(categories) | {"/a/airfield", "/c/canyon", "/d/desert/sand"})
    (root / "categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(all_cats)))
    for cat in categories:
        letter, name = cat.strip("/").split("/", 1)
        folder = {"data_large": root / "data_large" / letter / name,
                  "data_256": root / "data_256" / letter / name,
                  "places365_standard": root / "places365_standard" / "train" / name.replace("/", "-"),
                  "train": root / "train" / name.replace("/", "-")}[layout]
        for j in range(per_category):
            rng = rng_for(seed, "places", cat, j)
            _save_jpeg(folder / f"{j + 1:08d}.jpg", scene_image(rng, cat, *size))
    return root


def make_object_folder(root, n=12, size=(160, 120), seed=0, labels=("bird", "boat")):
    """A plain image folder + manifest.jsonl (path, label, boxes, text, mask) + masks/."""
    root = Path(root)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    lines = []
    for j in range(n):
        rng = rng_for(seed, "objects", j)
        img, soft = bird_image(rng, j % 7, *size)
        ys, xs = np.nonzero(soft > 127)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        label = labels[j % len(labels)]
        _save_jpeg(root / "images" / f"img_{j:04d}.jpg", img, quality=95)
        Image.fromarray(((soft > 127) * 255).astype(np.uint8)).save(root / "masks" / f"img_{j:04d}.png")
        lines.append({"path": f"images/img_{j:04d}.jpg", "label": label, "boxes": [box], "text": label,
                      "mask": f"masks/img_{j:04d}.png"})
    import json
    (root / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root
