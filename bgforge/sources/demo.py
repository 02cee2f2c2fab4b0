"""The embedded demo: small synthetic CUB and Places365 trees, generated once and cached."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from .. import __version__
from . import synthetic

log = logging.getLogger(__name__)

DEMO_VERSION = "2"  # bump when the generator changes, so stale caches are not reused


def cache_dir() -> Path:
    base = os.environ.get("BGFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "bgforge")
    return Path(base) / f"demo-v{DEMO_VERSION}"


def _generated(root: Path, what: str, make: Callable[[Path], None]) -> Path:
    """`root`, written by make(tmp) into a temporary folder and renamed into place on first use
    (atomic: a killed generation never leaves a half tree that looks complete)."""
    if not (root / "COMPLETE").exists():
        log.info("generating %s in %s (once)", what, root)
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        make(tmp)
        (tmp / "COMPLETE").write_text(f"bgforge {__version__}\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return root


def demo_roots() -> dict[str, Path]:
    """Roots of the demo trees (CUB, Places365), generating them atomically on first use."""
    def make(tmp: Path) -> None:
        synthetic.make_cub(tmp / "CUB_200_2011", per_species=16, seed=2026)
        synthetic.make_places(tmp / "places365", per_category=110, size=(512, 384), seed=2026)

    root = _generated(cache_dir(), "the demo dataset", make)
    return {"cub": root / "CUB_200_2011", "places": root / "places365"}


def demo_imagenet_root() -> Path:
    """A synthetic ILSVRC tree with the Hard-Spurious-ImageNet-10 classes, big enough for its quotas."""
    return _generated(cache_dir() / "imagenet", "the demo ImageNet tree",
                      lambda tmp: synthetic.make_imagenet(tmp, n_train=132, n_val=5, size=(160, 120), seed=2026))


def demo_urbancars_roots() -> dict[str, Path]:
    """Synthetic Stanford Cars (devkit .mat layout, the car masks where the reference keeps them), LVIS + COCO and
    Places365 trees for `build urbancars --demo`."""
    from .synthetic_urbancars import make_urbancars_sources

    root = _generated(cache_dir() / "urbancars-masks", "the demo UrbanCars sources (with the car masks)",
                      lambda tmp: make_urbancars_sources(tmp, seed=2026))
    return {"cars": root / "stanford_cars", "lvis": root / "lvis", "coco": root / "coco", "places": root / "places365"}


def demo_coco_roots() -> dict[str, Path]:
    """A synthetic COCO 2017 tree (vehicles, people) and a DTD-like texture folder for the BAP COCO demos."""
    from .synthetic_coco import make_coco, make_textures

    def make(tmp: Path) -> None:
        make_coco(tmp / "coco", n_images=120, size=(320, 256), seed=2026)
        make_textures(tmp / "dtd", per_kind=40, seed=2026)

    root = _generated(cache_dir() / "coco", "the demo COCO tree", make)
    return {"coco": root / "coco", "textures": root / "dtd" / "images"}


def write_demo_inputs(folder: Path, images: int = 24) -> tuple[Path, Path]:
    """FOLDER/photos (images/, manifest.jsonl with path, label, boxes, text, mask and split), FOLDER/photo_masks
    and FOLDER/phrases.jsonl: what `bgforge demo-inputs` writes for the stage commands to run on.
    The masks lie outside photos/, so a scan of that folder (no manifest) finds the photos only."""
    import json

    photos = synthetic.make_object_folder(Path(folder) / "photos", n=images, seed=2026)
    shutil.rmtree(Path(folder) / "photo_masks", ignore_errors=True)
    os.replace(photos / "masks", Path(folder) / "photo_masks")
    rows = [json.loads(line) for line in (photos / "manifest.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row["split"] = "test" if i % 5 == 4 else "train"  # both labels in each split
        row["mask"] = "../photo_" + row["mask"]   # masks/x.png -> ../photo_masks/x.png (paths are relative to photos/)
    (photos / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    phrases = [{"key": r["path"], "foreground": [r["label"]], "background": "a plain wall",
                "alternate_background": "a beach", "boxes": {r["label"]: r["boxes"]}} for r in rows]
    (Path(folder) / "phrases.jsonl").write_text("".join(json.dumps(p) + "\n" for p in phrases))
    return photos, Path(folder) / "phrases.jsonl"


def demo_photos() -> Path:
    """The cached demo-inputs photos folder (for recipes over an image folder: `build autobackswap --demo`)."""
    root = _generated(cache_dir() / "demo-inputs", "the demo photos", lambda tmp: write_demo_inputs(tmp))
    return root / "photos"
