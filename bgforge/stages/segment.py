"""The segment stage: images + prompts (boxes, text, provided masks) -> object masks."""

from __future__ import annotations

import numpy as np

from ..backends.base import SegmentRequest, dilate
from ..io.images import encode, sample_image, sample_mask
from ..records import Failure, Output


def failure(sample, exc: Exception, stage: str) -> Failure:
    return Failure.of(sample.key, exc, stage)


def request_for(sample, image: np.ndarray, params: dict) -> SegmentRequest:
    mask = sample_mask(sample.inputs, image.shape)
    boxes = sample.meta.get("boxes")
    text = sample.meta.get("text") or params.get("prompt")
    if text is None and params.get("prompt_from_label") and sample.meta.get("label") is not None:
        text = str(sample.meta["label"])
    return SegmentRequest(boxes=None if boxes is None else np.asarray(boxes, np.float32), text=text,
                          mask=None if mask is None else mask.astype(np.uint8) * 255)


def load_batch(samples, params, stage="read_image"):
    """Decode a batch; a sample that cannot be read becomes a Failure, the rest go on."""
    ok, failed = [], []
    for s in samples:
        try:
            image, raw, ext = sample_image(s.inputs, stage)
            ok.append((s, image, raw, ext, request_for(s, image, params)))
        except Exception as exc:
            failed.append(failure(s, exc, stage))
    return ok, failed


def run_batched(fn, items, stage):
    """Call fn on the whole batch; if it fails, retry one by one so only the bad sample is lost."""
    try:
        return fn(items)
    except Exception:
        results = []
        for it in items:
            try:
                results.append(fn([it])[0])
            except Exception as exc:
                results.append(failure(it[0], exc, stage))
        return results


def segment_batch(segmenter, samples, params) -> list:
    ok, failed = load_batch(samples, params)
    results = run_batched(lambda items: segmenter.segment([i[1] for i in items], [i[4] for i in items]), ok, "segment")
    outputs = {f.key: f for f in failed}
    kernel = int(params.get("dilation", 0) or 0)
    for (s, image, raw, ext, req), res in zip(ok, results):
        if isinstance(res, Failure):
            outputs[s.key] = res
            continue
        union = res.union()
        files = {ext: raw, "mask.png": encode(union.astype(np.uint8) * 255, "png", png_level=1)}
        if kernel > 1:
            files["dilated.png"] = encode(dilate(union, kernel).astype(np.uint8) * 255, "png", png_level=1)
        meta = {**s.meta, "key": s.key, "split_name": s.split, "backend": res.backend, "prompt": req.text,
                "boxes": np.round(res.boxes, 2).tolist(), "scores": np.round(res.scores, 4).tolist(),
                "phrases": list(res.phrases), "num_objects": int(res.masks.shape[0]),
                "area_frac": round(float(union.mean()), 6), "dilation": kernel,
                "height": int(image.shape[0]), "width": int(image.shape[1]),
                "group_name": str(s.meta.get("label", "all"))}
        outputs[s.key] = Output(key=s.key, files=files, meta=meta)
    return [outputs[s.key] for s in samples]
