"""ImageNet-9 variants as rabbit-abacus/roleofimagebackgrounds `main.py` constructs them.

The checks re-implement the cited lines here, with torchvision's transforms and PIL as main.py
calls them, and compare with bgforge's `construction: reference`."""

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from torchvision import transforms
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.stages import variants_reference as ref

# main.py:10-16
STANDARD = transforms.Compose([transforms.Resize(256, Image.NEAREST), transforms.CenterCrop(256)])
TEST_TRANSFORM = transforms.Compose([transforms.Resize(256, Image.NEAREST), transforms.CenterCrop(224)])


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(1, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(375, 500), (500, 333), (301, 257), (257, 301), (256, 400), (199, 611)])
def test_resize_and_crops_are_torchvisions(size):
    img = Image.fromarray(_image(*size))
    assert np.array_equal(np.asarray(ref.standard(img)), np.asarray(STANDARD(img)))
    assert np.array_equal(np.asarray(ref.center_crop(ref.resize_short(img), 224)), np.asarray(TEST_TRANSFORM(img)))


def _good(width, height, box):
    """main.py:149-186 for one box (returns 0 or the error code)."""
    xmin, ymin, xmax, ymax = box
    mask = Image.new("RGB", (width, height), (0, 0, 0))
    ImageDraw.Draw(mask).rectangle([xmin, ymin, xmax, ymax], fill="white")
    num_masked_pixels = np.sum(TEST_TRANSFORM(mask)) // (255 * 3)
    if num_masked_pixels / 224 ** 2 > 0.9:
        return 5
    num_masked_pixels_resize = np.sum(transforms.Resize(256, Image.NEAREST)(mask)) // (255 * 3)
    if num_masked_pixels < 0.5 * num_masked_pixels_resize:
        return 6
    return 0


def test_filters_are_is_good_image():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        w, h = int(rng.integers(120, 640)), int(rng.integers(120, 640))
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        code = _good(w, h, (x0, y0, x1, y1))
        problem = ref.filter_problem(w, h, [[x0, y0, x1, y1]])
        seen.add(code)
        assert (problem is None) == (code == 0), (w, h, x0, y0, x1, y1, problem)
        if code == 5:
            assert "covers" in problem
        if code == 6:
            assert "half" in problem
    assert seen == {0, 5, 6}
    assert "exactly one box" in ref.filter_problem(300, 300, [[1, 1, 50, 50], [60, 60, 90, 90]])


def _bg_tiled(img, all_xmin, all_ymin, all_xmax, all_ymax):
    """main.py:76-107."""
    width, height = img.size
    xmin_margin, ymin_margin = all_xmin, all_ymin
    xmax_margin, ymax_margin = width - all_xmax, height - all_ymax
    max_x_area = max(xmin_margin, xmax_margin) * height
    max_y_area = max(ymin_margin, ymax_margin) * width
    if max_x_area > max_y_area:
        tile_ymin, tile_ymax = 0, height
        tile_xmin, tile_xmax = (0, all_xmin) if xmin_margin > xmax_margin else (all_xmax, width)
    else:
        tile_xmin, tile_xmax = 0, width
        tile_ymin, tile_ymax = (0, all_ymin) if ymin_margin > ymax_margin else (all_ymax, height)
    tile = img.crop([tile_xmin, tile_ymin, tile_xmax, tile_ymax])
    tile_w, tile_h = tile.size
    bg_tiled = Image.new("RGB", (width, height))
    for i in range(0, width, tile_w):
        for j in range(0, height, tile_h):
            bg_tiled.paste(tile, (i, j))
    return bg_tiled


def _combine(img1, img2, mask):
    """main.py:39-44."""
    np_mask, np_img1, np_img2 = np.array(mask), np.array(img1), np.array(img2)
    np_img1[np_mask == 255] = np_img2[np_mask == 255]
    return Image.fromarray(np_img1)


@pytest.mark.parametrize("box", [(40, 30, 90, 70), (10, 10, 110, 20), (20, 5, 100, 75), (30, 20, 90, 60),
                                 (0, 0, 60, 80), (61, 0, 120, 80), (30, 0, 90, 80)])
