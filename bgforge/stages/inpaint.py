"""The inpaint stage: remove the foreground (mask from an earlier stage, a file, or a segmenter) and fill the hole."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..backends.base import dilate
from ..io.images import encode
from ..records import Failure, Output
from .segment import load_batch, run_batched


def object_masks(segmenter, item) -> np.ndarray:
    """(N, H, W) bool: the provided mask if any, else the segmenter's objects."""
    s, image, raw, ext, req = item
    if req.mask is not None:
        return (req.mask > 127)[None]
    if segmenter is None:
        raise ValueError("no mask for this sample and no --segmenter to make one")
    return segmenter.segment([image], [req])[0].masks


def inpaint_batch(inpainter, segmenter, samples, params) -> list:
    ok, failed = load_batch(samples, params)
    kernel = int(params.get("dilation", 15))
    one_by_one = bool(params.get("one_by_one", False))

    def masks_of(items):
        return [object_masks(segmenter, it) for it in items]

    masks = run_batched(masks_of, ok, "segment")
    outputs = {f.key: f for f in failed}
    todo = []
    for it, m in zip(ok, masks):
        if isinstance(m, Failure):
            outputs[it[0].key] = m
        else:
            todo.append((it, m))

    def fill(items):
        if one_by_one:  # Corner Cases: remove objects one at a time, feeding each result on
            out = []
            for (it, m) in items:
                img = it[1]
                for obj in m:
                    img = inpainter.inpaint([img], [dilate(obj, kernel)])[0]
                out.append(img)
            return out
        holes = [dilate(m.any(axis=0) if len(m) else np.zeros(it[1].shape[:2], bool), kernel) for it, m in items]
        return inpainter.inpaint([it[1] for it, _ in items], holes)

    filled = run_batched(fill, todo, "inpaint")
    fmt, size = params.get("image_format", "jpg"), params.get("resize")
    for (it, m), img in zip(todo, filled):
        s = it[0]
        if isinstance(img, Failure):
            outputs[s.key] = img
            continue
        hole = dilate(m.any(axis=0), kernel) if len(m) else np.zeros(img.shape[:2], bool)
        if size:
            img = np.asarray(Image.fromarray(img).resize((int(size), int(size)), Image.LANCZOS))
        files = {fmt: encode(img, fmt, quality=params.get("jpeg_quality", 95)),
                 "mask.png": encode(hole.astype(np.uint8) * 255, "png", png_level=1)}
        if params.get("object_mask") and len(m):  # the largest object, undilated, at source size (mask pastes)
            boxes = s.meta.get("boxes") or []
            if len(boxes) == len(m):  # the object of the largest box: the one a box-crop composite pastes
                idx = int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
            else:
                idx = int(np.argmax(m.reshape(len(m), -1).sum(1)))
            largest = m[idx]
            files["object.png"] = encode(largest.astype(np.uint8) * 255, "png", png_level=1)
        meta = {**s.meta, "key": s.key, "split_name": s.split, "inpainter": inpainter.name,
                "segmenter": None if segmenter is None else segmenter.name, "num_objects": int(len(m)),
                "dilation": kernel, "one_by_one": one_by_one, "hole_frac": round(float(hole.mean()), 6),
                "height": int(img.shape[0]), "width": int(img.shape[1]), "group_name": str(s.meta.get("label", "all"))}
        outputs[s.key] = Output(key=s.key, files=files, meta=meta)
    return [outputs[s.key] for s in samples]
