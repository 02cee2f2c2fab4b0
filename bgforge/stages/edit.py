"""ASPIRE-style edits (PAPERS §6): remove one named object, or swap the background, then ask a classifier.

Each sample is one (image, edit) pair planned by planners/edit.py: `original` (the image as is,
for the prediction before any edit), `remove` (one foreground phrase: its boxes -> masks ->
union -> dilate -> inpaint) or `background` (the class object composited onto a background
drawn from a pool). Samples of one image share a single decode and a single prediction of
the original within a batch. A sample that fails becomes a Failure; the rest of the batch
goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..backends.base import SegmentRequest, SegmentResult, dilate
from ..classify import is_flip
from ..io.images import decode, encode, sample_image
from ..records import Failure, Output
from .composite import fit_background, soft_composite
from .segment import load_batch, run_batched


def _batched(fn, items, stage) -> list:
    """run_batched, without calling a model on an empty batch (e.g. a chunk of originals only)."""
    return run_batched(fn, items, stage) if items else []


@dataclass
class EditTools:
    """What a worker builds once: the models every batch uses."""

    segmenter: object                 # a Segmenter: boxes (provided grounding) or text (grounded-sam) -> masks
    inpainter: object | None = None   # needed by `remove`
    classifier: object | None = None  # bgforge.classify.Classifier, optional
    class_index: object | None = None  # bgforge.classify.ClassIndex, for prediction names


# ---------------------------------------------------------------- the two edits
def remove_phrase(inpainter, images: list[np.ndarray], masks: list[np.ndarray], kernel: int = 15):
    """Remove each image's objects ((N,H,W) bool masks of one phrase): union -> dilate -> inpaint.

    Returns [(edited image, the dilated hole that was filled)], one inpainter call for the batch.
    """
    holes = [dilate(m.any(axis=0), kernel) for m in masks]
    return list(zip(inpainter.inpaint(images, holes), holes))


def swap_background(image: np.ndarray, object_mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The object (bool mask) at its place and size on `background`, cover-fitted to the image size.

    Reuses the Waterbirds compositing rules (reference crop/resize arithmetic, uint8 blend):
    no pixel of the old background survives outside the object mask, so the old scene needs
    no inpainting under the pasted object.
    """
    h, w = image.shape[:2]
    bg = fit_background(Image.fromarray(background), w, h)
    return soft_composite(image, object_mask.astype(np.uint8) * 255, np.asarray(bg.convert("RGB")))


# ---------------------------------------------------------------- batch
def segment_edits(segmenter, edits, images: dict, params) -> dict:
    """key -> this edit's SegmentResult (its phrase's objects) or a Failure.

    Boxes come from the phrases file (`provided`) or from GroundingDINO run on each (image,
    phrase) pair, as in the reference. All boxes of one source image then go to the segmenter
    in one request, so SAM encodes an image once however many phrases it has, and each edit
    takes back the masks of its own boxes.
    """
    results: dict = {}
    boxes_of, extra = {}, {}
    detector, sam = getattr(segmenter, "detector", None), getattr(segmenter, "sam", None)
    if params.get("grounding") == "grounded-sam" and (detector is None or sam is None):
        # a text-prompted backend without separable parts: one call per (image, phrase)
        items = [(s, images[s.meta["source_key"]], SegmentRequest(text=s.meta["prompt"])) for s in edits]
        got = _batched(lambda its: segmenter.segment([i[1] for i in its], [i[2] for i in its]), items, "segment")
        return {it[0].key: r for it, r in zip(items, got)}
    if params.get("grounding") == "grounded-sam":
        items = [(s, images[s.meta["source_key"]]) for s in edits]
        dets = _batched(lambda its: detector.detect([i[1] for i in its], [i[0].meta["prompt"] for i in its]),
                           items, "ground")
        for (s, _), d in zip(items, dets):
            if isinstance(d, Failure):
                results[s.key] = d
            else:
                boxes_of[s.key], extra[s.key] = d[0], (d[1], list(d[2]))   # detector scores, matched words

        def segment_fn(imgs, boxes):
            return sam.segment_boxes(imgs, boxes)
    else:
        for s in edits:
            boxes_of[s.key] = np.asarray(s.meta.get("boxes") or [], np.float32).reshape(-1, 4)

        def segment_fn(imgs, boxes):
            return segmenter.segment(imgs, [SegmentRequest(boxes=b) for b in boxes])
    by_source: dict = {}
    for s in edits:
        if s.key in boxes_of:
            by_source.setdefault(s.meta["source_key"], []).append(s)
    items = [(group[0], images[src], group) for src, group in by_source.items()]
    got = _batched(lambda its: segment_fn([i[1] for i in its],
                                             [np.concatenate([boxes_of[s.key] for s in i[2]]) for i in its]),
                      items, "segment")
    for (_, _, group), res in zip(items, got):
        start = 0
        for s in group:
            if isinstance(res, Failure):
                results[s.key] = Failure(s.key, res.stage, res.error_type, res.message)
                continue
            end = start + len(boxes_of[s.key])
            scores, phrases = extra.get(s.key, (res.scores[start:end], []))
            results[s.key] = SegmentResult(masks=res.masks[start:end], boxes=res.boxes[start:end], scores=scores,
                                           backend=segmenter.name, phrases=phrases)
            start = end
    return results


