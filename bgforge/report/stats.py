"""Per-class box statistics of an ImageNet source (Hard-Spurious-ImageNet).

centeredness C_c = mean over the class's (image, object) pairs of 1 - ||image centre - object
centre||_inf, coordinates normalised to [0, 1] by the image width and height: a centred object
scores 1, one centred on a corner 0.5. size S_c = mean of box area / image area. Both are pooled
over objects, so an image with two boxes counts twice.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..errors import BgforgeError, UnsafeInput
from ..io.images import image_size
from ..sources.imagenet import ImageNetImage, ImageNetSource, clip_box

FIELDS = ["wnid", "name", "images", "objects", "centeredness", "size"]


def _image_size(img: ImageNetImage) -> tuple[int, int]:
    if img.width and img.height:
        return img.width, img.height
    try:
        return image_size(img.path)  # reads the header only; nothing is decoded
    except UnsafeInput as exc:
        raise BgforgeError(f"{exc}; remove it from the ImageNet tree") from None


def class_stats(source: ImageNetSource, split: str = "train", wnids: list[str] | None = None) -> list[dict]:
    """One row per class: wnid, name, images, objects, centeredness, size (None without objects)."""
    images = source.images(split, wnids)
    order = [source.wnid_for(w) for w in wnids] if wnids is not None else sorted({i.wnid for i in images})
    acc = {w: {"images": 0, "objects": 0, "c": 0.0, "s": 0.0} for w in dict.fromkeys(order)}
    for img in images:
        width, height = _image_size(img)
        a = acc[img.wnid]
        counted = False
        for box in img.boxes:
            # CSV boxes were listed without the image size; check them against it now.
            box, msg = clip_box(box, width, height)
            if msg:
                source.problems.append((img.key, msg + ("" if box else "; dropped from the statistics")))
            if box is None:
                continue
            x0, y0, x1, y1 = box
            cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
            a["c"] += 1 - max(abs(cx - 0.5), abs(cy - 0.5))
            a["s"] += (x1 - x0) * (y1 - y0) / (width * height)
            a["objects"] += 1
            counted = True
        a["images"] += counted
    rows = []
    for w, a in acc.items():
        n = a["objects"]
        rows.append({"wnid": w, "name": source.name_of(w), "images": a["images"], "objects": n,
                     "centeredness": a["c"] / n if n else None, "size": a["s"] / n if n else None})
    return rows


def write_stats_csv(rows: list[dict], path: str | Path, root: str | Path | None = None) -> Path:
    """The per-class table, written atomically (io.atomic; `root`: the folder it must stay inside)."""
    from ..io.atomic import atomic_file

    path = Path(path)
    with atomic_file(path, "w", root) as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6f}" if isinstance(r.get(k), float) else ("" if r.get(k) is None else r[k]))
                        for k in FIELDS})
    return path


# Layout of the histogram figure (pixels); tests check the size.
PANEL_W, PANEL_H, MARGIN = 480, 420, 60
HIST_SIZE = (2 * PANEL_W, PANEL_H)
BINS = 10


def _font(size=14):
    try:  # a scalable font when the system has one; PIL's bitmap font otherwise
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def _text(draw, font, xy, text, anchor="lt"):
    """Text placed by a two-letter anchor (l/m/r, t/m/b); PIL's bitmap font ignores `anchor`."""
    x0, y0, x1, y1 = font.getbbox(text)
    w, h = x1 - x0, y1 - y0
    x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]] - x0
    y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]] - y0
    draw.text((x, y), text, fill="black", font=font)


def _panel(draw, font, left, values, lo, hi, title, xlabel):
    x0, x1 = left + MARGIN, left + PANEL_W - 20
    y0, y1 = 50, PANEL_H - MARGIN  # plot area top / bottom (y grows downwards)
    counts = [0] * BINS
    for v in values:
        counts[min(BINS - 1, max(0, int((v - lo) / (hi - lo) * BINS)))] += 1
    top = max(counts + [1])
    _text(draw, font, (left + PANEL_W // 2, 10), title, "mt")
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill="black", width=1)
    bar_w = (x1 - x0) / BINS
    ph = y1 - y0 - 18  # the tallest bar leaves room for its count
    for i, c in enumerate(counts):
        bx0, bx1 = x0 + i * bar_w + 2, x0 + (i + 1) * bar_w - 2
        by = y1 - ph * c / top
        if c:
            draw.rectangle([bx0, by, bx1, y1 - 1], fill=(70, 120, 190), outline=(30, 60, 110))
            _text(draw, font, ((bx0 + bx1) / 2, by - 3), str(c), "mb")
    for i in range(0, BINS + 1, 2):
        x = x0 + i * bar_w
        draw.line([(x, y1), (x, y1 + 4)], fill="black")
        _text(draw, font, (x, y1 + 7), f"{lo + (hi - lo) * i / BINS:.2f}", "mt")
    for tick in sorted({0, top // 2, top}):
        y = y1 - ph * tick / top
        draw.line([(x0 - 4, y), (x0, y)], fill="black")
        _text(draw, font, (x0 - 7, y), str(tick), "rm")
    _text(draw, font, ((x0 + x1) / 2, y1 + 30), xlabel, "mt")
    _text(draw, font, (x0 - 7, y0 - 8), "classes", "rb")


def histogram_png(rows: list[dict], path: str | Path, root: str | Path | None = None) -> Path:
    """Histograms of the per-class centeredness (left) and size (right), PIL only; written atomically."""
    from ..io.atomic import atomic_file

    path = Path(path)
    img = Image.new("RGB", HIST_SIZE, "white")
    draw = ImageDraw.Draw(img)
    font = _font()
    cs = [r["centeredness"] for r in rows if r.get("centeredness") is not None and not math.isnan(r["centeredness"])]
    ss = [r["size"] for r in rows if r.get("size") is not None and not math.isnan(r["size"])]
    # Centeredness cannot go below 0.5 (an object centred on a corner).
    _panel(draw, font, 0, cs, 0.5, 1.0, f"centeredness C_c ({len(cs)} classes)", "C_c = mean 1 - |centre offset|_inf")
    _panel(draw, font, PANEL_W, ss, 0.0, 1.0, f"size S_c ({len(ss)} classes)", "S_c = mean box area / image area")
    with atomic_file(path, "wb", root) as fh:
        img.save(fh, format="PNG")
    return path
