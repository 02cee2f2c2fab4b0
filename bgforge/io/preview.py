"""Contact sheets: one PNG per split, a row per group, so a person can look before training."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

from .shards import iter_shard

THUMB = 112
LABEL_W = 150

def contact_sheet(shard_paths, per_group: int = 8, thumb: int = THUMB) -> Image.Image | None:
    """Take the first `per_group` images of each group from the shards, in shard order."""
    picks = defaultdict(list)
    for path in shard_paths:
        for _key, files in iter_shard(path):

            meta = json.loads(files["json"])
            group = str(meta.get("group_name", meta.get("group", "all")))
            if len(picks[group]) >= per_group:
                continue
            img_ext = next((e for e in ("jpg", "png", "jpeg") if e in files), None)
            if img_ext is None:
                continue
            im = Image.open(io.BytesIO(files[img_ext])).convert("RGB")
            im.thumbnail((thumb, thumb))
            picks[group].append(im)
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

def write_previews(out, shards_by_split: dict, per_group: int = 8) -> list[Path]:
    written = []
    for split, paths in shards_by_split.items():
        sheet = contact_sheet(paths, per_group)
        if sheet is not None:
            path = Path(out) / "preview" / f"{split}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            sheet.save(path)
            written.append(path)
    return written
