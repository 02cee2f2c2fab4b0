"""The inpaint stage: remove the foreground (mask from an earlier stage, a file, or a segmenter) and fill the hole."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..backends.base import Inpainter, Segmenter, SegmentRequest
from ..backends.masks import dilate, remove_objects_batch
from ..choices import REMOVE_OBJECTS
from ..io.encoding import MASK_PNG_LEVEL, Encoding, encode_mask
from ..io.images import decode, encode
from ..recipe_params import InpaintParams
from ..records import Failure, Output, Sample
from .batch import Batch, Loaded
from .common import run_batched
from .paste import RESAMPLING, object_index
from .pipeline import ModelStage


def object_masks(segmenter: Segmenter | None, items: list[Loaded]) -> list[np.ndarray]:
    """Per item, (N, H, W) bool: the provided mask if any, else the segmenter's objects.

    Every item without a mask goes to the segmenter in one call, so a model sees the whole
    chunk (--batch-size images) per encoder pass instead of one image at a time.
    """
    out: list = [(it.request.mask > 127)[None] if it.request.mask is not None else None for it in items]
    todo = [i for i, m in enumerate(out) if m is None]
    if todo and segmenter is None:
        raise ValueError("no mask for this sample and no --segmenter to make one")
    if todo:
        found = segmenter.segment([items[i].image for i in todo], [items[i].request for i in todo])
        for i, res in zip(todo, found):
            out[i] = res.masks
    return out


def pasted_object(sample: Sample, masks: np.ndarray, rule: str = "largest") -> np.ndarray:
    """The object a box-crop composite pastes: the mask of the box `rule` picks (choices.OBJECT_BOX);
    without one mask per box, the largest mask."""
    boxes = sample.meta.get("boxes") or []
    if len(boxes) == len(masks):
        return masks[object_index(boxes, rule)]
    return masks[int(np.argmax(masks.reshape(len(masks), -1).sum(1)))]


def _box_prompts(item: Loaded) -> np.ndarray | None:
    boxes = item.request.boxes
    return boxes if item.request.mask is None and boxes is not None and len(boxes) else None


def remove_sequentially(segmenter: Segmenter, inpainter: Inpainter, items: list[Loaded],
                        kernel: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Corner Cases' removal, per image: segment box 1, dilate, inpaint; segment box 2 on the
    already inpainted image; and so on. Returns (filled image, union of the holes, the (N,H,W)
    object masks) per item. Round r batches the r-th box of every image that has one, so a
    model still sees a batch per call."""
    current = [it.image for it in items]
    holes = [np.zeros(it.image.shape[:2], bool) for it in items]
    masks: list[list[np.ndarray]] = [[] for _ in items]
    prompts = [_box_prompts(it) for it in items]
    for r in range(max(len(b) for b in prompts)):
        active = [i for i, b in enumerate(prompts) if len(b) > r]
        found = segmenter.segment([current[i] for i in active], [SegmentRequest(boxes=prompts[i][r:r + 1]) for i in active])
        fill = []
        for i, res in zip(active, found):
            masks[i].append(res.union())
            hole = dilate(masks[i][-1], kernel)
            holes[i] |= hole
            if hole.any():
                fill.append((i, hole))
        if fill:
            for (i, _), done in zip(fill, inpainter.inpaint([current[i] for i, _ in fill], [h for _, h in fill])):
                current[i] = done
    return [(img, hole, np.stack(m)) for img, hole, m in zip(current, holes, masks)]


def inpaint_stage(inpainter: Inpainter, segmenter: Segmenter | None, params: dict) -> ModelStage:
    """decode -> segment and fill -> resize and encode, as the three steps a worker pipelines
    (stages/pipeline.py)."""
    p = InpaintParams.from_plan(params)
    kernel = int(p.dilation)
    # Corner Cases removes objects one at a time (`remove_objects: sequential`, or --one-by-one)
    mode = p.remove_objects or ("sequential" if p.one_by_one else "union")
    if mode not in REMOVE_OBJECTS:
        raise ValueError(f"remove_objects must be union or sequential, got {mode!r}")
    one_by_one = mode == "sequential"

    def compute(batch: Batch) -> Batch:
        batch.results = _remove(inpainter, segmenter, batch.ok, kernel, one_by_one)
        return batch

    run = {"inpainter": inpainter.name, "segmenter": None if segmenter is None else segmenter.name,
           "dilation": kernel, "one_by_one": one_by_one,
           # PNG at zlib level 1: 5.4x cheaper to encode than level 6 for a few % more bytes, and the
           # same pixels (HSI writes every background as PNG)
           "encoding": Encoding.of(params, png_level=MASK_PNG_LEVEL)}

    def finish(batch: Batch) -> list[Output | Failure]:
        return batch.outputs({it.sample.key: done if isinstance(done, Failure) else _encode(it.sample, *done, params, run)
                              for it, done in zip(batch.ok, batch.results)})

    return ModelStage(load=lambda samples: Batch.load(samples, params), compute=compute, finish=finish)


