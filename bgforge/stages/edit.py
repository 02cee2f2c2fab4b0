"""ASPIRE-style edits (ASPIRE (Ghosh et al.)): remove one named object, or swap the background, then ask a classifier.

Each sample is one (image, edit) pair planned by planners/edit.py: `original` (the image as is,
for the prediction before any edit), `remove` (one foreground phrase: its boxes -> masks ->
union -> dilate -> inpaint) or `background` (the class object composited onto a background
drawn from a pool). Samples of one image share a single decode and a single prediction of
the original within a batch. A sample that fails becomes a Failure; the rest of the batch
goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..backends.base import GroundedSegmenter, Inpainter, Segmenter, SegmentRequest, SegmentResult
from ..backends.classifier import is_flip
from ..backends.masks import remove_objects_batch
from ..io.encoding import Encoding, encode_mask
from ..io.images import decode, sample_image
from ..recipe_params import EditParams
from ..records import Failure, Output, Sample
from .batch import load_batch
from .blend import fit_background, soft_composite
from .common import Step, attempt, run_batched, stored_image


@dataclass
class EditTools:
    """What a worker builds once: the models every batch uses."""

    segmenter: Segmenter                 # boxes (provided grounding) or text (grounded-sam) -> masks
    inpainter: Inpainter | None = None   # needed by `remove`
    classifier: object | None = None  # bgforge.backends.classifier.Classifier, optional
    class_index: object | None = None  # bgforge.backends.classifier.ClassIndex, for prediction names


# ---------------------------------------------------------------- the background edit
def swap_background(image: np.ndarray, object_mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The object (bool mask) at its place and size on `background`, cover-fitted to the image size.

    Reuses the Waterbirds compositing rules (reference crop/resize arithmetic, uint8 blend):
    no pixel of the old background survives outside the object mask, so the old scene needs
    no inpainting under the pasted object.
    """
    h, w = image.shape[:2]
    bg = fit_background(Image.fromarray(background), w, h)
    return soft_composite(image, object_mask.astype(np.uint8) * 255, np.asarray(bg.convert("RGB")))


# ---------------------------------------------------------------- grounding and segmentation
def segment_edits(segmenter: Segmenter, edits: list[Sample], images: dict, params: dict) -> dict:
    """key -> this edit's SegmentResult (its phrase's objects) or a Failure.

    Boxes come from the phrases file (`provided`) or from GroundingDINO run on each (image,
    phrase) pair, as in the reference. All boxes of one source image then go to the segmenter
    in one request, so SAM encodes an image once however many phrases it has, and each edit
    takes back the masks of its own boxes.
    """
    if EditParams.from_plan(params).grounding != "grounded-sam":
        boxes_of = {s.key: np.asarray(s.meta.get("boxes") or [], np.float32).reshape(-1, 4) for s in edits}

        def segment_fn(imgs: list[np.ndarray], boxes: list[np.ndarray]) -> list[SegmentResult]:
            return segmenter.segment(imgs, [SegmentRequest(boxes=b) for b in boxes])

        return _segment_by_source(segmenter.name, segment_fn, edits, images, boxes_of, {}, {})
    if not isinstance(segmenter, GroundedSegmenter):
        # a text-prompted backend without separable parts: one call per (image, phrase)
        items = [(s, images[s.meta["source_key"]], SegmentRequest(text=s.meta["prompt"])) for s in edits]
        got = run_batched(lambda its: segmenter.segment([i[1] for i in its], [i[2] for i in its]), items, "segment")
        return {it[0].key: r for it, r in zip(items, got)}
    items = [(s, images[s.meta["source_key"]]) for s in edits]
    dets = run_batched(lambda its: segmenter.detect([i[1] for i in its], [i[0].meta["prompt"] for i in its]),
                       items, "ground")
    failed = {s.key: d for (s, _), d in zip(items, dets) if isinstance(d, Failure)}
    found = {s.key: d for (s, _), d in zip(items, dets) if not isinstance(d, Failure)}
    return _segment_by_source(segmenter.name, segmenter.segment_boxes, edits, images,
                              {k: d.boxes for k, d in found.items()}, found, failed)


