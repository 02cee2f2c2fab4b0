"""Where a build puts things in OUT: the output layouts, and bgforge's own bookkeeping folder.

A layout names what a training client reads, and nothing else lands where that client looks:
  shards       OUT/shards/{split}-NNNNN.tar (WebDataset, Hugging Face `webdataset`)
  folder       each image at its reference path (Waterbirds: <class_dir>/<file>.jpg) beside
               metadata.csv and RELEASE_v1.0.txt, as WILDS and group_DRO read it; no tars
  imagefolder  OUT/{split}/{label_name}/{key}.{ext} plus metadata.csv with a `file_name` column
               (torchvision ImageFolder, Hugging Face `imagefolder`); no tars
  both         shards + folder
Commit markers, previews and the lock live in OUT/.bgforge/: hidden folders are skipped by
Hugging Face's file resolution, and no layout's client is pointed at OUT itself with a glob.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..choices import LAYOUTS  # noqa: F401 - re-exported: the layouts this module describes
from ..errors import BgforgeError
from .paths import readable_key

TAR_LAYOUTS = ("shards", "both")
REFERENCE_PATH_LAYOUTS = ("folder", "both")   # images at the path the reference dataset uses

BOOKKEEPING = ".bgforge"
REPORT_HTML = "report.html"   # `bgforge inspect --html`; --overwrite removes it with the rest


def bookkeeping_dir(out: str | Path) -> Path:
    """OUT/.bgforge: commit markers, previews, the lock: what no client should read as data."""
    return Path(out) / BOOKKEEPING


def preview_dir(out: str | Path) -> Path:
    return bookkeeping_dir(out) / "preview"


def writes_tars(layout: str) -> bool:
    return layout in TAR_LAYOUTS


def check_layout(layout: str, recipe_name: str, has_reference_paths: bool) -> None:
    """Refuse, before planning, a layout the recipe cannot fill (never an empty success)."""
    if layout not in LAYOUTS:
        raise BgforgeError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout in REFERENCE_PATH_LAYOUTS and not has_reference_paths:
        raise BgforgeError(f"--layout {layout} writes images at the reference dataset's paths, which recipe "
                           f"{recipe_name} does not have; use --layout shards or imagefolder")


@dataclass(frozen=True)
class OutputLayout:
    """What the shard committer writes for one sample besides (or instead of) the tar.

    `label_name(meta)` names the class folder of the imagefolder layout (the planner's
    `label_name`; picklable, as Ray tasks and spawned workers receive it).
    """

    name: str = "shards"
    label_name: Callable[[dict], str] | None = None

    @property
    def tars(self) -> bool:
        return writes_tars(self.name)

    def image_path(self, split: str, key: str, ext: str, meta: dict, reference_path: str | None) -> str | None:
        """The image's path relative to OUT in this layout, or None when it lives only in the tar."""
        if self.name in REFERENCE_PATH_LAYOUTS:
            return reference_path
        if self.name == "imagefolder":
            label = self.label_name(meta) if self.label_name else str(meta.get("label", "all"))
            return f"{split}/{readable_key(str(label))}/{key}.{ext}"
        return None


def as_layout(layout: str | OutputLayout) -> OutputLayout:
    return layout if isinstance(layout, OutputLayout) else OutputLayout(layout)
