"""Small synthetic datasets in the real on-disk layouts.

They let the demo, the tests and the benchmarks run every recipe end to end with the same
source code that reads the real CUB-200-2011 and Places365 trees. Everything is drawn from
rng_for(seed, ...), so a tree is identical wherever it is generated.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def bird_image(rng: np.random.Generator, species_idx: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
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


def make_cub(root: str | Path, species: Sequence[str] | None = None, per_species: int | dict[str, int] = 20,
             size: tuple[int, int] = (500, 375), seed: int = 0, train_frac: float = 0.5, jitter: float = 0.15) -> Path:
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


def scene_image(rng: np.random.Generator, category: str, width: int, height: int) -> np.ndarray:
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


def make_places(root: str | Path, categories: Sequence[str] = LAND + WATER, per_category: int = 100,
                size: tuple[int, int] = (683, 512), seed: int = 0, layout: str = "data_large",
                paint=None) -> Path:
    """Write a Places365 tree with categories_places365.txt in the chosen layout; `paint(rng, category,
    w, h)` draws a scene (default: scene_image's land and water looks)."""
    paint = paint or scene_image
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
            _save_jpeg(folder / f"{j + 1:08d}.jpg", paint(rng, cat, *size))
    return root


def make_object_folder(root: str | Path, n: int = 12, size: tuple[int, int] = (160, 120), seed: int = 0,
                       labels: Sequence[str] = ("bird", "boat")) -> Path:
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


def _voc_xml(folder: str, key: str, width: int, height: int, objects) -> str:
    """A PASCAL-VOC annotation as ILSVRC ships it (tabs, <size>, one <object> per box)."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n"
        f"\t\t\t<xmax>{b[2]}</xmax>\n\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, b in objects)
    return (f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{key}</filename>\n"
            f"\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n"
            f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
            f"\t<segmented>0</segmented>\n{objs}</annotation>\n")


def _class_pattern(class_idx: int, width: int, height: int) -> np.ndarray:
    """One of five patterns per class (vertical or horizontal stripes, checks, diagonals, rings), in [-1, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = 14 + 4 * (class_idx // 5 % 3)
    kind = class_idx % 5
    if kind == 0:
        return np.sin(x * 2 * np.pi / period)
    if kind == 1:
        return np.sin(y * 2 * np.pi / period)
    if kind == 2:
        return np.sign(np.sin(x * np.pi / period) * np.sin(y * np.pi / period))
    if kind == 3:
        return np.sin((x + y) * 2 * np.pi / (1.5 * period))
    return np.sin(np.hypot(x - width / 2, y - height / 2) * 2 * np.pi / period)


def imagenet_image(rng: np.random.Generator, class_idx: int, width: int, height: int) -> tuple[np.ndarray, list]:
    """A textured scene with 1-2 textured ellipse/rectangle objects and their boxes. Each class has its
    own look (a hue a golden-ratio step round the wheel from its neighbour's, one of five patterns), so
    on a contact sheet an object on another class's background (HSI's R groups) stands out from O."""
    bg_hue = int(class_idx * 180 * 0.618034) % 180
    base = cv2.cvtColor(np.uint8([[[bg_hue, 110, 170]]]), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    arr = base * (0.8 + 0.4 * _smooth_noise(rng, height, width, 12)) + 35 * _class_pattern(class_idx, width, height)[..., None]
    arr += 24 * _smooth_noise(rng, height, width, 3) - 12
    # the object: the opposite hue, saturated, so it never melts into its own class's background
    colour = cv2.cvtColor(np.uint8([[[(bg_hue + 90) % 180, 230, 235]]]), cv2.COLOR_HSV2RGB)[0, 0]
    n_obj = 1 + int(rng.random() < 0.4)
    boxes = []
    for k in range(n_obj):
        # Two objects go to the left and right halves so that their boxes stay distinct.
        lo, hi = ((0.3, 0.7) if n_obj == 1 else ((0.22, 0.32) if k == 0 else (0.68, 0.78)))
        cx, cy = int(width * rng.uniform(lo, hi)), int(height * rng.uniform(0.3, 0.7))
        ax = int(width * rng.uniform(0.08, 0.2 if n_obj == 1 else 0.14))
        ay = int(height * rng.uniform(0.1, 0.25))
        mask = np.zeros((height, width), np.uint8)
        if rng.random() < 0.5:
            cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
        else:
            cv2.rectangle(mask, (cx - ax, cy - ay), (cx + ax, cy + ay), 255, -1)
        texture = (_smooth_noise(rng, height, width, 4, 1)[..., 0] * 70 - 35)[..., None]
        arr = np.where(mask[..., None] > 0, np.float32(colour)[None, None] + texture, arr)
        ys, xs = np.nonzero(mask)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return np.clip(arr, 0, 255).astype(np.uint8), boxes


def make_imagenet(root: str | Path, classes: dict[str, str] | None = None, n_train: int = 12, n_val: int = 6,
                  size: tuple[int, int] = (250, 200), seed: int = 0, box_format: str = "xml", layout: str = "classic",
                  bad_boxes: bool = False, val_per_wnid: bool = False, jitter: float = 0.15) -> Path:
    """Write a tiny ILSVRC-2012 CLS-LOC tree (JPEGs, XML and/or LOC CSV boxes, synset mapping).

    classes: wnid -> "name, synonym" (default: the 21 Hard-Spurious-ImageNet-10 classes).
    layout "classic" (train/, val/, Annotation/) or "kaggle" (ILSVRC/Data|Annotations/CLS-LOC/);
    box_format "xml", "csv" (LOC_*_solution.csv) or "both"; val_per_wnid puts val/<wnid>/ folders.
    Train images are <wnid>_<j> (j = 1..n_train), val images ILSVRC2012_val_<8 digits> in a
    seed-shuffled class order. With bad_boxes the first class gets two more train images:
    <wnid>_<n_train+1> with one good, one zero-area and one outside-the-image box, and
    <wnid>_<n_train+2> whose only box has zero area; the first val image gets an extra
    outside-the-image box. (CSV carries no image size, so there the outside box survives listing.)
    """
    from .imagenet import HSI10_SYNSETS

    if box_format not in ("xml", "csv", "both") or layout not in ("classic", "kaggle"):
        raise ValueError(f"box_format {box_format!r} / layout {layout!r} unknown")
    root = Path(root)
    classes = dict(classes or HSI10_SYNSETS)
    wnids = list(classes)
    data, train_xml, val_xml = _imagenet_dirs(root, layout)
    root.mkdir(parents=True, exist_ok=True)
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} {classes[w]}\n" for w in sorted(wnids)))
    rows = {"train": [], "val": []}

    def emit(split, folder, key, path, w, h, img, objects):
        _save_jpeg(path, img)
        if box_format in ("xml", "both"):
            xml_dir = (train_xml / folder) if split == "train" else val_xml
            xml_dir.mkdir(parents=True, exist_ok=True)
            (xml_dir / f"{key}.xml").write_text(_voc_xml(folder, key, w, h, objects))
        rows[split].append((key, " ".join(f"{n} {b[0]} {b[1]} {b[2]} {b[3]}" for n, b in objects)))

    def draw(split, wnid, j):
        rng = rng_for(seed, "imagenet", split, wnid, j)
        w = int(size[0] * rng.uniform(1 - jitter, 1))
        h = int(size[1] * rng.uniform(1 - jitter, 1))
        img, boxes = imagenet_image(rng, wnids.index(wnid), w, h)
        return w, h, img, [(wnid, b) for b in boxes]

    for wnid in wnids:
        for j in range(1, n_train + 1 + (2 if bad_boxes and wnid == wnids[0] else 0)):
            w, h, img, objects = draw("train", wnid, j)
            if j == n_train + 1:
                objects += [(wnid, (5, 5, 5, 40)), (wnid, (w + 50, 10, w + 150, 80))]
            elif j == n_train + 2:
                objects = [(wnid, (20, 30, 60, 30))]
            key = f"{wnid}_{j}"
            emit("train", wnid, key, data / "train" / wnid / f"{key}.JPEG", w, h, img, objects)
    order = [(w, j) for w in wnids for j in range(n_val)]
    perm = rng_for(seed, "imagenet", "val-order").permutation(len(order))
    for k, idx in enumerate(perm, 1):
        wnid, j = order[idx]
        w, h, img, objects = draw("val", wnid, j)
        if bad_boxes and k == 1:
            objects.append((wnid, (w + 10, h + 10, w + 60, h + 40)))
        key = f"ILSVRC2012_val_{k:08d}"
        folder = data / "val" / wnid if val_per_wnid else data / "val"
        emit("val", "val", key, folder / f"{key}.JPEG", w, h, img, objects)
    if box_format in ("csv", "both"):
        _write_loc_csv(root, rows)
    return root


def _imagenet_dirs(root: Path, layout: str) -> tuple[Path, Path, Path]:
    """(image data root, train XML folder, val XML folder) of an ImageNet layout."""
    if layout == "kaggle":
        data, ann = root / "ILSVRC" / "Data" / "CLS-LOC", root / "ILSVRC" / "Annotations" / "CLS-LOC"
        return data, ann / "train", ann / "val"
    return root, root / "Annotation", root / "Annotation" / "val"


def _write_loc_csv(root: Path, rows: dict[str, list[tuple[str, str]]]) -> None:
    """LOC_<split>_solution.csv: `ImageId,PredictionString` rows sorted by image id."""
    for split, lines in rows.items():
        (root / f"LOC_{split}_solution.csv").write_text(
            "ImageId,PredictionString\n" + "".join(f"{k},{p} \n" for k, p in sorted(lines)))
