"""The inpaint stage: one segmenter call per chunk."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bgforge.records import Sample


class _CountingBoxes:
    name = "counting"

    def __init__(self):
        from bgforge.backends.classical import BoxSegmenter

        self.inner, self.calls = BoxSegmenter(), []

    def segment(self, images, requests):
        self.calls.append(len(images))
        return self.inner.segment(images, requests)


def test_inpaint_segments_a_chunk_per_call(tmp_path):
    from bgforge.backends.classical import CvInpainter
    from bgforge.stages.inpaint import inpaint_batch

    samples = []
    for i in range(4):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(np.full((40, 50, 3), 30 * i, np.uint8)).save(path)
        samples.append(Sample(key=f"im{i}", split="all", inputs={"image": str(path)},
                              meta={"boxes": [[5, 5, 20, 20]]}))
    seg = _CountingBoxes()
    out = inpaint_batch(CvInpainter("telea"), seg, samples, {"dilation": 3, "image_format": "png"})
    assert [o.key for o in out] == [s.key for s in samples] and seg.calls == [4]