def _segment_by_source(name: str, segment_fn, edits: list[Sample], images: dict, boxes_of: dict,
                       detections: dict, results: dict) -> dict:
    """Segment every source image once with all its edits' boxes; each edit takes back its own masks.

    Scores and phrases come from `detections` (GroundingDINO) when an edit has one, else from the segmenter.
    """
    by_source: dict = {}
    for s in edits:
        if s.key in boxes_of:
            by_source.setdefault(s.meta["source_key"], []).append(s)
    items = [(group[0], images[src], group) for src, group in by_source.items()]
    got = run_batched(lambda its: segment_fn([i[1] for i in its],
                                             [np.concatenate([boxes_of[s.key] for s in i[2]]) for i in its]),
                      items, "segment")
    for (_, _, group), res in zip(items, got):
        if isinstance(res, Failure):
            results.update({s.key: replace(res, key=s.key) for s in group})
            continue
        start = 0
        for s in group:
            end = start + len(boxes_of[s.key])
            det = detections.get(s.key)
            scores, phrases = (det.scores, list(det.phrases)) if det is not None else (res.scores[start:end], [])
            results[s.key] = SegmentResult(masks=res.masks[start:end], boxes=res.boxes[start:end], scores=scores,
                                           backend=name, phrases=phrases)
            start = end
    return results


# ---------------------------------------------------------------- batch
def edit_batch(tools: EditTools, samples: list[Sample], params: dict) -> list[Output | Failure]:
    batch = _EditBatch(tools, samples, params)
    batch.decode()
    edits = batch.segment()
    batch.remove(edits)
    batch.swap_backgrounds(edits)
    batch.encode()
    batch.predict()
    return [batch.outputs[s.key] if s.key in batch.outputs else batch.output(s) for s in samples]


class _EditBatch:
    """One batch of edits as it goes through the steps of `edit_batch`; a failed sample stops at its step."""

    def __init__(self, tools: EditTools, samples: list[Sample], params: dict) -> None:
        self.tools, self.samples, self.params = tools, samples, params
        self.encoding = Encoding.of(params)
        self.groups: dict[str, list[Sample]] = {}   # source image -> its samples
        for s in samples:
            self.groups.setdefault(s.meta["source_key"], []).append(s)
        self.outputs: dict = {}   # key -> Failure (the Outputs are made last)
        self.images: dict = {}    # source -> (array, raw bytes, ext)
        self.found: dict = {}     # key -> SegmentResult
        self.edited: dict = {}    # key -> (array, extra files, extra meta)
        self.stored: dict = {}    # key -> (encoded bytes, the pixels a reader decodes from them)
        self.preds: dict = {}     # ("orig", source) or ("edit", key) -> prediction

    def fail_source(self, src: str, f: Failure) -> None:
        for s in self.groups[src]:
            self.outputs.setdefault(s.key, replace(f, key=s.key))

    def decode(self) -> None:
        """Each source image once."""
        reps = [g[0] for g in self.groups.values()]
        ok, failed = load_batch(reps, self.params)
        source_of = {r.key: r.meta["source_key"] for r in reps}
        for f in failed:
            self.fail_source(source_of[f.key], f)
        self.images = {it.sample.meta["source_key"]: (it.image, it.raw, it.ext) for it in ok}

    def segment(self) -> list[Sample]:
        """Ground every edit, then segment: one segmenter call per source image for all its edits."""
        edits = [s for s in self.samples if s.key not in self.outputs and s.meta["edit"] != "original"]
        by_key = {s.key: s for s in edits}
        arrays = {k: v[0] for k, v in self.images.items()}
        for key, res in segment_edits(self.tools.segmenter, edits, arrays, self.params).items():
            if isinstance(res, Failure):
                self.outputs[key] = res
            elif res.masks.shape[0] == 0 or not res.masks.any():
                self.outputs[key] = Failure(key, "ground", "NothingFound", _nothing_found(by_key[key], self.params))
            else:
                self.found[key] = res
        return edits

    def remove(self, edits: list[Sample]) -> None:
        removals = [(s, self.images[s.meta["source_key"]][0], self.found[s.key]) for s in edits
                    if s.key in self.found and s.meta["edit"] == "remove"]
        p = EditParams.from_plan(self.params)
        kernel = int(p.dilation)
        # the reference's effective (vertical) dilation unless asked for the square one (docs/fidelity.md)
        shape = p.dilation_shape
        filled = run_batched(lambda items: remove_objects_batch(self.tools.inpainter, [i[1] for i in items],
                                                                [i[2].masks for i in items], kernel, shape=shape),
                             removals, "inpaint")
        for (s, _, _), r in zip(removals, filled):
            if isinstance(r, Failure):
                self.outputs[s.key] = r
                continue
            img, hole = r
            self.edited[s.key] = (img, {"mask.png": encode_mask(hole)},
                                  {"hole_area": _frac(hole), "inpainter": self.tools.inpainter.name})

    def swap_backgrounds(self, edits: list[Sample]) -> None:
        for s in edits:
            if s.key in self.found and s.meta["edit"] == "background":
                image = self.images[s.meta["source_key"]][0]
                done = attempt(s.key, Step("composite"),
                               lambda s=s, image=image: _background_edit(s, image, self.found[s.key]))
                if isinstance(done, Failure):
                    self.outputs[s.key] = done
                else:
                    self.edited[s.key] = done

    def encode(self) -> None:
        """The classifier sees the edit's in-memory pixels, as the reference classifies `img_inpainted`
        (`classify_stored`: the pixels after the JPEG round trip, what a reader of the shards sees)."""
        stored = bool(EditParams.from_plan(self.params).classify_stored)
        for key, (img, _, _) in self.edited.items():
            data = self.encoding.encode(img)
            self.stored[key] = (data, decode(data) if stored and self.encoding.image_format == "jpg" else img)

    def predict(self) -> None:
        """The originals (once per source) and the edits, in one classifier batch."""
        if self.tools.classifier is None:
            return
        alive = [src for src in self.groups
                 if src in self.images and any(s.key not in self.outputs for s in self.groups[src])]
        items = [(self.groups[src][0], self.images[src][0], ("orig", src)) for src in alive]
        items += [(s, self.stored[s.key][1], ("edit", s.key)) for s in self.samples if s.key in self.stored]
        got = run_batched(lambda its: self.tools.classifier.predict([i[1] for i in its]), items, "classify")
        for (s, _, tag), p in zip(items, got):
            if isinstance(p, Failure) and tag[0] == "orig":
                self.fail_source(tag[1], p)
            elif isinstance(p, Failure):
                self.outputs.setdefault(s.key, p)
            else:
                self.preds[tag] = p

    def output(self, s: Sample) -> Output:
        src = s.meta["source_key"]
        image, raw, ext = self.images[src]
        meta = _base_meta(s, self.params, image)
        truth = s.meta.get("label_index")
        if s.meta["edit"] == "original":  # its bytes, in the edits' format (one image extension per output)
            ext, raw = stored_image(image, raw, ext, self.encoding.image_format, self.encoding)
            files = {ext: raw}
        else:
            res = self.found[s.key]
            _, extra_files, extra_meta = self.edited[s.key]
            files = {self.encoding.image_format: self.stored[s.key][0], **extra_files}
            meta.update(extra_meta)
            meta.update({"boxes": np.round(res.boxes, 2).tolist(), "scores": np.round(res.scores, 4).tolist(),
                         "detected": list(res.phrases), "num_objects": int(res.masks.shape[0]),
                         "mask_area": _frac(res.union()), "segmenter": self.tools.segmenter.name})
        if truth is not None:
            files["cls"] = str(int(truth)).encode()
        if self.tools.classifier is not None:
            before = self.preds[("orig", src)]
            after = before if s.meta["edit"] == "original" else self.preds[("edit", s.key)]
            meta.update(_prediction_meta(self.tools, truth, before, after, s.meta["edit"] == "original"))
        return Output(key=s.key, files=files, meta=meta)


