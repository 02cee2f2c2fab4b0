import os
import warnings

import numpy as np
import pytest
import torch

from bgforge.backends import get_inpainter
from bgforge.backends import lama as lama_mod
from bgforge.backends.lama import LamaInpainter
from bgforge.errors import BgforgeError

BG = (40, 120, 200)


def _scene(h, w, corner=False):
    """Uniform background with a red block (touching the bottom-right border if corner)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BG
    mask = np.zeros((h, w), bool)
    if corner:
        mask[h - 12:, w - 15:] = True
    else:
        mask[5:20, 8:30] = True
    img[mask] = (250, 0, 0)
    return img, mask


LOADERS = ["torchscript"] + (["simple-lama"] if lama_mod.has_simple_lama() else [])


@pytest.mark.parametrize("loader", LOADERS)
def test_lama_crops_back_and_only_touches_the_hole(lama_stub, loader):
    inp = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader=loader)
    assert inp.loader == loader
    # 45x61 and 48x64 share the 48x64 padded bucket, 33x30 is alone, the last has no hole
    scenes = [_scene(45, 61, corner=True), _scene(48, 64), _scene(33, 30, corner=True),
              (np.full((17, 9, 3), 7, np.uint8), np.zeros((17, 9), bool))]
    outs = inp.inpaint([s[0] for s in scenes], [s[1] for s in scenes])
    for (img, mask), out in zip(scenes, outs):
        assert out.shape == img.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(int) - img.astype(int))
        assert diff[~mask].max() <= 1
        if mask.any():
            # the stand-in fills with the mean known colour; if the reflected padding of
            # a border object were not masked too, red would leak into that mean
            assert np.abs(out[mask].astype(int) - np.array(BG)).max() <= 1
    # batching does not change results
    single = inp.inpaint([scenes[0][0]], [scenes[0][1]])[0]
    assert np.array_equal(single, outs[0])


def test_auto_loader_is_torchscript_on_every_python(lama_stub):
    assert LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu").loader == "torchscript"


def test_simple_lama_loader_restores_env_and_matches_direct_load(lama_stub, monkeypatch):
    if not lama_mod.has_simple_lama():
        pytest.skip("the optional extra bgforge[simple-lama] is not installed")
    monkeypatch.setenv("LAMA_MODEL", "/elsewhere/model.pt")
    a = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader="simple-lama")
    assert os.environ["LAMA_MODEL"] == "/elsewhere/model.pt"
    b = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader="torchscript")
    img, mask = _scene(40, 56)
    assert np.array_equal(a.inpaint([img], [mask])[0], b.inpaint([img], [mask])[0])


def test_matches_simple_lama_reference_pipeline(lama_stub):
    """Same numbers as simple-lama's own prepare step (int64 mask) on an 8-multiple image."""
    if not lama_mod.has_simple_lama():
        pytest.skip("the optional extra bgforge[simple-lama] is not installed")
    from simple_lama_inpainting.utils.util import prepare_img_and_mask

    img, mask = _scene(48, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = torch.jit.load(str(lama_stub))
    t_img, t_mask = prepare_img_and_mask(img, mask.astype(np.uint8) * 255, "cpu")
    assert t_mask.dtype == torch.int64
    ref = model(t_img, t_mask)[0].permute(1, 2, 0).numpy()
    ref = np.clip(ref * 255, 0, 255).astype(np.uint8)
    ours = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu").inpaint(
        [img], [mask])[0]
    assert np.array_equal(ours[mask], ref[mask])       # the hole: simple-lama's truncation, exactly
    assert np.array_equal(ours[~mask], img[~mask])     # outside it: the input, untouched


def test_bf16_autocast_path_runs(lama_stub):
    inp = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu",
                        loader="torchscript", precision="bf16")
    img, mask = _scene(45, 61)
    out = inp.inpaint([img], [mask])[0]
    assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])


