"""The ImageNet-9 variants as the backgrounds challenge's construction code builds them
(`construction: reference`, the default of `bgforge variants`).

Reference: rabbit-abacus/roleofimagebackgrounds `main.py` (the authors' anonymous release); line
numbers are that file's.

- box mask: `ImageDraw.rectangle([xmin, ymin, xmax, ymax])` of the single box, both corners
  included (`:158-165`, `:263-272`), integer coordinates (`int()` of the annotation);
- filters (`is_good_image`, `:121-186`): exactly one box (`:149-151`); at most 90 % of the
  224 x 224 centre crop after `Resize(256, NEAREST)` + `CenterCrop(224)` (`:153-172`); at least
  half of the box (counted after the resize alone) inside that crop (`:174-183`);
- only_bg_b: the box mask black (`:28-34`, `:274`); only_bg_t (`get_bg_tiled`, `:76-107`): the
  strip beside the box with the larger area (left/right strips span the full height, top/bottom
  the full width; horizontal only when strictly larger; on a tie of the two sides the right /
  bottom one), pasted repeatedly from the image's origin (0, 0), then copied into the box mask
  (`:275-276`);
- foreground: GrabCut, 5 iterations from the box rectangle (`:50-71`), failing when its
  foreground is under 10 % of the box; a first failure drops the image from every variant
  (`:280-283`); the foreground variants retry it, up to 10 tries (`:339-354`);
- only_fg / no_fg: the image times the mask / its complement (`:356-358`);
- mixed: the foreground image and the other image's only_bg_t both through `Resize(256,
  NEAREST)` + `CenterCrop(256)`; every *exactly black* pixel of the resized only_fg image takes
  the background (`:360-400`), so the output is 256 x 256 and black object pixels show the
  background too;
- every file saved with PIL's `save()`: JPEG quality 75 (`:290`, `:406`, `:413`).

OpenCV's GrabCut draws from OpenCV's global generator, unseeded in the reference (and the
reference's background pick uses the unseeded `np.random.randint`, `:190-197`): bgforge seeds both
from (seed, key), so a run is reproducible; the published files' exact draws cannot be.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..errors import SampleError
from ..rng import rng_for

RESIZE = 256          # main.py:10-16
CROP = 224
MAX_BOX_FRACTION = 0.9   # :155
MIN_INSIDE = 0.5         # :176
GRABCUT_ITERATIONS = 5   # :57
MIN_MASK_AMOUNT = 0.1    # :65
GRABCUT_TRIES = 10       # :343-348


def int_box(boxes) -> tuple[int, int, int, int]:
    """The single box as the reference reads it (`int()` of each coordinate)."""
    if boxes is None or len(boxes) != 1:
        raise SampleError("filter", f"the reference keeps images with exactly one box, this one has "
                                    f"{0 if boxes is None else len(boxes)}")
    x0, y0, x1, y1 = (int(float(v)) for v in boxes[0])
    return x0, y0, x1, y1


def rect_mask(width: int, height: int, box) -> Image.Image:
    """`ImageDraw.rectangle` of the box, filled white (255), both corners included, as an L image."""
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle(list(box), fill=255)
    return mask


def resize_short(img: Image.Image, size: int = RESIZE) -> Image.Image:
    """torchvision `Resize(size, NEAREST)` of a PIL image: the shorter side to `size`, the longer to
    int(size * long / short)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), Image.NEAREST)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision `CenterCrop(size)` of an image at least `size` on each side."""
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def standard(img: Image.Image) -> Image.Image:
    """`standard_transform` (main.py:10-12): Resize(256, NEAREST) + CenterCrop(256)."""
    return center_crop(resize_short(img), RESIZE)


def filter_problem(width: int, height: int, boxes) -> str | None:
    """Why `is_good_image` rejects the image (None: it keeps it)."""
    try:
        box = int_box(boxes)
    except SampleError as exc:
        return str(exc)
    mask = rect_mask(width, height, box)
    resized = resize_short(mask)
    inside = int(np.count_nonzero(np.asarray(center_crop(resized, CROP))))
    if inside / CROP ** 2 > MAX_BOX_FRACTION:
        return f"the box covers {inside / CROP ** 2:.0%} of the 224 centre crop (the reference keeps at most 90 %)"
    if inside < MIN_INSIDE * int(np.count_nonzero(np.asarray(resized))):
        return "less than half of the box lies inside the 224 centre crop (the reference needs half)"
    return None


def tiled_background(image: np.ndarray, box) -> np.ndarray:
    """`get_bg_tiled`: the full-size image of the chosen strip pasted from (0, 0) edge to edge."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    left, top, right, bottom = x0, y0, w - x1, h - y1
    x_area, y_area = max(left, right) * h, max(top, bottom) * w
    if max(x_area, y_area) <= 0:
        raise SampleError("tile", "no background strip is left beside the box")
    if x_area > y_area:
        region = (0, 0, x0, h) if left > right else (x1, 0, w, h)
    else:
        region = (0, 0, w, y0) if top > bottom else (0, y1, w, h)
    tile = np.asarray(Image.fromarray(image).crop(region))   # PIL pads outside the image with black
    th, tw = tile.shape[:2]
    ys, xs = np.arange(h) % th, np.arange(w) % tw
    return tile[ys[:, None], xs[None, :]]


