"""ForNet (ForAug, tobna/ForAug): a segmented foreground recombined with an inpainted background.

The rules re-implement tobna/ForAug fornet.py `ForNet.recombine` (lines 299-410) with a generator
keyed on (seed, sample key) in place of numpy's global state, drawn in the same order:
the scale, the crop of an oversized foreground, the two position draws, the edge blur.
Pieces come from the `pieces` phase: the source image's inpainted background and its object mask.
"""

from __future__ import annotations

from math import floor

import numpy as np
from PIL import Image, ImageFilter

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import decode, sample_image
from ..recipe_params import FornetCommon
from ..records import Failure, Output, Sample
from ..rng import rng_for
from .common import Rendered, Step, render_sample


def merge_masks(masks: list[np.ndarray], threshold: float = 0.9) -> list[np.ndarray]:
    """segment_imagenet.py:242-258: while two masks have IoU > threshold, OR the later into the
    earlier and drop it (restarting the scan after each merge)."""
    masks = [m.astype(bool).copy() for m in masks]
    changed = True
    while changed:
        changed = False
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                union = (masks[i] | masks[j]).sum()
                if union and (masks[i] & masks[j]).sum() / union > threshold:
                    masks[i] |= masks.pop(j)
                    changed = True
                    break
            if changed:
                break
    return masks


def fg_bg_ratio(mask: np.ndarray) -> float:
    """Object pixels over the whole image's area (foreground_size_ratio.py:56-63)."""
    return float((mask > 127).sum() if mask.dtype != bool else mask.sum()) / float(mask.shape[0] * mask.shape[1])


def foreground_rgba(image: np.ndarray, mask: np.ndarray) -> Image.Image:
    """The object's pixels (image x mask) with the mask as alpha, cropped to the mask's bounding
    rectangle (segment_imagenet.py:32-58, 267-272)."""
    m = mask > 127 if mask.dtype != bool else mask
    ys, xs = np.nonzero(m)
    if not len(ys):
        raise SampleError("segment", "no object found (ForAug files the image under no_detect)")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb = image[y0:y1, x0:x1] * m[y0:y1, x0:x1, None]
    alpha = m[y0:y1, x0:x1].astype(np.uint8) * 255
    return Image.fromarray(np.dstack([rgb.astype(np.uint8), alpha]), "RGBA")


def bates(rng: np.random.Generator, n: int) -> float:
    """fornet.py:359-369: mean of |n| uniforms; 0 is the centre; n < 0 wraps x + 0.5 - floor(x + 0.5)."""
    if n == 0:
        return 0.5
    z = float(rng.uniform(0, 1, abs(n)).mean())
    return z + 0.5 - floor(z + 0.5) if n < 0 else z


