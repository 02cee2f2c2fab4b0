"""A resized inpaint output (HSI's backgrounds phase, `bgforge inpaint --resize`): `boxes` and
`mask.png` in the stored image's frame, the source size carried, and the contact sheet's boxes on
the object."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bgforge.io.images import decode
from bgforge.records import Sample


def _background(tmp_path, params):
    from bgforge.backends.classical import BoxSegmenter, CvInpainter
    from bgforge.stages.inpaint import inpaint_batch

    img = np.full((300, 400, 3), 90, np.uint8)
    img[150:270, 200:360] = 250  # the object: x 200..360, y 150..270 of a 400 x 300 source
    path = tmp_path / "n01_1.png"
    Image.fromarray(img).save(path)
    s = Sample(key="n01_1", split="backgrounds", inputs={"image": str(path)}, meta={"boxes": [[200, 150, 360, 270]]})
    (out,) = inpaint_batch(CvInpainter("telea"), BoxSegmenter(), [s],
                           {"dilation": 1, "image_format": "png", "resize": 224, "object_mask": True, **params})
    return out


def test_resized_background_keeps_boxes_and_mask_in_the_stored_frame(tmp_path):
    out = _background(tmp_path, {})
    image = decode(out.files["png"], "RGB")
    mask = decode(out.files["mask.png"], "L") > 127
    assert image.shape[:2] == mask.shape == (224, 224)
    assert out.meta["source_width"] == 400 and out.meta["source_height"] == 300
    x0, y0, x1, y1 = out.meta["boxes"][0]
    assert (x0, y0, x1, y1) == (112.0, 112.0, 201.6, 201.6)  # 200·224/400, 150·224/300, ...
    ys, xs = np.nonzero(mask)
    # the hole (box dilated by 1 px at source scale) lies on the scaled box, not at source coordinates
    assert abs(xs.min() - x0) <= 2 and abs(xs.max() + 1 - x1) <= 2
    assert abs(ys.min() - y0) <= 2 and abs(ys.max() + 1 - y1) <= 2
    # object.png stays in the source frame: a mask paste crops it with the source image's box
    assert decode(out.files["object.png"], "L").shape == (300, 400)


def test_contact_sheet_draws_the_box_on_the_object(tmp_path):
    from bgforge.io.preview import _thumb

    out = _background(tmp_path, {})
    thumb = np.asarray(_thumb(out.files["png"], 224, out.files["mask.png"], out.meta["boxes"]))
    yellow = (thumb[..., 0] > 200) & (thumb[..., 1] > 180) & (thumb[..., 2] < 80)
    ys, xs = np.nonzero(yellow)
    assert len(xs) and xs.min() >= 108 and xs.max() <= 206 and ys.min() >= 108 and ys.max() <= 206
    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format="PNG")  # a valid tile
