import numpy as np
import pytest

from bgforge.backends import SegmentRequest, dilate, get_inpainter, get_segmenter, remove_objects
from bgforge.backends.masks import remove_objects_batch
from bgforge.errors import BgforgeError


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_box_mask_is_the_exact_rectangle(scene):
    image, _, mask, box = scene
    (res,) = get_segmenter("box").segment([image], [SegmentRequest(boxes=box[None])])
    assert res.masks.shape == (1,) + image.shape[:2] and res.masks.dtype == bool
    assert np.array_equal(res.masks[0], mask)
    assert np.array_equal(res.union(), mask)
    assert res.scores.tolist() == [1.0] and res.backend == "box"
    np.testing.assert_array_equal(res.boxes, box[None])


def test_box_is_clipped_and_fractional_edges_are_covered():
    img = np.zeros((10, 20, 3), np.uint8)
    (res,) = get_segmenter("box").segment(
        [img], [SegmentRequest(boxes=np.array([[-5, 2.5, 3.2, 30]]))])
    expected = np.zeros((10, 20), bool)
    expected[2:10, 0:4] = True  # y 2.5 -> row 2, x 3.2 -> col 3 inclusive, clipped at 0/10
    assert np.array_equal(res.masks[0], expected)


def test_no_boxes_gives_zero_masks(scene):
    image = scene[0]
    for boxes in (None, np.zeros((0, 4))):
        (res,) = get_segmenter("box").segment([image], [SegmentRequest(boxes=boxes)])
        assert res.masks.shape == (0,) + image.shape[:2]
        assert not res.union().any() and res.union().shape == image.shape[:2]


def test_dilate_pixel_becomes_kernel_square_and_box_grows_by_half_kernel():
    m = np.zeros((31, 31), bool)
    m[15, 15] = True
    d = dilate(m, 7)
    assert d.sum() == 49 and d[12:19, 12:19].all()
    box = np.zeros((40, 40), bool)
    box[10:20, 12:22] = True
    grown = dilate(box, 5)
    expected = np.zeros_like(box)
    expected[8:22, 10:24] = True  # 5 // 2 = 2 pixels each side
    assert np.array_equal(grown, expected)
    same = dilate(box, 1)
    assert np.array_equal(same, box) and same is not box


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_cv_inpainters_remove_the_object(scene, method):
    image, clean, mask, _ = scene
    hole = dilate(mask, 5)
    (out,) = get_inpainter(method, radius=5).inpaint([image], [hole])
    assert out.shape == image.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - clean.astype(int))
    # Outside the hole the image must be untouched.
    assert err[~hole].max() == 0
    # Inside: the background is a linear ramp changing < 1.3 grey levels per pixel, and
    # diffusion-style fills interpolate it from the border, so a mean error of a few grey
    # levels is expected (measured ~1-3); 10 is far below the ~90 of leaving the object.
    assert err[hole].mean() < 10, err[hole].mean()
    assert np.abs(image.astype(int) - clean.astype(int))[hole].mean() > 50  # baseline: ~90


def test_grabcut_finds_a_high_contrast_object(scene):
    image, _, mask, box = scene
    loose = box + np.array([-8, -8, 8, 8], np.float32)  # box larger than the object
    seg = get_segmenter("grabcut")
    (res,) = seg.segment([image], [SegmentRequest(boxes=loose[None])])
    assert iou(res.masks[0], mask) > 0.7
    (again,) = seg.segment([image], [SegmentRequest(boxes=loose[None])])
    assert np.array_equal(res.masks, again.masks)  # fixed RNG seed: deterministic


def test_grabcut_falls_back_to_the_box_when_it_cannot_run():
    img = np.full((20, 20, 3), 128, np.uint8)
    whole = np.array([[0, 0, 20, 20]], np.float32)  # no background samples at all
    (res,) = get_segmenter("grabcut").segment([img], [SegmentRequest(boxes=whole)])
    assert res.masks[0].all()


def test_provided_mask(scene):
    image, _, mask, box = scene
    (res,) = get_segmenter("provided").segment(
        [image], [SegmentRequest(mask=mask.astype(np.uint8) * 255)])
    assert np.array_equal(res.masks[0], mask)
    np.testing.assert_array_equal(res.boxes[0], box)


def test_provided_mask_of_wrong_size_names_both_sizes(scene):
    image = scene[0]
    with pytest.raises(BgforgeError) as e:
        get_segmenter("provided").segment(
            [image], [SegmentRequest(mask=np.zeros((10, 12), np.uint8))])
    assert "12x10" in str(e.value) and "128x96" in str(e.value)


def test_remove_objects_one_by_one_removes_both(scene):
    _, clean, _, _ = scene
    image = clean.copy()
    image[10:26, 10:26] = (230, 20, 20)
    image[60:80, 90:110] = (20, 230, 20)
    boxes = np.array([[10, 10, 26, 26], [90, 60, 110, 80]], np.float32)
    (seg,) = get_segmenter("box").segment([image], [SegmentRequest(boxes=boxes)])
    inp = get_inpainter("telea")
    for one_by_one in (False, True):
        out = remove_objects(inp, image, seg.masks, kernel=5, one_by_one=one_by_one)
        for x0, y0, x1, y1 in boxes.astype(int):
            err = np.abs(out[y0:y1, x0:x1].astype(int) - clean[y0:y1, x0:x1].astype(int))
            assert err.mean() < 10
        far = ~dilate(seg.union(), 5)
        assert np.array_equal(out[far], image[far])


def test_remove_objects_without_masks_is_a_copy(scene):
    image = scene[0]
    out = remove_objects(get_inpainter("ns"), image, np.zeros((0,) + image.shape[:2], bool))
    assert np.array_equal(out, image) and out is not image


def test_unknown_names_and_options_are_user_errors():
    with pytest.raises(BgforgeError, match="unknown segmenter 'sam2'"):
        get_segmenter("sam2")
    with pytest.raises(BgforgeError, match="unknown inpainter"):
        get_inpainter("mat")
    with pytest.raises(BgforgeError, match="radus"):
        get_inpainter("telea", radus=3)


def test_batch_length_mismatch_is_a_user_error(scene):
    with pytest.raises(BgforgeError, match="2 images but 1 requests"):
        get_segmenter("box").segment([scene[0], scene[0]], [SegmentRequest()])


def test_remove_objects_batch_equals_one_image_at_a_time(scene):
    image, _, mask, _ = scene
    inp = get_inpainter("telea")
    masks = [mask, np.zeros((0,) + image.shape[:2], bool), np.stack([mask, np.roll(mask, 20, axis=1)])]
    images = [image, image, image[:, ::-1].copy()]
    for one_by_one in (False, True):
        got = remove_objects_batch(inp, images, masks, kernel=5, one_by_one=one_by_one)
        for img, m, (filled, hole) in zip(images, masks, got):
            assert np.array_equal(filled, remove_objects(inp, img, m, kernel=5, one_by_one=one_by_one))
            union = m.any(axis=0) if m.ndim == 3 else m
            assert np.array_equal(hole, dilate(union, 5))
