"""Any folder of images, with an optional manifest (JSONL or CSV).

Manifest fields (all optional but `path`): key, path (relative to the folder or absolute),
label, boxes ([[x0, y0, x1, y1], ...] in pixels; a JSON string in CSV), text (a prompt for
grounded segmentation), mask (path of a mask image), split. Without a manifest every image
under the folder is a sample, keyed by its relative path.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from ..errors import BgforgeError
from ..records import Sample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def key_from_path(rel: str) -> str:
    """`n01440764/n01440764_10026.JPEG` -> `n01440764_n01440764_10026` (no dots: WebDataset)."""
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "sample"


def _rows(manifest: Path) -> list[dict]:
    if not manifest.is_file():
        raise BgforgeError(f"manifest {manifest} not found; pass a .jsonl or .csv file with a 'path' column")
    if manifest.suffix.lower() == ".csv":
        with open(manifest, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            if r.get("boxes"):
                r["boxes"] = json.loads(r["boxes"])
        return rows
    rows = []
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BgforgeError(f"{manifest}:{n}: not valid JSON ({exc.msg}); expected one object per line") from None
    return rows


def load_folder(root: str | Path, manifest: str | Path | None = None, default_split: str = "all") -> list[Sample]:
    root = Path(root)
    if not root.is_dir():
        raise BgforgeError(f"input folder {root} does not exist; pass --input DIR (a folder of images or bgforge shards)")
    if manifest is None:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        rows = [{"path": str(p.relative_to(root))} for p in paths]
        if not rows:
            raise BgforgeError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {root}")
    else:
        rows = _rows(Path(manifest))
    samples, seen = [], set()
    for n, r in enumerate(rows, 1):
        if not r.get("path"):
            raise BgforgeError(f"manifest row {n} has no 'path'")
        rel = str(r["path"])
        key = key_from_path(str(r.get("key") or rel))
        if key in seen:
            raise BgforgeError(f"duplicate sample key {key!r} (row {n}); give rows unique 'key' values")
        seen.add(key)
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        inputs = {"image": str(path)}
        if r.get("mask"):
            m = Path(r["mask"])
            inputs["mask"] = str(m if m.is_absolute() else root / m)
        meta = {"source_path": rel}
        for field in ("label", "text", "boxes"):
            if r.get(field) not in (None, ""):
                meta[field] = r[field]
        samples.append(Sample(key=key, split=str(r.get("split") or default_split), inputs=inputs, meta=meta))
    return samples
