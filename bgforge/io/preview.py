"""Contact sheets: one PNG per split, a row per group, so a person can look before training.

They go to OUT/.bgforge/preview/, out of the way of every client that globs OUT for images.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from ..sample_meta import group_of
from .atomic import safe_dir, write_atomic
from .layout import preview_dir
from .shards import iter_shard

THUMB = 112
LABEL_W = 170
LINE_H = 13      # a caption line (the class, and a random background's class, under each tile)
LABEL_FONT, CAPTION_FONT = ImageFont.load_default(size=13), ImageFont.load_default(size=11)


def wrap(text: str, width: int, font=CAPTION_FONT) -> list[str]:
    """`text` in lines no wider than `width` pixels: broken between words, else after a `-`, `_` or
    `/` (UrbanCars' `urban_car-urban_bg-urban_obj`), else between characters; never cut."""
    lines: list[str] = []
    for w, word in enumerate(str(text).split() or [""]):
        for i, part in enumerate(re.split(r"(?<=[-_/])", word)):
            line = lines[-1] + (" " if i == 0 else "") + part if lines and (w or i) else part
            if lines and (w or i) and font.getlength(line) <= width:
                lines[-1] = line
                continue
            piece = ""
            for ch in part:
                if piece and font.getlength(piece + ch) > width:
                    lines.append(piece)
                    piece = ""
                piece += ch
            lines.append(piece)
    return lines


def _thumb(data: bytes | Path, thumb: int, mask: bytes | None = None, boxes=None, result: bool = False) -> Image.Image:
    """A thumbnail; with `mask` (a stage's mask.png) the mask's outline drawn over it (a segment
    sheet: the mask also tinted red, to show what was segmented; an inpaint sheet, `result`: the
    inpainted pixels left visible inside the outline of the hole) and `boxes` outlined."""
    im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    if mask is None:
        # a JPEG decodes at a reduced DCT scale that still leaves both sides >= 2x the thumbnail's
        im.draft("RGB", (thumb, thumb))
    im = im.convert("RGB")
    if mask is not None:
        m = Image.open(io.BytesIO(mask)).convert("L").resize(im.size).point(lambda v: 255 if v > 127 else 0)
        if not result:
            im = Image.composite(Image.blend(im, Image.new("RGB", im.size, (230, 30, 30)), 0.35), im, m)
        size = 2 * max(1, im.width // 150) + 1
        edge = ImageChops.subtract(m, m.filter(ImageFilter.MinFilter(size)))   # the mask's inner border
        im.paste((255, 220, 0) if result else (230, 30, 30), mask=edge)
        draw = ImageDraw.Draw(im)
        for box in boxes or []:
            if isinstance(box, (list, tuple)) and len(box) == 4:
                draw.rectangle([float(v) for v in box], outline=(255, 220, 0), width=max(1, im.width // 100))
    im.thumbnail((thumb, thumb))
    return im


SPREAD = 16      # shards read first, evenly spaced over the split: rows show many classes, not the first one
PER_CLASS = 2    # tiles of one class in a row before other classes get theirs


def _spread(paths: list, n: int = SPREAD) -> list:
    """The split's shards with `n` evenly spaced ones first (samples are planned class by class)."""
    paths = list(paths)
    if len(paths) <= n:
        return paths
    first = sorted({round(i * (len(paths) - 1) / (n - 1)) for i in range(n)})
    taken = set(first)
    return [paths[i] for i in first] + [p for i, p in enumerate(paths) if i not in taken]


def _caption(meta: dict, names: dict) -> str:
    """A tile's label, whole (the sheet wraps it): its class, and for a random-background composite
    the background's class."""
    cls = str(meta.get("class_name") or meta.get("label_name") or meta.get("label", ""))
    bg = meta.get("bg_class")
    if bg is not None and meta.get("background") == "random":
        return f"{cls} on {meta.get('bg_class_name') or names.get(bg, bg)}"
    return cls


def _candidates(shard_paths, per_group: int, group_counts: dict | None) -> tuple[dict, dict]:
    """group -> class -> up to PER_CLASS (image bytes, mask bytes, meta), from evenly spaced shards
    first (`_spread`), and the wnid -> class name pairs seen. With `group_counts` (group -> samples,
    from groups.json) reading stops, instead of decoding every shard of a million-sample split, once
    each group has its picks and either a shard brought no class not seen before (the classes are
    all there) or the SPREAD evenly spaced shards are read (a plan orders samples class by class,
    so those hold classes from first to last). A group keeps at most `max_classes` classes' candidates
    and `per_group` beyond PER_CLASS of a class (for rows of few classes)."""
    found: dict = defaultdict(dict)
    names: dict = {}
    groups = {str(g): min(per_group, n) for g, n in (group_counts or {}).items()}
    max_classes = per_group * max(len(groups), 8)   # more could not be shown on one sheet
    seen: set = set()
    extra: dict = defaultdict(int)

    def full() -> bool:
        return bool(groups) and all(sum(len(v) for v in found[g].values()) >= n for g, n in groups.items())

    for i, path in enumerate(_spread(shard_paths)):
        before = len(seen)
        seen = {c for by_class in found.values() for c in by_class}
        if full() and (i >= SPREAD or (i >= 2 and len(seen) == before)):
            break
        for _key, files in iter_shard(path):
            meta = json.loads(files["json"])
            if meta.get("wnid") and meta.get("class_name"):
                names.setdefault(meta["wnid"], meta["class_name"])
            img_ext = next((e for e in ("jpg", "png", "jpeg") if e in files), None)
            group = str(group_of(meta, "all"))
            cls = str(meta.get("class_name", meta.get("label", "")))
            by_class = found[group]
            if img_ext is None or (cls not in by_class and len(by_class) >= max_classes):
                continue
            items = by_class.setdefault(cls, [])
            if len(items) < PER_CLASS or (len(items) < per_group and extra[group] < per_group):
                extra[group] += len(items) >= PER_CLASS   # a few more, for rows of few classes
                items.append((files[img_ext], files.get("mask.png"), meta))
    return found, names


def _select(found: dict, per_group: int, groups: list) -> dict:
    """Each group's tiles: classes shown least on the sheet so far first (so every class appears at
    least once where the sheet has room), at most PER_CLASS of a class while others are left, then
    the group's other images; a row's tiles in the order its classes were found."""
    shown: dict = defaultdict(int)
    picks = {}
    for group in groups:
        by_class = found[group]
        first = {c: i for i, c in enumerate(by_class)}
        taken: dict = defaultdict(int)
        row: list = []
        for limit in (1, PER_CLASS, per_group):
            for cls in sorted(by_class, key=lambda c: (shown[c], first[c])):
                while len(row) < per_group and taken[cls] < min(limit, len(by_class[cls])):
                    row.append((first[cls], taken[cls], by_class[cls][taken[cls]]))
                    taken[cls] += 1
                    shown[cls] += 1
        picks[group] = [item for _, _, item in sorted(row, key=lambda t: t[:2])]
    return picks


def _picks_from_shards(shard_paths, per_group: int, thumb: int, group_counts: dict | None,
                       order: dict | None = None) -> dict:
    """Up to `per_group` captioned thumbnails of each group (see _candidates and _select)."""
    found, names = _candidates(shard_paths, per_group, group_counts)
    picks = _select(found, per_group, _row_order([g for g in found if found[g]], order))
    # an inpainted hole (inpaint, edit's removals and swaps: their result is the point) is outlined, not tinted
    return {g: [(_thumb(data, thumb, mask, meta.get("boxes") if mask else None, "hole_frac" in meta or "edit" in meta),
                 _caption(meta, names)) for data, mask, meta in items] for g, items in picks.items()}


def _natural(text: str) -> list:
    """`CeO-56` before `CeO-112`: numbers compared as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _row_order(groups, order: dict | None) -> list:
    order = order or {}
    return [g for g in order if g in groups] + sorted((g for g in groups if g not in order), key=_natural)


def _sheet(picks: dict, per_group: int, thumb: int, order: dict | None = None) -> Image.Image | None:
    """`order`: {group: row label} in the recipe's group order (HSI: with its difficulty); other groups
    follow, naturally sorted. Row labels and captions are wrapped, never cut: a row grows to fit."""
    if not picks:
        return None
    order = order or {}
    groups = _row_order(picks, order)
    labels = {g: wrap(order.get(g, g), LABEL_W - 8, LABEL_FONT) for g in groups}
    captions = {g: [wrap(c, thumb, CAPTION_FONT) if c else [] for _, c in picks[g]] for g in groups}
    heights = [max(thumb + 4 + LINE_H * max([0] + [len(c) for c in captions[g]]), 16 * len(labels[g]) + 4)
               for g in groups]
    sheet = Image.new("RGB", (LABEL_W + per_group * (thumb + 4), sum(heights)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for group, row_h in zip(groups, heights):
        top = y + max(0, thumb // 2 - 8 * len(labels[group]))
        for i, line in enumerate(labels[group]):
            draw.text((4, top + 16 * i), line, fill="black", font=LABEL_FONT)
        for col, ((im, _), lines) in enumerate(zip(picks[group], captions[group])):
            x = LABEL_W + col * (thumb + 4)
            sheet.paste(im, (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
            for i, line in enumerate(lines):
                draw.text((x + 1, y + thumb + 1 + LINE_H * i), line, fill=(60, 60, 60), font=CAPTION_FONT)
        y += row_h
    return sheet


def contact_sheet(shard_paths, per_group: int = 8, thumb: int = THUMB,
                  group_counts: dict | None = None, order: dict | None = None) -> Image.Image | None:
    """A row per group (in `order`, then naturally sorted) of up to `per_group` labelled images
    spread over the shards' classes, every class at least once where the sheet has room."""
    return _sheet(_picks_from_shards(shard_paths, per_group, thumb, group_counts, order), per_group, thumb, order)


class FilePicks:
    """Collects, while metadata rows stream past, the first image files of each group per split
    (the layouts without tars); holds at most `per_group` paths per group."""

    def __init__(self, out, per_group: int = 8):
        self.out, self.per_group = Path(out), per_group
        self.by_split: dict = defaultdict(lambda: defaultdict(list))

    def add(self, split: str, rows: list[dict]) -> None:
        for r in rows:
            group = str(group_of(r, "all"))
            files = self.by_split[split][group]
            if r.get("file_name") and len(files) < self.per_group:
                files.append(self.out / r["file_name"])


def write_previews(out, shards_by_split: dict, per_group: int = 8, groups: dict | None = None,
                   file_picks: FilePicks | None = None, order: dict | None = None) -> list[Path]:
    """One contact sheet per split in OUT/.bgforge/preview/, from the shards or, without tars, from
    `file_picks`; `groups` (groups.json content) lets each stop reading early.

    The splits' sheets are made on threads (Pillow releases the GIL while it decodes and encodes):
    finalize runs after every worker is done, so this is time on the build's critical path.
    """
    def from_shards(split: str, paths) -> tuple[str, Image.Image | None]:
        counts = ((groups or {}).get(split) or {}).get("groups")
        return split, contact_sheet(paths, per_group, group_counts=counts, order=order)

    def from_files(split: str, files: dict) -> tuple[str, Image.Image | None]:
        return split, _sheet({g: [(_thumb(p, THUMB), "") for p in ps] for g, ps in files.items() if ps}, per_group,
                             THUMB, order)

    def save(split: str, sheet: Image.Image) -> Path:
        path = preview_dir(out) / f"{split}.png"
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", compress_level=1)  # a quarter of level 6's time
        write_atomic(path, buf.getvalue(), root=out)
        return path

    jobs = [(from_shards, split, paths) for split, paths in shards_by_split.items()]
    jobs += [(from_files, split, files) for split, files in (file_picks.by_split if file_picks else {}).items()]
    if not jobs:
        return []
    safe_dir(preview_dir(out), out)
    with ThreadPoolExecutor(min(len(jobs), os.cpu_count() or 1)) as pool:
        sheets = dict(pool.map(lambda job: job[0](*job[1:]), jobs))  # a split's file picks replace its shard picks
        return list(pool.map(lambda item: save(*item), [(s, sh) for s, sh in sheets.items() if sh is not None]))
