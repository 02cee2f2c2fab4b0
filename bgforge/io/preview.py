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

from PIL import Image, ImageDraw

from .atomic import safe_dir, write_atomic
from .layout import preview_dir
from .shards import iter_shard

THUMB = 112
LABEL_W = 170
CAPTION_H = 12   # the class (and a random background's class) under each tile


def _thumb(data: bytes | Path, thumb: int, mask: bytes | None = None, boxes=None) -> Image.Image:
    """A thumbnail; with `mask` (a stage's mask.png) the mask tinted red over it and `boxes` outlined,
    so a segment sheet shows what was segmented, not only the photo."""
    im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    if mask is None:
        # a JPEG decodes at a reduced DCT scale that still leaves both sides >= 2x the thumbnail's
        im.draft("RGB", (thumb, thumb))
    im = im.convert("RGB")
    if mask is not None:
        m = Image.open(io.BytesIO(mask)).convert("L").resize(im.size)
        red = Image.new("RGB", im.size, (230, 30, 30))
        im = Image.composite(Image.blend(im, red, 0.45), im, m)
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
    """A tile's label: its class, and for a random-background composite the background's class."""
    cls = str(meta.get("class_name") or meta.get("label_name") or meta.get("label", ""))
    bg = meta.get("bg_class")
    if bg is not None and meta.get("background") == "random":
        return f"{cls[:9]} on {str(meta.get('bg_class_name') or names.get(bg, bg))[:9]}"
    return cls[:20]


def _picks_from_shards(shard_paths, per_group: int, thumb: int, group_counts: dict | None) -> dict:
    """Up to `per_group` images of each group: at most PER_CLASS of a class while other classes
    can still be found, read from evenly spaced shards first (`_spread`), then topped up.

    group_counts (group -> samples, from groups.json): reading stops once every group has its
    picks, instead of decoding every shard of a million-sample split.
    """
    chosen, spare = defaultdict(list), defaultdict(list)   # group -> [(bytes, meta)]
    per_class: dict = defaultdict(int)
    short = {str(g): min(per_group, n) for g, n in (group_counts or {}).items()}
    names: dict = {}
    for path in _spread(shard_paths):
        if group_counts and not short:
            break
        for _key, files in iter_shard(path):
            meta = json.loads(files["json"])
            if meta.get("wnid") and meta.get("class_name"):
                names.setdefault(meta["wnid"], meta["class_name"])
            group = str(meta.get("group_name", meta.get("group", "all")))
            img_ext = next((e for e in ("jpg", "png", "jpeg") if e in files), None)
            if img_ext is None or len(chosen[group]) >= per_group:
                continue
            cls = str(meta.get("class_name", meta.get("label", "")))
            if per_class[(group, cls)] >= PER_CLASS:
                if len(spare[group]) < per_group:
                    spare[group].append((files[img_ext], files.get("mask.png"), meta))
                continue
            per_class[(group, cls)] += 1
            chosen[group].append((files[img_ext], files.get("mask.png"), meta))
            if short.get(group) == len(chosen[group]):
                del short[group]
                if not short:
                    break
    for group, extra in spare.items():  # rows of few classes: their other images after all
        chosen[group] += extra[:per_group - len(chosen[group])]
    return {g: [(_thumb(data, thumb, mask, meta.get("boxes") if mask else None), _caption(meta, names))
                for data, mask, meta in items] for g, items in chosen.items()}


def _natural(text: str) -> list:
    """`CeO-56` before `CeO-112`: numbers compared as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _sheet(picks: dict, per_group: int, thumb: int, order: dict | None = None) -> Image.Image | None:
    """`order`: {group: row label} in the recipe's group order (HSI: with its difficulty); other groups
    follow, naturally sorted."""
    if not picks:
        return None
    order = order or {}
    groups = [g for g in order if g in picks] + sorted((g for g in picks if g not in order), key=_natural)
    row_h = thumb + 4 + CAPTION_H
    sheet = Image.new("RGB", (LABEL_W + per_group * (thumb + 4), len(groups) * row_h), "white")
    draw = ImageDraw.Draw(sheet)
    for row, group in enumerate(groups):
        y = row * row_h
        draw.text((4, y + thumb // 2 - 6), str(order.get(group, group))[:28], fill="black")
        for col, (im, caption) in enumerate(picks[group]):
            x = LABEL_W + col * (thumb + 4)
            sheet.paste(im, (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
            if caption:
                draw.text((x + 2, y + thumb + 1), caption[:20], fill=(60, 60, 60))
    return sheet


def contact_sheet(shard_paths, per_group: int = 8, thumb: int = THUMB,
                  group_counts: dict | None = None, order: dict | None = None) -> Image.Image | None:
    """A row per group (in `order`, then naturally sorted) of up to `per_group` labelled images
    spread over the shards' classes (see _picks_from_shards)."""
    return _sheet(_picks_from_shards(shard_paths, per_group, thumb, group_counts), per_group, thumb, order)


class FilePicks:
    """Collects, while metadata rows stream past, the first image files of each group per split
    (the layouts without tars); holds at most `per_group` paths per group."""

    def __init__(self, out, per_group: int = 8):
        self.out, self.per_group = Path(out), per_group
        self.by_split: dict = defaultdict(lambda: defaultdict(list))

    def add(self, split: str, rows: list[dict]) -> None:
        for r in rows:
            group = str(r.get("group_name", r.get("group", "all")))
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