def test_missing_corrupt_and_unavailable_loader(tmp_path, monkeypatch):
    with pytest.raises(BgforgeError) as e:
        get_inpainter("lama", device="cpu")
    assert str(tmp_path / "models" / "big-lama.pt") in str(e.value)
    assert "bgforge models fetch lama" in str(e.value)

    bad = tmp_path / "big-lama.pt"
    bad.write_bytes(np.random.default_rng(1).bytes(2048))
    for loader in LOADERS:
        with pytest.raises(BgforgeError, match=str(bad)):
            LamaInpainter.from_options(lama_checkpoint=str(bad), device="cpu", loader=loader)

    monkeypatch.setattr(lama_mod, "has_simple_lama", lambda: False)
    with pytest.raises(BgforgeError, match="simple-lama-inpainting is not installed"):
        LamaInpainter.from_options(lama_checkpoint=str(bad), device="cpu", loader="simple-lama")
    with pytest.raises(BgforgeError, match="unknown LaMa loader"):
        LamaInpainter.from_options(lama_checkpoint=str(bad), device="cpu", loader="onnx")


def test_mask_size_mismatch_is_a_user_error(lama_stub):
    inp = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu")
    img, _ = _scene(20, 20)
    with pytest.raises(BgforgeError, match="sizes must match"):
        inp.inpaint([img], [np.zeros((10, 10), bool)])


def test_size_buckets_batch_mixed_sizes_pixel_exactly(lama_stub):
    """lama_bucket pads by the image's own size only: mixed sizes share one model call, and each
    result is the one it gets alone (pixel-exact after cropping back)."""
    inp = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_bucket=64, lama_batch=8)
    calls = []
    model = inp.model
    inp.model = lambda img, msk: calls.append(img.shape) or model(img, msk)
    # padded to 8 these are 48x64, 40x32, 64x64 and 24x56: four batches without buckets
    scenes = [_scene(45, 61, corner=True), _scene(33, 30, corner=True), _scene(64, 64), _scene(22, 50)]
    outs = inp.inpaint([s[0] for s in scenes], [s[1] for s in scenes])
    assert calls == [(4, 3, 64, 64)]
    for (img, mask), out in zip(scenes, outs):
        assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])
        assert np.array_equal(inp.inpaint([img], [mask])[0], out)
        assert np.abs(out[mask].astype(int) - np.array(BG)).max() <= 1
    with pytest.raises(BgforgeError, match="multiple of 8"):
        get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_bucket=60)


def test_lama_batch_follows_batch_size_unless_the_recipe_sets_it():
    from bgforge.planners.stage import backend_options

    assert backend_options({"inpainter": "lama"}, None, 16)["lama_batch"] == 16
    assert backend_options({"inpainter": "lama", "backend_options": {"lama_batch": 2}}, None, 16)["lama_batch"] == 2
    assert "lama_batch" not in backend_options({"inpainter": "telea"}, None, 16)


def test_the_cuda_defaults_frozen_and_channels_last_give_the_same_pixels_on_cpu(lama_stub):
    """What LaMa does on CUDA (torch.jit.freeze by default; NHWC inputs when asked, off until a GPU run measures
    them faster; non-blocking uint8 uploads), run here on the CPU: frozen, the same pixels; NHWC changes the
    order of the model's sums, so a hole pixel on a truncation boundary may move one grey level; outside the
    hole, the input's own pixels."""
    import torch

    plain = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader="torchscript")
    frozen = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader="torchscript", freeze=True)
    nhwc = LamaInpainter.from_options(lama_checkpoint=str(lama_stub), device="cpu", loader="torchscript", freeze=True,
                         channels_last=True)
    assert not plain.channels_last and nhwc.channels_last
    assert isinstance(frozen.model, torch.jit.ScriptModule) and frozen.model is not plain.model
    images, masks = (list(x) for x in zip(*(_scene(45, 61), _scene(64, 80))))
    for a, b, c, m in zip(plain.inpaint(images, masks), frozen.inpaint(images, masks), nhwc.inpaint(images, masks),
                          masks):
        assert a.dtype == b.dtype == c.dtype == np.uint8 and np.array_equal(a, b)
        assert np.array_equal(a[~m], c[~m]) and np.abs(a.astype(int) - c).max() <= 1