def edit_batch(tools: EditTools, samples, params) -> list:
    kernel = int(params.get("dilation", 15))
    fmt = params.get("image_format", "jpg")
    groups: dict[str, list] = {}
    for s in samples:
        groups.setdefault(s.meta["source_key"], []).append(s)
    outputs: dict = {}

    def fail_source(src, f: Failure):
        for s in groups[src]:
            outputs.setdefault(s.key, Failure(s.key, f.stage, f.error_type, f.message))

    # 1. decode each source image once
    reps = [g[0] for g in groups.values()]
    ok, failed = load_batch(reps, params)
    source_of = {r.key: r.meta["source_key"] for r in reps}
    for f in failed:
        fail_source(source_of[f.key], f)
    images = {it[0].meta["source_key"]: it[1:4] for it in ok}   # src -> (array, raw bytes, ext)

    # 2. ground every edit, then segment: one segmenter call per source image for all its edits
    edits = [s for s in samples if s.key not in outputs and s.meta["edit"] != "original"]
    found = {}
    by_key = {s.key: s for s in edits}
    for key, res in segment_edits(tools.segmenter, edits, {k: v[0] for k, v in images.items()}, params).items():
        if isinstance(res, Failure):
            outputs[key] = res
        elif res.masks.shape[0] == 0 or not res.masks.any():
            outputs[key] = Failure(key, "ground", "NothingFound", _nothing_found(by_key[key], params))
        else:
            found[key] = res

    # 3. apply the edits
    edited: dict = {}   # key -> (array, extra files, extra meta)
    removals = [(s, images[s.meta["source_key"]][0], found[s.key]) for s in edits
                if s.key in found and s.meta["edit"] == "remove"]
    filled = _batched(lambda items: remove_phrase(tools.inpainter, [i[1] for i in items],
                                                     [i[2].masks for i in items], kernel), removals, "inpaint")
    for (s, image, res), r in zip(removals, filled):
        if isinstance(r, Failure):
            outputs[s.key] = r
            continue
        img, hole = r
        edited[s.key] = (img, {"mask.png": _png(hole)}, {"hole_area": _frac(hole), "inpainter": tools.inpainter.name})
    for s in edits:
        if s.key in found and s.meta["edit"] == "background":
            try:
                bg = sample_image(s.inputs["background"], "read_background")[0]
                obj = found[s.key].union()
                edited[s.key] = (swap_background(images[s.meta["source_key"]][0], obj, bg), {"mask.png": _png(obj)}, {})
            except Exception as exc:  # noqa: BLE001 - one bad background loses one sample
                outputs[s.key] = Failure.of(s.key, exc, "composite")

    # 4. encode; the classifier sees exactly the stored pixels
    stored: dict = {}
    for key, (img, _, _) in edited.items():
        data = encode(img, fmt, quality=params.get("jpeg_quality", 95))
        stored[key] = (data, decode(data) if fmt == "jpg" else img)

    # 5. predict originals (once per source) and edits together
    preds = {}
    if tools.classifier is not None:
        alive = [src for src in groups if src in images and any(s.key not in outputs for s in groups[src])]
        items = [(groups[src][0], images[src][0], ("orig", src)) for src in alive]
        items += [(s, stored[s.key][1], ("edit", s.key)) for s in samples if s.key in stored]
        got = _batched(lambda its: tools.classifier.predict([i[1] for i in its]), items, "classify")
        for (s, _, tag), p in zip(items, got):
            if isinstance(p, Failure) and tag[0] == "orig":
                fail_source(tag[1], p)
            elif isinstance(p, Failure):
                outputs.setdefault(s.key, p)
            else:
                preds[tag] = p

    # 6. outputs in sample order
    for s in samples:
        if s.key in outputs:
            continue
        src = s.meta["source_key"]
        image, raw, ext = images[src]
        meta = _base_meta(s, params, image)
        truth = s.meta.get("label_index")
        if s.meta["edit"] == "original":
            files = {ext: raw}
        else:
            res = found[s.key]
            img, extra_files, extra_meta = edited[s.key]
            files = {fmt: stored[s.key][0], **extra_files}
            meta.update(extra_meta)
            meta.update({"boxes": np.round(res.boxes, 2).tolist(), "scores": np.round(res.scores, 4).tolist(),
                         "detected": list(res.phrases), "num_objects": int(res.masks.shape[0]),
                         "mask_area": _frac(res.union()), "segmenter": tools.segmenter.name})
        if truth is not None:
            files["cls"] = str(int(truth)).encode()
        if tools.classifier is not None:
            before = preds[("orig", src)]
            after = before if s.meta["edit"] == "original" else preds[("edit", s.key)]
            meta.update(_prediction_meta(tools, truth, before, after, s.meta["edit"] == "original"))
        outputs[s.key] = Output(key=s.key, files=files, meta=meta)
    return [outputs[s.key] for s in samples]