def only_bg_t(image: np.ndarray, box) -> np.ndarray:
    mask = np.asarray(rect_mask(image.shape[1], image.shape[0], box)) == 255
    out = image.copy()
    out[mask] = tiled_background(image, box)[mask]
    return out


def only_bg_b(image: np.ndarray, box) -> np.ndarray:
    mask = np.asarray(rect_mask(image.shape[1], image.shape[0], box)) == 255
    out = image.copy()
    out[mask] = 0
    return out


def grabcut(image: np.ndarray, box, seed: int, key: str, attempt: int) -> tuple[np.ndarray | None, bool]:
    """`get_fg_mask`: GrabCut from the rectangle, 5 iterations; (mask, success). OpenCV's generator is
    seeded from (seed, key, attempt) first."""
    import cv2

    x0, y0, x1, y1 = box
    cv2.setRNGSeed(int(rng_for(seed, "grabcut", key, attempt).integers(2 ** 31 - 1)))
    mask = np.zeros(image.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(image), mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, GRABCUT_ITERATIONS,
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None, False
    fg = np.where((mask == 2) | (mask == 0), 0, 1).astype(np.uint8)
    area = (x1 - x0) * (y1 - y0)
    return fg, bool(area > 0 and fg.sum() / area >= MIN_MASK_AMOUNT)


def gate(image: np.ndarray, box, seed: int, key: str) -> None:
    """The first pass's single GrabCut try: a failure drops the image from every variant (:280-283)."""
    if not grabcut(image, box, seed, key, 0)[1]:
        raise SampleError("segment", "GrabCut's foreground is under 10 % of the box on the first try: the reference "
                                     "drops the image from every variant")


def foreground(image: np.ndarray, box, seed: int, key: str) -> np.ndarray:
    """The foreground variants' GrabCut mask: the first of up to 10 tries that succeeds (:339-354)."""
    for attempt in range(1, GRABCUT_TRIES + 1):
        fg, ok = grabcut(image, box, seed, key, attempt)
        if ok:
            return fg
    raise SampleError("segment", f"GrabCut failed {GRABCUT_TRIES} times (the reference drops the image)")


def mixed(fg_image: np.ndarray, fg_mask: np.ndarray, bg_image: np.ndarray, bg_box) -> np.ndarray:
    """The 256 x 256 mixed image: the resized only_fg image, its exactly black pixels from the
    resized only_bg_t of the background image (:356-400)."""
    fg_resized = np.asarray(standard(Image.fromarray(fg_image * fg_mask[:, :, None])))
    bg_resized = np.asarray(standard(Image.fromarray(only_bg_t(bg_image, bg_box))))
    black = np.all(fg_resized == 0, axis=-1)
    out = fg_resized.copy()
    out[black] = bg_resized[black]
    return out


def reference_variant(variant: str, image: np.ndarray, boxes, seed: int, key: str,
                      background: tuple[np.ndarray, list] | None = None) -> np.ndarray:
    """One variant of `image` (key: the source image's key) as main.py builds it."""
    box = int_box(boxes)
    gate(image, box, seed, key)
    if variant == "original":
        return image
    if variant == "only_bg_b":
        return only_bg_b(image, box)
    if variant == "only_bg_t":
        return only_bg_t(image, box)
    fg = foreground(image, box, seed, key)
    if variant == "only_fg":
        return image * fg[:, :, None]
    if variant == "no_fg":
        return image * (1 - fg[:, :, None])
    if background is None:
        raise ValueError(f"{variant} needs a background image")
    bg_image, bg_boxes = background
    return mixed(image, fg, bg_image, int_box(bg_boxes))
