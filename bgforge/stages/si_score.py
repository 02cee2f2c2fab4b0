"""One SI-Score image: the square-cropped background, the foreground resized, rotated and alpha-pasted."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import pil_open, read_raw, read_rgb, to_mode
from ..records import Failure, Output, Sample
from .common import Rendered, render_sample
from .placement import alpha_paste, square_background


class BackgroundCache:
    """The last few prepared backgrounds of a worker: each is reused by every foreground and grid cell."""

    def __init__(self, size: int = 16):
        self.size, self.items = size, OrderedDict()

    def get(self, path: str, width: int, height: int) -> Image.Image:
        key = (path, width, height)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        with pil_open(read_raw(path), path) as im:
            bg = square_background(to_mode(im, "RGB"), width, height)
        self.items[key] = bg
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return bg


def _foreground(sample: Sample) -> Image.Image:
    """The cut-out: an RGBA file, or a COCO image's box with its annotation mask as alpha."""
    path = sample.inputs["foreground"]
    if sample.inputs.get("box"):
        from ..sources.coco import annotation_mask

        width, height = sample.inputs["image_size"]
        image = read_rgb(path, "read_image")
        if image.shape[:2] != (height, width):
            raise SampleError("read_image", f"{path} is {image.shape[1]}x{image.shape[0]}, the annotations say "
                                            f"{width}x{height}")
        mask = annotation_mask(sample.inputs["segmentation"], height, width)
        x0, y0, x1, y1 = sample.inputs["box"]
        return Image.fromarray(np.dstack([image[y0:y1, x0:x1], mask[y0:y1, x0:x1]]), "RGBA")
    with pil_open(read_raw(path), path) as im:
        if im.mode not in ("RGBA", "LA", "P", "PA"):
            raise SampleError("read_image", f"{path} has no alpha channel (mode {im.mode}); SI-Score pastes each "
                                            "foreground through its alpha: give RGBA PNGs")
        rgba = to_mode(im, "RGBA")
        return rgba.copy() if rgba is im else rgba   # the file closes with the block


def render(sample: Sample, encoding: Encoding, cache: BackgroundCache) -> Output | Failure:
    def transform(progress) -> Rendered:
        fg = _foreground(sample)
        progress.stage = "read_background"
        bg = cache.get(sample.inputs["background"], *sample.inputs["bg_size"])
        progress.stage = "paste"
        out = alpha_paste(bg, fg, tuple(sample.inputs["size"]), sample.meta["rotation"], tuple(sample.inputs["origin"]))
        meta = dict(sample.meta)
        return Rendered(np.asarray(out), meta, label=meta["foreground_class"], folder_path=meta["file_name"])

    return render_sample(sample, encoding, transform)