def test_tiling_from_the_origin_and_the_strip_choice_are_get_bg_tiled(box):
    """Boxes on a 120 x 80 image: (30, 20, 90, 60) ties left/right and top/bottom margins and the two areas
    (30·80 = 2400 = 20·120): vertical, bottom strip."""
    image = _image(80, 120, seed=sum(box))
    pil = Image.fromarray(image)
    mask = Image.new("RGB", pil.size, (0, 0, 0))
    ImageDraw.Draw(mask).rectangle(list(box), fill="white")
    want = np.asarray(_combine(pil, _bg_tiled(pil, *box), mask))
    assert np.array_equal(ref.only_bg_t(image, box), want)
    black = np.array(pil)
    black[np.array(mask) == 255] = 0
    assert np.array_equal(ref.only_bg_b(image, box), black)


def test_mixed_is_resized_and_takes_the_background_on_exactly_black_pixels():
    fg_img = _image(300, 420, seed=3)
    fg_img[100:110, 200:210] = 0          # black pixels of the object itself
    fg_mask = np.zeros((300, 420), np.uint8)
    fg_mask[60:240, 120:330] = 1
    bg_img, bg_box = _image(333, 500, seed=4), (200, 100, 320, 250)
    got = ref.mixed(fg_img, fg_mask, bg_img, bg_box)
    # main.py:356-400
    fg_resized = STANDARD(Image.fromarray(fg_img * fg_mask[:, :, np.newaxis]))
    bg_mask = np.all(np.array(fg_resized) == [0, 0, 0], axis=-1) * 255
    pil_bg = Image.fromarray(bg_img)
    mask = Image.new("RGB", pil_bg.size, (0, 0, 0))
    ImageDraw.Draw(mask).rectangle(list(bg_box), fill="white")
    bg_resized = STANDARD(_combine(pil_bg, _bg_tiled(pil_bg, *bg_box), mask))
    want = np.asarray(_combine(fg_resized, bg_resized, bg_mask))
    assert got.shape == (256, 256, 3)
    assert np.array_equal(got, want)
    # the object's own black pixels show the background (the reference's quirk)
    assert bg_mask[int(105 * 256 / 300), int(205 * 256 / 300) - (int(256 * 420 / 300) - 256) // 2] == 255


def _scene(seed, w=160, h=120):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(90, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    img[40:90, 50:120] = (220, 60, 40)
    return img


@pytest.mark.slow
def test_reference_run_seeded_jpeg_and_the_same_bytes_whatever_the_workers(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    rows = []
    for i in range(6):
        Image.fromarray(_scene(i)).save(root / f"im{i}.png")
        boxes = [[45, 35, 125, 95]] if i != 5 else [[45, 35, 125, 95], [0, 0, 10, 10]]  # im5: two boxes
        rows.append({"key": f"im{i}", "path": f"im{i}.png", "label": ["a", "b"][i % 2], "boxes": boxes})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"o{workers}"
        res = CliRunner().invoke(app, ["variants", "--input", str(root), "--manifest", str(root / "m.jsonl"),
                                       "--out", str(out), "--workers", str(workers), "-q"])
        assert res.exit_code == 0, res.output
        outs.append({p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))})
    assert outs[0] == outs[1]
    files = {k: f for p in sorted((tmp_path / "o1" / "shards").glob("*.tar")) for k, f in iter_shard(p)}
    keys = {k for k in files}
    assert "im0-original" in keys and not any(k.startswith("im5-") for k in keys)   # one box only
    assert decode(files["im0-original"]["jpg"]).shape == (120, 160, 3)           # full size
    saved = io.BytesIO()
    Image.fromarray(_scene(0)).save(saved, format="JPEG")                        # main.py:290, PIL's save()
    assert files["im0-original"]["jpg"] == saved.getvalue()
    assert decode(files["im0-mixed_same"]["jpg"]).shape == (256, 256, 3)
    meta = json.loads(files["im0-mixed_rand"]["json"])
    assert meta["construction"] == "reference"


def test_grabcut_is_seeded_per_image_and_attempt():
    img = _scene(0)
    box = (45, 35, 125, 95)
    a, ok = ref.grabcut(img, box, 0, "im0", 1)
    b, _ = ref.grabcut(img, box, 0, "im0", 1)
    assert ok and np.array_equal(a, b)
    assert a[60, 80] == 1 and a[5, 5] == 0