def recombine(fg: Image.Image, bg: Image.Image, r_fg: float, r_bg: float, p: FornetCommon, rng: np.random.Generator,
              nonant: int | None = None, size_fact: float = 1.0, train: bool = True) -> tuple[Image.Image, dict]:
    """fornet.py:311-400 on PIL images; returns the composite and where the foreground went."""
    bw, bh = bg.size
    fill = float(np.asarray(fg.split()[-1], np.float32).mean() / 255.0)                  # :319
    bg_area = bw * bh / (9 if nonant is not None else 1)                                 # :322-324
    mode = p.fg_size_mode
    lo, hi = {"max": (max(r_fg, r_bg),) * 2, "min": (min(r_fg, r_bg),) * 2,
              "mean": ((r_fg + r_bg) / 2,) * 2}.get(mode, (min(r_fg, r_bg), max(r_fg, r_bg)))   # :327-336
    jitter = float(p.fg_scale_jitter)
    scale = float(rng.uniform(lo * (1 - jitter), hi * (1 + jitter))) / max(fill, 1e-6) * float(size_fact)  # :338-344
    gh = max(1, round(float(np.sqrt(bg_area * scale * fg.size[1] / fg.size[0]))))          # :347-348
    gw = max(1, round(float(np.sqrt(bg_area * scale * fg.size[0] / fg.size[1]))))
    fg = fg.resize((gw, gh), Image.BICUBIC)                                              # :350
    if gw > bw or gh > bh:                                                               # :352-355
        cw, ch = min(gw, bw), min(gh, bh)
        if train:   # torchvision RandomCrop: top, left uniform over the valid range
            top, left = int(rng.integers(0, gh - ch + 1)), int(rng.integers(0, gw - cw + 1))
        else:       # CenterCrop
            top, left = int(round((gh - ch) / 2.0)), int(round((gw - cw) / 2.0))
        fg = fg.crop((left, top, left + cw, top + ch))
    n = int(p.fg_bates_n)
    z1 = bates(rng, n)
    z2 = bates(rng, n)
    jut = float(p.rel_jut_out)
    fw, fh = fg.size
    x_min, x_max = -jut * fw, bw - fw * (1 - jut)                                        # :372-375
    y_min, y_max = -jut * fh, bh - fh * (1 - jut)
    if nonant is not None and nonant >= 0:                                               # :377-381
        x_min, x_max = (nonant % 3) * bw / 3, ((nonant % 3) + 1) * bw / 3 - fw
        y_min, y_max = (nonant // 3) * bh / 3, ((nonant // 3) + 1) * bh / 3 - fh
    if x_min > x_max:                                                                    # :383-386
        x_min = x_max = (x_min + x_max) / 2
    if y_min > y_max:
        y_min = y_max = (y_min + y_max) / 2
    ox, oy = round(z1 * (x_max - x_min) + x_min), round(z2 * (y_max - y_min) + y_min)   # :389-390
    mask = fg.split()[-1]
    sigma_max = float(p.mask_smoothing_sigma)
    if sigma_max > 0.0:                                                                  # :394-397
        sigma = (float(rng.random()) * 0.9 + 0.1) * sigma_max
        mask = mask.filter(ImageFilter.GaussianBlur(radius=sigma)).point(lambda v: 2 * v - 255 if v > 128 else 0)
    out = bg.copy()
    out.paste(fg.convert("RGB"), (ox, oy), mask)                                          # :399
    return out, {"paste_box": [ox, oy, ox + fw, oy + fh], "fg_scale": round(scale, 6), "fg_fill": round(fill, 6)}


def _ratio(store, key: str, cache: dict) -> float | None:
    if key not in cache:
        cache[key] = fg_bg_ratio(decode(store.read(key, "object.png"), "L")) \
            if key in store and store.has_member(key, "object.png") else None
    return cache[key]


def pick_background(store, sample: Sample, pruning_ratio: float, cache: dict) -> tuple[str, str, bool]:
    """The first candidate the phase produced whose fg/bg ratio is below `pruning_ratio` (fornet.py:234-241:
    only when pruning_ratio <= 1.0); none: the last one produced (fornet.py:163-167's fallback)."""
    produced = [(k, w) for k, w in sample.inputs["bg_candidates"] if k in store]
    if not produced:
        raise SampleError("read_background", "no candidate background was produced by the pieces phase")
    if pruning_ratio > 1.0 or sample.meta.get("bg_source") == "orig":   # fornet.py:477-478: orig is never pruned
        return (*produced[0], False)
    for k, w in produced:
        r = _ratio(store, k, cache)
        if r is not None and r < pruning_ratio:
            return k, w, False
    return (*produced[-1], True)


def render(sample: Sample, store, params: FornetCommon, encoding: Encoding, cache: dict) -> Output | Failure:
    return render_sample(sample, encoding, lambda progress: _compose(sample, store, params, progress, cache))


def _compose(sample: Sample, store, params: FornetCommon, progress: Step, cache: dict) -> Rendered:
    m = sample.meta
    if m["fg_key"] not in store:
        raise SampleError("segment", "the pieces phase has no foreground for this image (no detection or a failure)")
    arr, _, _ = sample_image(sample.inputs, progress.stage)
    obj = decode(store.read(m["fg_key"], "object.png"), "L")
    if obj.shape != arr.shape[:2]:
        raise SampleError("read_image", f"object mask {obj.shape} does not match the image {arr.shape[:2]}")
    fg = foreground_rgba(arr, obj)
    progress.stage = "read_background"
    bg_key, bg_class, fallback = pick_background(store, sample, float(params.pruning_ratio), cache)
    bg = Image.fromarray(store.image(bg_key))
    r_fg = fg_bg_ratio(obj)
    r_bg = _ratio(store, bg_key, cache) or 0.0
    progress.stage = "composite"
    rng = rng_for(int(params.seed), "fornet", sample.key)
    out, where = recombine(fg, bg, r_fg, r_bg, params, rng, m.get("nonant"), float(m.get("size_fact", 1.0)),
                           train=m.get("split") == "train")
    meta = {**m, **where, "bg_key": bg_key, "bg_fallback": fallback, "fg_ratio": round(r_fg, 6),
            "bg_ratio": round(r_bg, 6), "bg_class": bg_class,
            "bg_relation": "orig" if bg_key == m["fg_key"] else ("same" if bg_class == m["wnid"] else "other")}
    return Rendered(np.asarray(out.convert("RGB")), meta, label=m["label"])