def _background_edit(s: Sample, image: np.ndarray, found: SegmentResult) -> tuple:
    """(edited image, extra files, extra meta) of a background swap."""
    bg = sample_image(s.inputs["background"], "read_background")[0]
    obj = found.union()
    return swap_background(image, obj, bg), {"mask.png": encode_mask(obj)}, {}


def _base_meta(s, params, image) -> dict:
    meta = {k: v for k, v in s.meta.items() if k not in ("boxes", "prompt")}
    meta.update({"key": s.key, "split_name": s.split, "group": s.meta["edit"], "group_name": s.meta["edit"],
                 "height": int(image.shape[0]), "width": int(image.shape[1])})
    if s.meta["edit"] != "original":
        p = EditParams.from_plan(params)
        meta.update({"prompt": s.meta.get("prompt"), "grounding": p.grounding,
                     "dilation": int(p.dilation) if s.meta["edit"] == "remove" else 0})
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
    p = EditParams.from_plan(params)
    if p.grounding == "grounded-sam":
        opts = p.backend_options or {}
        return (f"GroundingDINO found no {s.meta['prompt']!r} above box threshold {opts.get('box_threshold')} / "
                f"text threshold {opts.get('text_threshold')}; nothing to edit")
    return f"the boxes of {s.meta['prompt']!r} gave an empty mask; nothing to edit"


def _frac(mask: np.ndarray) -> float:
    return round(float(mask.mean()), 6)
