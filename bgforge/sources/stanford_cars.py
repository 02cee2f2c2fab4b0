"""Stanford Cars (Krause et al. 2013) in the layouts people hold: the original devkit or the
common CSV mirror. Each image is a record: file, class (0-based), class name and the annotated box.

  devkit   ROOT/cars_train/*.jpg, ROOT/cars_test/*.jpg, ROOT/devkit/cars_train_annos.mat,
           ROOT/devkit/cars_meta.mat and the test labels ROOT/cars_test_annos_withlabels.mat
           (or devkit/cars_test_annos_withlabels.mat): torchvision's and the Whac-A-Mole
           reference's layout; needs scipy.
  csv      ROOT/anno_train.csv, ROOT/anno_test.csv (fname, x1, y1, x2, y2, class 1-based; no header),
           ROOT/names.csv (one class name a line) and the images under ROOT/car_data/{train,test}/
           <class name>/ or ROOT/cars_{train,test}/ (the Kaggle "by classes folder" mirror).

Images are listed train then test, each in annotation order, as the reference concatenates them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import BgforgeError

HINT = "pass --cars-root DIR (the Stanford Cars devkit layout or the CSV mirror; docs/recipes.md) or set BGFORGE_CARS_ROOT"


@dataclass(frozen=True)
class CarImage:
    split: str          # train | test (Stanford Cars' own split)
    fname: str          # e.g. 00001.jpg
    path: str
    class_index: int    # 0-based, cars_meta order
    class_name: str
    box: tuple          # x1, y1, x2, y2 (pixels, as annotated)

    @property
    def key(self) -> str:
        return f"{self.split}_{self.fname.rsplit('.', 1)[0]}"


class StanfordCarsSource:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise BgforgeError(f"Stanford Cars root {self.root} not found; {HINT}")
        if (self.root / "devkit" / "cars_meta.mat").is_file():
            self.layout = "devkit"
        elif (self.root / "anno_train.csv").is_file() and (self.root / "names.csv").is_file():
            self.layout = "csv"
        else:
            raise BgforgeError(f"Stanford Cars root {self.root} holds neither devkit/cars_meta.mat (the devkit layout) "
                               f"nor anno_train.csv + names.csv (the CSV mirror); {HINT}")

    def class_names(self) -> list[str]:
        if self.layout == "devkit":
            meta = _loadmat(self.root / "devkit" / "cars_meta.mat")
            return [str(n) for n in meta["class_names"].tolist()]
        with open(self.root / "names.csv", encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]

    def images(self) -> list[CarImage]:
        names = self.class_names()
        out: list[CarImage] = []
        for split in ("train", "test"):
            for fname, cls, box in self._annotations(split):
                if not 1 <= cls <= len(names):
                    raise BgforgeError(f"Stanford Cars {split} annotation {fname}: class {cls} is outside 1..{len(names)}")
                out.append(CarImage(split, fname, str(self._image_path(split, fname, names[cls - 1])), cls - 1,
                                    names[cls - 1], box))
        return out

    def _annotations(self, split: str):
        if self.layout == "devkit":
            candidates = ([self.root / "devkit" / "cars_train_annos.mat"] if split == "train" else
                          [self.root / "cars_test_annos_withlabels.mat", self.root / "devkit" / "cars_test_annos_withlabels.mat"])
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise BgforgeError(f"Stanford Cars {split} annotations not found: expected {candidates[0]}"
                                   + (" (the test labels ship separately as cars_test_annos_withlabels.mat)"
                                      if split == "test" else ""))
            annos = _loadmat(path)["annotations"]
            for a in annos.reshape(-1):
                yield (str(a["fname"]), int(a["class"]),
                       tuple(int(a[k]) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")))
            return
        path = self.root / f"anno_{split}.csv"
        if not path.is_file():
            raise BgforgeError(f"Stanford Cars {split} annotations {path} not found")
        with open(path, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.reader(fh), 1):
                if not row or not row[0].strip():
                    continue
                try:
                    fname, x1, y1, x2, y2, cls = row[0].strip(), *(int(v) for v in row[1:6])
                except (ValueError, IndexError):
                    raise BgforgeError(f"{path}:{n}: expected fname,x1,y1,x2,y2,class, got {row!r}") from None
                yield fname, cls, (x1, y1, x2, y2)

    def _image_path(self, split: str, fname: str, class_name: str) -> Path:
        if self.layout == "devkit":
            return self.root / f"cars_{split}" / fname
        for candidate in (self.root / "car_data" / split / class_name / fname, self.root / f"cars_{split}" / fname):
            if candidate.exists():
                return candidate
        return self.root / "car_data" / split / class_name / fname


def _loadmat(path: Path) -> dict:
    try:
        import scipy.io
    except ImportError:
        raise BgforgeError("the Stanford Cars devkit layout (.mat annotations) needs scipy: pip install scipy") from None
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True)
    except (OSError, ValueError, TypeError) as exc:
        raise BgforgeError(f"{path} is not a readable .mat file ({exc})") from None
