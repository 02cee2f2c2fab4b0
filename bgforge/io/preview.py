"""Contact sheets: one PNG per split, a row per group, so a person can look before training.

They go to OUT/.bgforge/preview/, out of the way of every client that globs OUT for images.
"""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

from .layout import preview_dir
from .shards import iter_shard

THUMB = 112
LABEL_W = 150


def _thumb(data: bytes | Path, thumb: int) -> Image.Image:
    im = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    # a JPEG decodes at a reduced DCT scale that still leaves both sides >= 2x the thumbnail's
    im.draft("RGB", (thumb, thumb))
    im = im.convert("RGB")
    im.thumbnail((thumb, thumb))
    return im


def _picks_from_shards(shard_paths, per_group: int, thumb: int, group_counts: dict | None) -> dict:
    """The first `per_group` images of each group from the shards, in shard order.

    group_counts (group -> samples, from groups.json): reading stops once every group has its
    picks, instead of decoding every shard of a million-sample split. The sheet is the same.
    """
    picks = defaultdict(list)
    # groups still short of their picks; a group the counts do not name, or one whose images
    # cannot be shown, never leaves it, so reading then runs to the end as before
    short = {str(g): min(per_group, n) for g, n in (group_counts or {}).items()}
    for path in shard_paths:
        if group_counts and not short:
            break
        for _key, files in iter_shard(path):
            meta = json.loads(files["json"])
            group = str(meta.get("group_name", meta.get("group", "all")))
            if len(picks[group]) >= per_group:
                continue
            img_ext = next((e for e in ("jpg", "png", "jpeg") if e in files), None)
            if img_ext is None:
                continue
            picks[group].append(_thumb(files[img_ext], thumb))
            if short.get(group) == len(picks[group]):
                del short[group]
                if not short:
                    break
    return picks


def _sheet(picks: dict, per_group: int, thumb: int) -> Image.Image | None:
    if not picks:
        return None
    groups = sorted(picks)
    sheet = Image.new("RGB", (LABEL_W + per_group * (thumb + 4), len(groups) * (thumb + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, group in enumerate(groups):
        y = row * (thumb + 4)
        draw.text((4, y + thumb // 2 - 6), group[:22], fill="black")
        for col, im in enumerate(picks[group]):
            sheet.paste(im, (LABEL_W + col * (thumb + 4) + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
    return sheet


def contact_sheet(shard_paths, per_group: int = 8, thumb: int = THUMB,
                  group_counts: dict | None = None) -> Image.Image | None:
    """A row per group of the first `per_group` images in the shards (see _picks_from_shards)."""
    return _sheet(_picks_from_shards(shard_paths, per_group, thumb, group_counts), per_group, thumb)


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
                   file_picks: FilePicks | None = None) -> list[Path]:
    """One contact sheet per split in OUT/.bgforge/preview/, from the shards or, without tars, from
    `file_picks`; `groups` (groups.json content) lets each stop reading early.

    The splits' sheets are made on threads (Pillow releases the GIL while it decodes and encodes):
    finalize runs after every worker is done, so this is time on the build's critical path.
    """
    def from_shards(split: str, paths) -> tuple[str, Image.Image | None]:
        counts = ((groups or {}).get(split) or {}).get("groups")
        return split, contact_sheet(paths, per_group, group_counts=counts)

    def from_files(split: str, files: dict) -> tuple[str, Image.Image | None]:
        return split, _sheet({g: [_thumb(p, THUMB) for p in ps] for g, ps in files.items() if ps}, per_group, THUMB)

    def save(split: str, sheet: Image.Image) -> Path:
        path = preview_dir(out) / f"{split}.png"
        sheet.save(path, compress_level=1)  # a quarter of level 6's time
        return path

    jobs = [(from_shards, split, paths) for split, paths in shards_by_split.items()]
    jobs += [(from_files, split, files) for split, files in (file_picks.by_split if file_picks else {}).items()]
    if not jobs:
        return []
    preview_dir(out).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(min(len(jobs), os.cpu_count() or 1)) as pool:
        sheets = dict(pool.map(lambda job: job[0](*job[1:]), jobs))  # a split's file picks replace its shard picks
        return list(pool.map(lambda item: save(*item), [(s, sh) for s, sh in sheets.items() if sh is not None]))
