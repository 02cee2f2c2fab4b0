"""The inpaint stage: remove the foreground (mask from an earlier stage, a file, or a segmenter) and fill the hole."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..backends.base import Inpainter, Segmenter, remove_objects_batch
from ..io.images import encode
from ..records import Failure, Output, Sample
from .common import run_batched
from .segment import Loaded, load_batch


def object_masks(segmenter: Segmenter | None, item: Loaded) -> np.ndarray:
    """(N, H, W) bool: the provided mask if any, else the segmenter's objects."""
    if item.request.mask is not None:
        return (item.request.mask > 127)[None]
    if segmenter is None:
        raise ValueError("no mask for this sample and no --segmenter to make one")
    return segmenter.segment([item.image], [item.request])[0].masks


def largest_object(sample: Sample, masks: np.ndarray) -> np.ndarray:
    """The object a box-crop composite pastes: the one of the largest box, else the largest mask."""
    boxes = sample.meta.get("boxes") or []
    if len(boxes) == len(masks):
        return masks[int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))]
    return masks[int(np.argmax(masks.reshape(len(masks), -1).sum(1)))]


def inpaint_batch(inpainter: Inpainter, segmenter: Segmenter | None, samples: list[Sample],
                  params: dict) -> list[Output | Failure]:
    ok, failed = load_batch(samples, params)
    kernel = int(params.get("dilation", 15))
    one_by_one = bool(params.get("one_by_one", False))  # Corner Cases: remove objects one at a time

    masks = run_batched(lambda items: [object_masks(segmenter, it) for it in items], ok, "segment")
    outputs = {f.key: f for f in failed}
    todo = []
    for it, m in zip(ok, masks):
        if isinstance(m, Failure):
            outputs[it.sample.key] = m
        else:
            todo.append((it.sample, it.image, m))

    filled = run_batched(lambda items: remove_objects_batch(inpainter, [i[1] for i in items], [i[2] for i in items],
                                                            kernel, one_by_one), todo, "inpaint")
    fmt, size = params.get("image_format", "jpg"), params.get("resize")
    for (s, _, m), done in zip(todo, filled):
        if isinstance(done, Failure):
            outputs[s.key] = done
            continue
        img, hole = done
        if size:
            img = np.asarray(Image.fromarray(img).resize((int(size), int(size)), Image.LANCZOS))
        files = {fmt: encode(img, fmt, quality=params.get("jpeg_quality", 95)),
                 "mask.png": encode(hole.astype(np.uint8) * 255, "png", png_level=1)}
        if params.get("object_mask") and len(m):  # the largest object, undilated, at source size (mask pastes)
            files["object.png"] = encode(largest_object(s, m).astype(np.uint8) * 255, "png", png_level=1)
        meta = {**s.meta, "key": s.key, "split_name": s.split, "inpainter": inpainter.name,
                "segmenter": None if segmenter is None else segmenter.name, "num_objects": int(len(m)),
                "dilation": kernel, "one_by_one": one_by_one, "hole_frac": round(float(hole.mean()), 6),
                "height": int(img.shape[0]), "width": int(img.shape[1]), "group_name": str(s.meta.get("label", "all"))}
        outputs[s.key] = Output(key=s.key, files=files, meta=meta)
    return [outputs[s.key] for s in samples]
