"""Places365 scene images, in whichever of the common layouts the user holds.

Categories are named as in `categories_places365.txt` (`/f/forest/broadleaf`); `place_filename`
keeps the reference form `/<letter>/<category>/<file>` whatever the layout on disk.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import BgforgeError

log = logging.getLogger(__name__)

HINT = "pass --places-root DIR or set BGFORGE_PLACES_ROOT"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}

# (name, folder under root, how a category maps to a sub-folder)
LAYOUTS = [
    ("data_large", "data_large", "nested"),
    ("data_256", "data_256", "nested"),
    ("places365_standard", "places365_standard/train", "flat"),
    ("train", "train", "flat"),
]


def _category_parts(category: str) -> tuple[str, str]:
    """`/f/forest/broadleaf` -> ('f', 'forest/broadleaf')."""
    parts = category.strip("/").split("/")
    if len(parts) < 2 or len(parts[0]) != 1:
        raise BgforgeError(f"Places365 category {category!r} should look like '/o/ocean' or '/f/forest/broadleaf'")
    return parts[0], "/".join(parts[1:])


class PlacesSource:
    def __init__(self, root: Path):
        self.root = Path(root)
        found = [(name, self.root / sub, mode) for name, sub, mode in LAYOUTS if (self.root / sub).is_dir()]
        if not found:
            expected = ", ".join(sub + "/" for _, sub, _ in LAYOUTS)
            raise BgforgeError(f"Places365 root {self.root} holds none of {expected}; {HINT}")
        self.layout, self.base, self.mode = found[0]
        log.info("Places365 layout %s found at %s", self.layout, self.base)

    def category_dir(self, category: str) -> Path:
        letter, name = _category_parts(category)
        if self.mode == "nested":
            candidates = [self.base / letter / name]
        else:  # flat layouts name sub-categories forest-broadleaf (or forest_broadleaf, or nest them)
            candidates = [self.base / name.replace("/", "-"), self.base / name.replace("/", "_"), self.base / name]
        for c in candidates:
            if c.is_dir():
                return c
        raise BgforgeError(f"Places365 category {category} not found: expected {candidates[0]} ({self.layout} layout)")

    def files(self, category: str) -> list[tuple[str, str]]:
        """Sorted (place_filename, path) pairs of one category (plain strings: categories hold
        thousands of files, and Path objects would multiply the planner's memory)."""
        letter, name = _category_parts(category)
        folder = self.category_dir(category)
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file())
        return [(f"/{letter}/{name}/{n}", os.path.join(folder, n)) for n in names]