def inpaint_batch(inpainter: Inpainter, segmenter: Segmenter | None, samples: list[Sample],
                  params: dict) -> list[Output | Failure]:
    """One batch inline (what a worker's `inpaint_stage` does, without threads)."""
    return inpaint_stage(inpainter, segmenter, params)(samples)


def _remove(inpainter: Inpainter, segmenter: Segmenter | None, ok: list[Loaded], kernel: int,
            one_by_one: bool) -> list:
    """Per decoded item: (filled image, union of the holes, (N,H,W) object masks), or its Failure."""
    boxed = [it for it in ok if one_by_one and segmenter is not None and _box_prompts(it) is not None]
    removed = dict(zip((it.sample.key for it in boxed), run_batched(
        lambda items: remove_sequentially(segmenter, inpainter, items, kernel), boxed, "inpaint")))
    rest = [it for it in ok if it.sample.key not in removed]
    masks = run_batched(lambda items: object_masks(segmenter, items), rest, "segment")
    todo = []
    for it, m in zip(rest, masks):
        if isinstance(m, Failure):
            removed[it.sample.key] = m
        else:
            todo.append((it.sample, it.image, m))
    filled = run_batched(lambda items: remove_objects_batch(inpainter, [i[1] for i in items], [i[2] for i in items],
                                                            kernel, one_by_one), todo, "inpaint")
    for (s, _, m), done in zip(todo, filled):
        removed[s.key] = done if isinstance(done, Failure) else (*done, m)
    return [removed[it.sample.key] for it in ok]


def _encode(s: Sample, img: np.ndarray, hole: np.ndarray, m: np.ndarray, params: dict, run: dict) -> Output:
    """The filled image (resized to `resize` when set), its hole mask and, with `object_mask`, the pasted object."""
    p = InpaintParams.from_plan(params)
    encoding, size = run["encoding"], p.resize
    if p.stored_jpeg_quality:
        # Hard-Spurious-ImageNet's reference saves each inpainted background as a JPEG (PIL's quality 75)
        # at full resolution and reads it back before resizing it to the canvas
        img = decode(encode(img, "jpg", quality=int(p.stored_jpeg_quality)), "RGB")
    frame = {}
    if size:
        src_h, src_w = img.shape[:2]
        img = np.asarray(Image.fromarray(img).resize((int(size), int(size)), RESAMPLING[p.resampling]))
        frame = _stored_frame(s.meta.get("boxes"), src_w, src_h, int(size))
        if hole.shape != img.shape[:2]:  # mask.png and boxes in the stored image's frame (docs/format.md)
            hole = np.asarray(Image.fromarray(hole.astype(np.uint8) * 255).resize((int(size), int(size)),
                                                                                   Image.NEAREST)) > 127
    files = {encoding.image_format: encoding.encode(img), "mask.png": encode_mask(hole)}
    if p.object_mask and len(m):  # the pasted object, undilated, at source size (mask pastes)
        obj = pasted_object(s, m, p.object_box)
        files["object.png"] = encode_mask(obj)
    meta = {**s.meta, "key": s.key, "split_name": s.split, "inpainter": run["inpainter"],
            "segmenter": run["segmenter"], "num_objects": int(len(m)), "dilation": run["dilation"],
            "one_by_one": run["one_by_one"], "hole_frac": round(float(hole.mean()), 6),
            "height": int(img.shape[0]), "width": int(img.shape[1]), "group_name": str(s.meta.get("label", "all")),
            **frame}
    return Output(key=s.key, files=files, meta=meta)


def _stored_frame(boxes, src_w: int, src_h: int, size: int) -> dict:
    """A resized output's `boxes` scaled into the stored size x size frame, and the source size;
    `object.png` stays in the source frame (a mask paste crops it with the source image's box)."""
    sx, sy = size / src_w, size / src_h
    out = {"source_width": int(src_w), "source_height": int(src_h)}
    if boxes:
        out["boxes"] = [[round(float(b[0]) * sx, 3), round(float(b[1]) * sy, 3), round(float(b[2]) * sx, 3),
                         round(float(b[3]) * sy, 3)] for b in boxes]
    return out
