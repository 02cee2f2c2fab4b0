"""The segment stage: images + prompts (boxes, text, provided masks) -> object masks."""

from __future__ import annotations

import numpy as np

from ..backends.base import Segmenter
from ..backends.masks import dilate
from ..io.encoding import encode_mask
from ..recipe_params import SegmentParams
from ..records import Failure, Output
from .batch import Batch
from .common import STORE_AS, run_batched, stored_image
from .pipeline import ModelStage


def segment_stage(segmenter: Segmenter, params: dict) -> ModelStage:
    """decode -> segment -> encode the masks, as the three steps a worker pipelines (stages/pipeline.py)."""

    def compute(batch: Batch) -> Batch:
        batch.results = run_batched(lambda items: segmenter.segment([i.image for i in items],
                                                                    [i.request for i in items]), batch.ok, "segment")
        return batch

    return ModelStage(load=lambda samples: Batch.load(samples, params), compute=compute,
                      finish=lambda batch: _encode_masks(batch, params))


def _encode_masks(batch: Batch, params: dict) -> list[Output | Failure]:
    outputs = {}
    kernel = int(SegmentParams.from_plan(params).dilation or 0)
    for (s, image, raw, ext, req), res in zip(batch.ok, batch.results):
        if isinstance(res, Failure):
            outputs[s.key] = res
            continue
        union = res.union()
        ext, raw = stored_image(image, raw, ext, s.inputs.get(STORE_AS))  # mixed inputs: one format (PNG)
        files = {ext: raw, "mask.png": encode_mask(union)}
        if kernel > 1:
            files["dilated.png"] = encode_mask(dilate(union, kernel))
        meta = {**s.meta, "key": s.key, "split_name": s.split, "backend": res.backend, "prompt": req.text,
                "boxes": np.round(res.boxes, 2).tolist(), "scores": np.round(res.scores, 4).tolist(),
                "phrases": list(res.phrases), "num_objects": int(res.masks.shape[0]),
                "area_frac": round(float(union.mean()), 6), "dilation": kernel,
                "height": int(image.shape[0]), "width": int(image.shape[1]),
                "group_name": str(s.meta.get("label", "all"))}
        outputs[s.key] = Output(key=s.key, files=files, meta=meta)
    return batch.outputs(outputs)
