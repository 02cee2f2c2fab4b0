"""What the UrbanCars reference (facebookresearch/Whac-A-Mole) reads besides the raw datasets,
where a user holds it: its car masks, its Places layout and the name lists of its repository.

  car masks       STANFORD_ROOT/mask/cars_<split>/<stem>_mask.png: MaskFormer's masks as
                  `create_datasets/urbancars/predict_car_mask.py:67-68, 122-123` writes them and
                  `src_dataset/stanford_cars.py:42, 85-88, 137-144` reads them
  Places          PLACES_ROOT/{train,val}/<category>/ (Places365-Standard "easyformat", which
                  `scripts/prepare_dataset_models/create_urbancars.sh:50-54` unpacks and renames to
                  data/places), also found as PLACES_ROOT/places/ or PLACES_ROOT/places365_standard/;
                  per category the train files then the val files, each sorted (`src_dataset/places.py:24-39`)
  name lists      `reference_metadata`: the reference's `create_datasets/urbancars/metadata` folder
                  (a checkout of Whac-A-Mole): `stanford_cars/{train,test}.txt` (the cars kept,
                  `stanford_cars.py:89-121`), `stanford_cars/body_type.json` (the car type per class) and
                  `places/filter_objs/<split>/<category>.txt` (the scenes kept, `places.py:27-33`)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import BgforgeError

PLACES_SPLITS = ("train", "val")


def car_mask_files(cars_root: str | Path) -> dict[str, set[str]]:
    """split -> the mask file names present under cars_root/mask/cars_<split>/ (empty when absent)."""
    found = {}
    for split in ("train", "test"):
        folder = Path(cars_root) / "mask" / f"cars_{split}"
        try:
            with os.scandir(folder) as it:
                found[split] = {e.name for e in it if e.name.endswith("_mask.png")}
        except OSError:
            found[split] = set()
    return found


def car_mask_path(cars_root: str | Path, split: str, fname: str) -> str:
    return os.path.join(cars_root, "mask", f"cars_{split}", os.path.splitext(fname)[0] + "_mask.png")


def reference_places_base(root: str | Path) -> Path | None:
    """The folder holding train/ and val/ in the easyformat the reference reads, or None."""
    root = Path(root)
    for base in (root, root / "places", root / "places365_standard"):
        if all((base / split).is_dir() for split in PLACES_SPLITS):
            return base
    return None


def reference_category(category: str) -> str:
    """`/g/garage/outdoor` -> `garage-outdoor`: the easyformat folder and the reference's metadata name."""
    parts = category.strip("/").split("/")
    if len(parts) < 2 or len(parts[0]) != 1:
        raise BgforgeError(f"Places365 category {category!r} should look like '/a/alley' or '/g/garage/outdoor'")
    return "-".join(parts[1:])


def reference_places_files(base: Path, category: str, metadata: Path | None) -> list[tuple[str, str]]:
    """(train/<category>/<file>, path) pairs as `places.py:24-39` lists them: the train files then the
    val files, each sorted; only the files the reference's filter list names when `metadata` is given."""
    name = reference_category(category)
    out = []
    for split in PLACES_SPLITS:
        folder = base / split / name
        if not folder.is_dir():
            raise BgforgeError(f"Places365 category {category} not found: expected {folder} (the easyformat layout "
                               "the UrbanCars reference reads holds every category in train/ and val/)")
        if metadata is not None:
            names = sorted(line.strip() for line in _read_lines(metadata / "places" / "filter_objs" / split / f"{name}.txt"))
        else:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if e.is_file() and e.name.lower().endswith((".jpg", ".jpeg", ".png")))
        out += [(f"{split}/{name}/{n}", os.path.join(folder, n)) for n in names]
    return out


def check_metadata(path: str) -> Path | None:
    if not path:
        return None
    folder = Path(path)
    expected = folder / "stanford_cars" / "body_type.json"
    if not expected.is_file():
        raise BgforgeError(f"reference_metadata {folder} holds no stanford_cars/body_type.json; pass the "
                           "create_datasets/urbancars/metadata folder of a Whac-A-Mole checkout")
    return folder


def kept_cars(metadata: Path, split: str) -> set[str]:
    """The Stanford Cars file names of one split the reference keeps (`stanford_cars.py:89-94`)."""
    return set(_read_lines(metadata / "stanford_cars" / f"{split}.txt"))


def body_types(path: Path, n_classes: int) -> list[int]:
    """0 urban / 1 country per class from a body_type.json (one flag per class, cars_meta order)."""
    try:
        flags = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BgforgeError(f"body types file {path}: {exc}; expected a JSON list of 0/1 per class") from None
    if not isinstance(flags, list) or len(flags) != n_classes or not all(f in (0, 1) for f in flags):
        raise BgforgeError(f"body types file {path} must list one 0 (urban) or 1 (country) per class "
                           f"({n_classes} classes)")
    return [int(f) for f in flags]


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise BgforgeError(f"reference name list {path} not readable ({exc.strerror or exc}); reference_metadata must "
                           "be the create_datasets/urbancars/metadata folder of a Whac-A-Mole checkout") from None
