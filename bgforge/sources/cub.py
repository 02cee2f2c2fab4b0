"""CUB-200-2011 in its distributed layout.

root/images.txt              `<id> <class_dir>/<file>.jpg`
root/train_test_split.txt    `<id> <1=train|0=test>`
root/images/<class_dir>/<file>.jpg
root/segmentations/<class_dir>/<file>.png   (separate download; soft greyscale masks)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import BgforgeError
from ..io.paths import check_relative

HINT = "pass --cub-root DIR or set BGFORGE_CUB_ROOT (the CUB_200_2011 folder holding images.txt)"


@dataclass(frozen=True)
class CubImage:
    img_id: int
    rel_path: str          # <class_dir>/<file>.jpg, the reference img_filename
    is_train: bool

    @property
    def class_dir(self) -> str:
        return self.rel_path.split("/", 1)[0]

    @property
    def species(self) -> str:
        """`001.Black_footed_Albatross` -> `black_footed_albatross`."""
        name = self.class_dir.split(".", 1)[-1]
        return name.lower()


class CubSource:
    def __init__(self, root: Path, require_masks: bool = True):
        self.root = Path(root)
        for name in ("images.txt", "train_test_split.txt", "images"):
            if not (self.root / name).exists():
                raise BgforgeError(f"CUB root {self.root} has no {name}; expected the CUB-200-2011 layout: {HINT}")
        if require_masks and not (self.root / "segmentations").is_dir():
            # The masks are a separate download; Waterbirds cannot be built without them.
            alt = self.root.parent / "segmentations"
            if alt.is_dir():
                self.seg_root = alt
            else:
                raise BgforgeError(f"CUB segmentations not found at {self.root / 'segmentations'} (or {alt}); "
                                   "download CUB's segmentations and unpack them there")
        else:
            self.seg_root = self.root / "segmentations"

    def _read_pairs(self, name: str) -> dict[int, str]:
        out = {}
        for lineno, line in enumerate((self.root / name).read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise BgforgeError(f"{self.root / name}:{lineno}: expected '<id> <value>', got {line!r}")
            # A repeated id would silently drop a sample (the later line wins): refuse it instead.
            if int(parts[0]) in out:
                raise BgforgeError(f"{self.root / name}:{lineno}: id {parts[0]} appears twice; ids must be unique")
            out[int(parts[0])] = parts[1].strip()
        return out

    def images(self) -> list[CubImage]:
        paths = self._read_pairs("images.txt")
        splits = self._read_pairs("train_test_split.txt")
        missing = sorted(set(paths) - set(splits))
        if missing:
            raise BgforgeError(f"{self.root / 'train_test_split.txt'} lacks ids present in images.txt, e.g. {missing[:3]}")
        unknown = sorted(i for i in paths if splits[i] not in ("0", "1"))
        if unknown:
            raise BgforgeError(f"{self.root / 'train_test_split.txt'}: id {unknown[0]} has is_training_image "
                               f"{splits[unknown[0]]!r}; expected 1 (train) or 0 (test)")
        for i in sorted(paths):
            # img_filename is both read under images/ and written under --out by --layout folder
            check_relative(paths[i], f"{self.root / 'images.txt'}: id {i}: image path")
        return [CubImage(i, paths[i], splits[i] == "1") for i in sorted(paths)]

    def image_path(self, img: CubImage) -> Path:
        return self.root / "images" / img.rel_path

    def mask_path(self, img: CubImage) -> Path:
        return self.seg_root / (img.rel_path.rsplit(".", 1)[0] + ".png")