def _base_meta(s, params, image) -> dict:
    meta = {k: v for k, v in s.meta.items() if k not in ("boxes", "prompt")}
    meta.update({"key": s.key, "split_name": s.split, "group": s.meta["edit"], "group_name": s.meta["edit"],
                 "height": int(image.shape[0]), "width": int(image.shape[1])})
    if s.meta["edit"] != "original":
        meta.update({"prompt": s.meta.get("prompt"), "grounding": params.get("grounding"),
                     "dilation": int(params.get("dilation", 15)) if s.meta["edit"] == "remove" else 0})
    return meta


def _prediction_meta(tools, truth, before, after, original: bool) -> dict:
    name = tools.class_index.name if tools.class_index is not None else str
    return {"classifier": tools.classifier.name,
            "pred_before": before.index, "pred_before_name": name(before.index), "conf_before": before.confidence,
            "pred_after": after.index, "pred_after_name": name(after.index), "conf_after": after.confidence,
            "correct_before": None if truth is None else before.index == truth,
            "correct_after": None if truth is None else after.index == truth,
            "flip": None if original else is_flip(truth, before.index, after.index)}


def _nothing_found(s, params) -> str:
    if params.get("grounding") == "grounded-sam":
        opts = params.get("backend_options") or {}
        return (f"GroundingDINO found no {s.meta['prompt']!r} above box threshold {opts.get('box_threshold')} / "
                f"text threshold {opts.get('text_threshold')}; nothing to edit")
    return f"the boxes of {s.meta['prompt']!r} gave an empty mask; nothing to edit"


def _png(mask: np.ndarray) -> bytes:
    return encode(mask.astype(np.uint8) * 255, "png", png_level=1)


def _frac(mask: np.ndarray) -> float:
    return round(float(mask.mean()), 6)
