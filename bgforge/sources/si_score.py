"""SI-Score's inputs: a foreground folder `<class>/<file>.png` of cut-out objects (RGBA, the alpha
channel is the object) and a flat folder of background images.

Classes are the sorted sub-folder names (the reference's `sorted(set(labels))`); files are sorted
within each class and in the background folder (the reference takes `glob` order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BgforgeError
from ..io.images import image_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Foreground:
    class_name: str
    class_index: int
    instance: int          # index within its class
    path: str
    width: int
    height: int


def _images(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)


def foregrounds(root: str | Path | None) -> list[Foreground]:
    """Every foreground, class by class, with its size read from the file's header."""
    if root is None:
        raise BgforgeError("SI-Score needs foregrounds: --set foregrounds=DIR (DIR/<class>/<object>.png, RGBA)")
    root = Path(root)
    if not root.is_dir():
        raise BgforgeError(f"foregrounds folder {root} does not exist; expected DIR/<class>/<object>.png")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    out = []
    for c, name in enumerate(classes):
        for j, file in enumerate(_images(root / name)):
            path = root / name / file
            w, h = image_size(path)
            out.append(Foreground(name, c, j, str(path), w, h))
    if not out:
        raise BgforgeError(f"foregrounds folder {root} holds no <class>/<image> files")
    return out


def backgrounds(root: str | Path | None) -> list[str]:
    """The background images' paths, sorted (no pixels read)."""
    if root is None:
        raise BgforgeError("SI-Score needs backgrounds: --set backgrounds=DIR (a folder of images)")
    root = Path(root)
    if not root.is_dir():
        raise BgforgeError(f"backgrounds folder {root} does not exist")
    files = [str(root / f) for f in _images(root)]
    if not files:
        raise BgforgeError(f"backgrounds folder {root} holds no .jpg/.png images")
    return files
