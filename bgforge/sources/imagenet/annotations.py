"""ImageNet box annotations: PASCAL-VOC XML files, the LOC_<split>_solution.csv tables, box checks."""

from __future__ import annotations

import csv
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

from ...errors import BgforgeError
from .classes import WNID_RE

Box = tuple  # (x0, y0, x1, y1) floats in pixels


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def box_text(box: Box) -> str:
    return "[" + ",".join(_fmt(v) for v in box) + "]"


def clip_box(box: Box, width: int | None = None, height: int | None = None) -> tuple[Box | None, str | None]:
    """(valid box or None, message or None). Without a size only the area can be checked."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        return None, f"box {str(box)[:60]} is not four numbers [x0, y0, x1, y1]"
    box = (x0, y0, x1, y1)
    if not all(math.isfinite(v) for v in box):
        return None, f"box {box_text(box)} has a non-finite coordinate"
    if x1 <= x0 or y1 <= y0:
        kind = "zero" if (x1 == x0 or y1 == y0) else "negative"
        return None, f"box {box_text(box)} has {kind} area"
    if width is None or height is None:
        return (x0, y0, x1, y1), None
    if x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0:
        return None, f"box {box_text(box)} lies outside the {width}x{height} image"
    clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    if clipped != (x0, y0, x1, y1):
        return clipped, f"box {box_text(box)} extends past the {width}x{height} image; clipped to {box_text(clipped)}"
    return clipped, None


def box_problem(key: str, message: str) -> dict:
    """The errors.jsonl record of a box dropped or clipped while reading a source."""
    return {"key": key, "stage": "source", "error_type": "BadBox", "message": message}


def scan(folder: Path) -> list[os.DirEntry]:
    """os.scandir entries of a folder, or none if it is missing."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def split_name(name: str) -> tuple[str, str]:
    """(stem, lower-case suffix with its dot) of a file name."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, "." + suffix.lower()) if dot else (name, "")


def xml_index(folder: Path, depth: int = 1) -> dict[str, str]:
    """stem -> path of every .xml in a folder (and its sub-folders, `depth` levels down)."""
    out = {}
    for e in scan(folder):
        if e.is_dir() and depth > 0:
            out.update(xml_index(Path(e.path), depth - 1))
        elif e.name.lower().endswith(".xml"):
            out[e.name[:-4]] = e.path
    return out


def has_xml(folder: Path) -> bool:
    """Whether a folder, or one of its wnid sub-folders, holds an .xml file."""
    for e in scan(folder):
        if e.name.lower().endswith(".xml"):
            return True
        if e.is_dir() and WNID_RE.match(e.name):
            if any(x.name.lower().endswith(".xml") for x in scan(Path(e.path))):
                return True
    return False


def parse_xml(path: str) -> tuple[int | None, int | None, list[tuple[str, Box]]]:
    """(width, height, [(name, box)]) of a PASCAL-VOC annotation."""
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = height = None
    if size is not None:
        try:
            width, height = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        except (TypeError, ValueError):
            width = height = None
        if not width or not height:  # some ILSVRC XMLs carry 0x0; treat as unknown
            width = height = None
    objects = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        box = tuple(float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(((obj.findtext("name") or "").strip(), box))
    return width, height, objects


def read_loc_csv(path: Path, problem: Callable[[str, str], None]) -> dict[str, list[tuple[str, Box]]]:
    """ImageId -> [(wnid, box)] from a LOC_<split>_solution.csv; malformed rows go to problem(key, message)."""
    table: dict[str, list[tuple[str, Box]]] = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise BgforgeError(f"{path}: expected the header 'ImageId,PredictionString', got {header}")
        for row in reader:
            if not row:
                continue
            tokens = (row[1] if len(row) > 1 else "").split()
            objs = []
            if len(tokens) % 5:
                problem(row[0], f"{path.name}: PredictionString has {len(tokens)} fields, "
                                "expected groups of 'wnid x0 y0 x1 y1'; row skipped")
                continue
            try:
                for i in range(0, len(tokens), 5):
                    objs.append((tokens[i], tuple(float(t) for t in tokens[i + 1:i + 5])))
            except ValueError:
                problem(row[0], f"{path.name}: non-numeric box coordinates; row skipped")
                continue
            table.setdefault(row[0].strip(), []).extend(objs)
    return table
