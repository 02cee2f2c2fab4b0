"""Where a build puts things in OUT: the output layouts, and bgforge's own bookkeeping folder.

A layout names what a training client reads, and nothing else lands where that client looks:
  shards       OUT/shards/{split}-NNNNN.tar (WebDataset, Hugging Face `webdataset`)
  folder       each image at its reference path (Waterbirds: <class_dir>/<file>.jpg) beside
               metadata.csv and RELEASE_v1.0.txt, as WILDS and group_DRO read it; no tars
  imagefolder  OUT/{split}/{class folder}/{key}.{ext} plus metadata.csv with a `file_name` column
               (torchvision ImageFolder, Hugging Face `imagefolder`) and classes.json (ImageFolder's
               class order, folder -> label; io/class_folders.py); no tars
  both         shards + folder
  hsi, in9     the folders Corner Cases' timm scripts / backgrounds_challenge's in9_eval.py read
               (io/peer_layouts.py); no tars
  whac-a-mole  UrbanCars as Whac-A-Mole's loaders read it, with its per-image mask and bg-only files
               beside each image (io/layout_urbancars.py); no tars
Commit markers, previews and the lock live in OUT/.bgforge/: hidden folders are skipped by
Hugging Face's file resolution, and no layout's client is pointed at OUT itself with a glob.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..choices import LAYOUTS  # noqa: F401 - re-exported: the layouts this module describes
from ..errors import BgforgeError
from . import layout_urbancars
from .class_folders import class_folder
from .peer_layouts import PLANNER as PEER_LAYOUTS
from .peer_layouts import check_peer_layout, peer_path

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


def check_layout(layout: str, recipe_name: str, has_reference_paths: bool, planner: str | None = None) -> None:
    """Refuse, before planning, a layout the recipe cannot fill (never an empty success)."""
    if layout not in LAYOUTS:
        raise BgforgeError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    check_peer_layout(layout, planner)
    layout_urbancars.check(layout, planner)
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
        if self.name == "imagefolder":   # the folder: the wnid, else the class name (io/class_folders.py)
            return f"{split}/{class_folder(meta, self.label_name)}/{key}.{ext}"
        if self.name in PEER_LAYOUTS:
            return peer_path(self.name, split, key, ext, meta)
        if self.name == layout_urbancars.NAME:
            return layout_urbancars.image_path(split, meta, ext)
        return None

    def side_files(self, image_rel: str, files: dict) -> dict[str, str]:
        """Tar members this layout also writes as files beside the image: member -> path relative to OUT."""
        return layout_urbancars.side_files(image_rel, files) if self.name == layout_urbancars.NAME else {}


def as_layout(layout: str | OutputLayout) -> OutputLayout:
    return layout if isinstance(layout, OutputLayout) else OutputLayout(layout)
