"""Any folder of images, with an optional manifest (JSONL or CSV).

Manifest fields (all optional but `path`): key, path (relative to the folder or absolute),
label, boxes ([[x0, y0, x1, y1], ...] in pixels; a JSON string in CSV), text (a prompt for
grounded segmentation), mask (path of a mask image), split. Without a manifest every image
under the folder is a sample, keyed by its relative path. Boxes that are not four finite numbers
with a positive area, or that lie wholly outside their image, are dropped and logged (errors.jsonl,
marked `sample_kept`: the sample is still written, so it is not counted as a failed sample). The
same image listed twice is refused when the two rows are in different splits (a train/test leak)
and warned about, with the keys, within one split.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from PIL import UnidentifiedImageError

from ..errors import BgforgeError, UnsafeInput
from ..io import strict_json
from ..io.images import image_size
from ..io.paths import readable_key as key_from_path
from ..io.paths import unique_key
from ..records import Sample
from .imagenet.annotations import box_problem, clip_box

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _manifest_error(manifest: Path, where: str, problem: str) -> BgforgeError:
    return BgforgeError(f"{manifest}:{where}: {problem}; expected one JSON object per line (JSONL) or a CSV "
                        "with a 'path' column")


def _rows(manifest: Path) -> list[dict]:
    if not manifest.is_file():  # is_file: a FIFO or a device named as the manifest is refused too
        raise BgforgeError(f"manifest {manifest} not found; pass a .jsonl or .csv file with a 'path' column")
    try:
        text = manifest.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _manifest_error(manifest, f"byte {exc.start}", "not UTF-8 text") from None
    if "\0" in text:
        raise _manifest_error(manifest, "1", "binary data (NUL bytes)")
    if manifest.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        for n, r in enumerate(rows, 2):
            if r.get("boxes"):
                try:
                    r["boxes"] = strict_json.loads(r["boxes"], allow_nan=True)
                except ValueError as exc:
                    raise _manifest_error(manifest, str(n), f"'boxes' is not JSON ({getattr(exc, 'msg', exc)})") from None
        return _not_empty(manifest, rows)
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = strict_json.loads(line, allow_nan=True)
            except ValueError as exc:
                raise _manifest_error(manifest, str(n), f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
            if not isinstance(row, dict):
                raise _manifest_error(manifest, str(n), f"a JSON {type(row).__name__}, not an object")
            rows.append(row)
    return _not_empty(manifest, rows)


def _not_empty(manifest: Path, rows: list[dict]) -> list[dict]:
    if not rows:
        raise BgforgeError(f"manifest {manifest} lists no images; expected one row per image with a 'path'")
    return rows


def _image_size(path: Path) -> tuple[int | None, int | None]:
    """(width, height) from the file's header (PIL decodes no pixels for this); (None, None) when
    unreadable, which the stage that decodes the image reports as that sample's failure. A header
    that claims more than the pixel limit, a device or a FIFO is refused here, before any worker starts."""
    try:
        return image_size(path)
    except UnsafeInput as exc:
        raise BgforgeError(f"{exc} (listed in the manifest); remove it from the manifest") from None
    except (OSError, UnidentifiedImageError, ValueError):
        return None, None


def _valid_boxes(raw, key: str, image: Path, skipped: list) -> list | None:
    """The manifest's boxes that are valid ([x0, y0, x1, y1], finite, positive area, overlapping the
    image); the others are logged as skipped (errors.jsonl), never passed on as NaN or empty masks.
    A box that only extends past the edge is kept as written: the backends clip it."""
    if not isinstance(raw, list):
        skipped.append({**box_problem(key, f"boxes {str(raw)[:60]!r} is not a list of [x0, y0, x1, y1]; dropped"),
                        "sample_kept": True})
        return None
    size = _image_size(image) if raw else (None, None)
    boxes = []
    for box in raw:
        ok, msg = clip_box(box)
        if ok and size[0] is not None:
            inside_image, msg = clip_box(ok, *size)
            ok = ok if inside_image else None
        if not ok:  # the sample is still written: a note in errors.jsonl, not a failed sample
            skipped.append({**box_problem(key, msg + "; dropped"), "sample_kept": True})
        else:
            boxes.append(list(ok))
    return boxes


def _row_key(row: dict, rel: str, n: int, seen: set) -> str:
    if row.get("key"):  # a key the user chose must be unique as given
        key = key_from_path(str(row["key"]))
        if key in seen:
            raise BgforgeError(f"duplicate sample key {key!r} (row {n}); give rows unique 'key' values")
        seen.add(key)
        return key
    return unique_key(rel, seen)  # names that only collide once sanitised get a short hash


def load_folder(root: str | Path, manifest: str | Path | None = None, default_split: str = "all",
                skipped: list | None = None) -> list[Sample]:
    """Samples of an image folder; `skipped` collects error records of dropped boxes."""
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
    skipped = [] if skipped is None else skipped
    for n, r in enumerate(rows, 1):
        if not r.get("path"):
            raise BgforgeError(f"manifest row {n} has no 'path'")
        rel = str(r["path"])
        key = _row_key(r, rel, n, seen)
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        inputs = {"image": str(path)}
        if r.get("mask"):
            m = Path(r["mask"])
            inputs["mask"] = str(m if m.is_absolute() else root / m)
        meta = {"source_path": rel}
        for field in ("label", "text"):
            if r.get(field) not in (None, ""):
                meta[field] = r[field]
        if r.get("boxes") not in (None, ""):
            boxes = _valid_boxes(r["boxes"], key, path, skipped)
            if boxes is not None:
                meta["boxes"] = boxes
        samples.append(Sample(key=key, split=str(r.get("split") or default_split), inputs=inputs, meta=meta))
    listed_once(samples)
    return samples


def listed_once(samples: list[Sample]) -> None:
    """The same image file (as its normalised absolute path) in two rows: refused across splits (a
    train/test leak, naming both keys), a warning with the keys within one split (it counts twice)."""
    first: dict[str, Sample] = {}
    doubled: list[str] = []
    for s in samples:
        seen = first.setdefault(os.path.normpath(os.path.abspath(s.inputs["image"])), s)
        if seen is s:
            continue
        if seen.split != s.split:
            raise BgforgeError(f"manifest rows {seen.key!r} (split {seen.split}) and {s.key!r} (split {s.split}) are "
                               f"the same image {s.meta.get('source_path')}: a {seen.split}/{s.split} leak; list each "
                               "image once")
        doubled.append(f"{seen.key} = {s.key} ({s.split})")
    if doubled:
        log.warning("%d image(s) are listed twice in one split of the manifest, so each counts twice: keys %s%s",
                    len(doubled), ", ".join(doubled[:5]), ", ..." if len(doubled) > 5 else "")
