import numpy as np
from helpers import reference_crop_and_resize
from PIL import Image

from bgforge.stages.blend import fit_background, soft_composite


def test_soft_composite_equals_float64_reference_for_every_value_pair():
    v = np.arange(256, dtype=np.uint8)
    fg = np.repeat(v[:, None], 256, 1)[..., None].repeat(3, 2).copy()
    mask = np.repeat(v[None, :], 256, 0).copy()
    m = np.repeat(mask[..., None], 3, 2) / 255
    for bg_value in (0, 1, 127, 128, 254, 255):
        bg = np.full_like(fg, bg_value)
        ref = np.around(fg * m).astype(np.uint8) + np.around(bg * (1 - m)).astype(np.uint8)
        assert np.array_equal(soft_composite(fg, mask, bg), ref)
    bg = (255 - fg).copy()
    ref = np.around(fg * m).astype(np.uint8) + np.around(bg * (1 - m)).astype(np.uint8)
    assert np.array_equal(soft_composite(fg, mask, bg), ref)


def test_soft_composite_hand_computed():
    fg = np.full((1, 1, 3), 200, np.uint8)
    bg = np.full((1, 1, 3), 100, np.uint8)
    mask = np.array([[64]], np.uint8)  # m = 0.25098: round(50.196) + round(74.902) = 50 + 75
    assert soft_composite(fg, mask, bg)[0, 0].tolist() == [125, 125, 125]


def test_fit_background_wide_source_center_crop_is_exact():
    arr = np.arange(10 * 4 * 3, dtype=np.uint8).reshape(4, 10, 3)
    out = fit_background(Image.fromarray(arr), 4, 4)
    # aspect 2.5 > 1: new_w = int(1.0 * 4) = 4, off = (10 - 4) // 2 = 3, crop (3, 0, 7, 4), no resampling
    assert np.array_equal(np.asarray(out), arr[:, 3:7])


def test_fit_background_small_source_upscales_like_reference():
    rng = np.random.default_rng(0)
    for (sw, sh), (tw, th) in [((3, 2), (6, 6)), ((50, 20), (40, 30)), ((64, 80), (100, 30)), ((33, 17), (32, 17))]:
        src = Image.fromarray(rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8))
        ours = np.asarray(fit_background(src, tw, th))
        assert ours.shape == (th, tw, 3)
        assert np.array_equal(ours, np.asarray(reference_crop_and_resize(src, tw, th)))


def test_fast_resampling_stays_close_to_the_reference():
    rng = np.random.default_rng(1)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (32, 43, 3), dtype=np.uint8)).resize((683, 512), Image.BICUBIC))
    src = Image.fromarray(smooth)
    for tw, th in [(500, 375), (480, 360), (300, 400), (900, 700)]:
        exact = np.asarray(fit_background(src, tw, th)).astype(int)
        fast = np.asarray(fit_background(src, tw, th, "fast")).astype(int)
        assert fast.shape == exact.shape == (th, tw, 3)
        assert np.abs(fast - exact).mean() < 2.0   # a natural-ish image: resampling noise only
