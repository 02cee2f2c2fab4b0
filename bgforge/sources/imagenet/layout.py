"""Which ImageNet layout a root holds (classic or Kaggle), and where each split's boxes come from."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import BgforgeError
from .annotations import has_xml

log = logging.getLogger(__package__)  # one logger name for the whole source, as in the CLI's log lines

HINT = "pass --imagenet-root DIR or set BGFORGE_IMAGENET_ROOT"
SPLITS = ("train", "val")


@dataclass
class Layout:
    name: str                                      # "classic" | "kaggle"
    data: dict[str, Path]                          # split -> image folder
    # split -> ("xml", folder) | ("xml-beside", val folder) | ("csv", file) | None
    box_source: dict[str, tuple[str, Path] | None]


def detect_layout(root: Path, require_boxes: bool = True) -> Layout:
    """The layout of an ImageNet root; XML boxes win over the LOC CSV (the XML carries the image size)."""
    if not root.is_dir():
        raise BgforgeError(f"ImageNet root {root} does not exist or is not a folder; {HINT}")
    kaggle = root / "ILSVRC" / "Data" / "CLS-LOC"
    if kaggle.is_dir():
        name = "kaggle"
        data = {s: kaggle / s for s in SPLITS}
        ann = root / "ILSVRC" / "Annotations" / "CLS-LOC"
        train_xml, val_xml = [ann / "train"], [ann / "val"]
    elif (root / "train").is_dir() or (root / "val").is_dir():
        name = "classic"
        data = {s: root / s for s in SPLITS}
        train_xml = [root / "Annotation", root / "Annotations"]
        val_xml = [root / "Annotation" / "val", root / "Annotations" / "val", root / "val_annotations"]
    else:
        raise BgforgeError(f"ImageNet root {root} holds neither train/ and val/ (classic layout) "
                           f"nor ILSVRC/Data/CLS-LOC/ (Kaggle layout); {HINT}")
    box_source: dict[str, tuple[str, Path] | None] = {}
    for split, xml_dirs in (("train", train_xml), ("val", val_xml)):
        xml = next((d for d in xml_dirs if d.is_dir() and has_xml(d)), None)
        kind = "xml"
        if xml is None and split == "val" and has_xml(data["val"]):
            xml, kind = data["val"], "xml-beside"
        csv_path = root / f"LOC_{split}_solution.csv"
        if xml is not None:
            box_source[split] = (kind, xml)
            if csv_path.is_file():
                log.info("ImageNet %s: both XML (%s) and %s found; using the XML (it carries the image size)",
                         split, xml, csv_path.name)
        elif csv_path.is_file():
            box_source[split] = ("csv", csv_path)
        else:
            box_source[split] = None
    if require_boxes and not any(box_source.values()):
        raise BgforgeError(f"ImageNet root {root} ({name} layout) has no bounding boxes: expected "
                           "Annotation/<wnid>/*.xml (ILSVRC/Annotations/CLS-LOC/ for Kaggle) or "
                           "LOC_train_solution.csv / LOC_val_solution.csv in the root")
    described = ", ".join(f"{s} boxes from " + (f"{os.path.relpath(src[1], root)} ({src[0]})" if src else
                                                 "nowhere") for s, src in box_source.items())
    log.info("ImageNet %s layout found at %s; %s", name, root, described)
    return Layout(name, data, box_source)


def missing_boxes_hint(layout: str, split: str) -> str:
    """Where the boxes of a split were expected in a layout, for the error when there are none."""
    if layout == "kaggle":
        return "ILSVRC/Annotations/CLS-LOC/" + split
    if split == "train":
        return "Annotation/<wnid>/*.xml"
    return "Annotation/val/, val_annotations/ or XMLs next to the val images"
