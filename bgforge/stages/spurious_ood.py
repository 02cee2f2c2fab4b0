"""Spurious-OOD's background-only samples: the Places365 file itself, as the reference copies it."""

from __future__ import annotations

import os

from ..io.encoding import Encoding
from ..io.images import pil_open, read_raw, to_mode
from ..io.orientation import orient_image, orientation, shown_size
from ..records import Failure, Output, Sample
from .common import Step, attempt

JPEG_SUFFIXES = (".jpg", ".jpeg")


def render_ood(sample: Sample, encoding: Encoding) -> Output | Failure:
    """The source bytes unchanged when the output is JPEG and so is the source (generate_placebg.py
    copies each file); otherwise decoded and encoded in the recipe's format."""
    progress = Step("read_image")

    def run() -> Output:
        path = sample.inputs["image"]
        raw = read_raw(path)
        with pil_open(raw, path) as im:
            turn = orientation(raw)  # a file with an EXIF orientation is stored as shown, without the tag
            width, height = shown_size(im.size, turn)
            copy = encoding.image_format == "jpg" and os.path.splitext(path)[1].lower() in JPEG_SUFFIXES and turn == 1
            pixels = None if copy else orient_image(to_mode(im, "RGB"), turn)
            progress.stage = "encode"
            data = raw if copy else encoding.encode(pixels)
        meta = {**sample.meta, "width": width, "height": height}
        folder_path = meta["img_filename"]
        if not copy:
            folder_path = meta["img_filename"] = os.path.splitext(folder_path)[0] + "." + encoding.image_format
        return Output(key=sample.key, files={encoding.image_format: data, "cls": str(meta["place"]).encode()},
                      meta=meta, folder_path=folder_path)

    return attempt(sample.key, progress, run)
