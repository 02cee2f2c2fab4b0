"""The model backends' throughput paths, exercised on the CPU with the same code the GPU runs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bgforge.backends import SegmentRequest, get_inpainter
from bgforge.backends.device import resolve_precision
from bgforge.backends.grounding_dino import GroundedSamSegmenter
from bgforge.backends.sam import SamSegmenter


# ---------------------------------------------------------------- SAM: SDPA attention, device resize
@pytest.mark.parametrize("size, rel_pos", [((8, 8), True), ((6, 10), True), ((8, 8), False)])
def test_sdpa_attention_equals_segment_anythings(size, rel_pos):
    """The relative-position bias folded into queries and keys (never a tokens x tokens matrix) gives
    segment-anything's attention: square and non-square token grids, with and without the bias, and in
    bf16 within bf16's error."""
    from segment_anything.modeling.image_encoder import Attention

    from bgforge.backends.sam_attention import use_sdpa

    torch.manual_seed(1)
    block = Attention(dim=32, num_heads=2, use_rel_pos=rel_pos, input_size=size).eval()
    if rel_pos:
        with torch.no_grad():  # non-zero relative-position tables, so the bias matters
            block.rel_pos_h.normal_()
            block.rel_pos_w.normal_()
    x = torch.randn(2, *size, 32)
    with torch.no_grad():
        want = block(x)
        assert use_sdpa(torch.nn.Sequential(block)) == 1
        got = block(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = block(x).float()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(low).all() and ((low - want).norm() / want.norm()) < 0.02


@pytest.mark.parametrize("shape", [(96, 128), (480, 640), (640, 480), (77, 300)])
def test_device_resize_matches_the_models_expected_transform(shape):
    """The CUDA input path's resize, run here on the CPU, is within a grey level of `apply_image`
    (SamPredictor.set_image's PIL path) for every shape; upstream's apply_image_torch is not."""
    from segment_anything.utils.transforms import ResizeLongestSide

    from bgforge.backends.sam import resize_longest_side

    img = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2)  # photo-like: neighbouring pixels correlate
    tf = ResizeLongestSide(1024)
    want = tf.apply_image(img).astype(np.int16)
    got = resize_longest_side(torch.from_numpy(img).permute(2, 0, 1)[None], 1024)[0].permute(1, 2, 0).numpy()
    assert got.shape == want.shape
    assert np.abs(got.astype(np.int16) - want).max() <= 1
    upstream = tf.apply_image_torch(torch.from_numpy(img).permute(2, 0, 1)[None].float())
    assert tuple(upstream.shape[-2:]) != want.shape[:2]  # segment-anything#218: why bgforge resizes itself


def test_device_resize_path_gives_the_predictors_masks(tiny_sam):
    """device_resize=True (the CUDA default) on the CPU: the masks of SamPredictor.set_image + predict."""
    from segment_anything import SamPredictor


    rng = np.random.default_rng(0)
    seg = SamSegmenter(tiny_sam, device="cpu", device_resize=True)
    pred = SamPredictor(tiny_sam)
    for shape in ((96, 128), (120, 80)):
        img = cv2.GaussianBlur(rng.integers(0, 255, (*shape, 3), dtype=np.uint8), (0, 0), 2)
        box = np.array([[10, 12, 60, 70]], np.float32)
        (res,) = seg.segment([img], [SegmentRequest(boxes=box)])
        pred.set_image(img)
        masks, scores, _ = pred.predict(box=box[0], multimask_output=True)
        best = int(np.argmax(scores))
        inter = np.logical_and(res.masks[0], masks[best]).sum()
        union = max(1, np.logical_or(res.masks[0], masks[best]).sum())
        assert inter / union > 0.98
        assert res.scores[0] == pytest.approx(scores[best], abs=1e-2)


def test_sam_encodes_a_whole_call_in_one_pass(tiny_sam):
    seg = SamSegmenter(tiny_sam, device="cpu")
    calls = []
    real = seg.encoder
    seg.encoder = lambda x: calls.append(len(x)) or real(x)
    img = np.zeros((64, 64, 3), np.uint8)
    seg.segment([img] * 5, [SegmentRequest(boxes=np.array([[4, 4, 30, 30]], np.float32))] * 5)
    assert calls == [5]


# ---------------------------------------------------------------- precision
def test_precision_auto_is_fp32_on_cpu_and_never_reaches_lama(tiny_sam, lama_stub):
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert SamSegmenter(tiny_sam, device="cpu").precision == "fp32"
    # a recipe's backend_options.precision is meant for SAM/GroundingDINO: LaMa's FFTs stay fp32
    lama = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", precision="bf16")
    assert lama.precision == "fp32"
    assert get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_precision="auto").precision == "fp32"
    assert get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_precision="bf16").precision == "bf16"


@pytest.mark.slow
def test_gdino_max_boxes_keeps_the_best_scored(gdino_model, tiny_sam):
    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    opts = dict(device="cpu", box_threshold=0.0, gdino_min_size=128)
    (every,) = GroundedSamSegmenter(gdino_model, tiny_sam, **opts).detect([img], ["bird"])
    (top,) = GroundedSamSegmenter(gdino_model, tiny_sam, gdino_max_boxes=2, **opts).detect([img], ["bird"])
    assert len(every.scores) > 2 and len(top.scores) == 2
    np.testing.assert_allclose(np.sort(top.scores), np.sort(every.scores)[-2:])


@pytest.mark.slow
def test_grounded_sam_under_bf16_autocast_hands_back_float32_and_bool(gdino_model, tiny_sam):
    """The dtype path of a CUDA run (precision auto = bf16), on the CPU: numpy has no bf16, so every
    tensor must leave the models as float32 or bool, with size buckets too."""
    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    opts = dict(device="cpu", box_threshold=0.0, gdino_min_size=128, precision="bf16")
    for bucket in (0, 64):
        seg = GroundedSamSegmenter(gdino_model, tiny_sam, gdino_bucket=bucket, **opts)
        results = seg.segment([img, img[:200]], [SegmentRequest(text="bird")] * 2)
        for res, h in zip(results, (224, 200)):
            assert res.masks.dtype == bool and res.masks.shape[1:] == (h, 224) and len(res.masks) > 0
            assert res.scores.dtype == np.float32 and res.boxes.dtype == np.float32


def test_auto_precision_runs_the_sam_decoder_in_fp32(tiny_sam):
    """`auto` (bf16 on CUDA) keeps the prompt encoder and mask decoder in fp32; an explicit bf16 does not.
    Run here on the CPU with bf16 forced: the decoder sees an fp32 embedding under auto-like settings."""

    assert SamSegmenter(tiny_sam, device="cpu", precision="auto").decoder_precision == "fp32"
    bf16 = SamSegmenter(tiny_sam, device="cpu", precision="bf16")
    assert bf16.decoder_precision == "bf16"
    mixed = SamSegmenter(tiny_sam, device="cpu", precision="bf16")
    mixed.decoder_precision = "fp32"   # what `auto` gives on a GPU: bf16 encoder, fp32 decoder
    seen = []
    decoder = tiny_sam.mask_decoder.transformer   # what the image embedding (plus the prompt's) goes through
    real = decoder.forward

    def spy(src, *args, **kwargs):
        seen.append(src.dtype)
        return real(src, *args, **kwargs)

    decoder.forward = spy
    try:
        img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        (res,) = mixed.segment([img], [SegmentRequest(boxes=np.array([[8, 8, 40, 40]], np.float32))])
    finally:
        del decoder.forward
    assert seen == [torch.float32] and res.masks.shape == (1, 64, 64)



@pytest.mark.slow
def test_auto_is_resolved_per_part_for_every_caller_with_the_cuda_branch_forced(gdino_model, tiny_sam, lama_stub,
                                                                                monkeypatch):
    """What `auto` gives on a bf16 GPU, run on the CPU (the device decision forced to bf16): GroundingDINO and SAM's
    encoder in bf16, SAM's decoder in fp32 whether SAM runs alone or inside grounded-sam (which handed its
    resolved bf16 on, so the decoder ran in bf16 on CUDA), LaMa in fp32."""
    from bgforge.backends import device as devmod

    monkeypatch.setattr(devmod, "_bf16_device", lambda dev: True)
    alone = SamSegmenter(tiny_sam, device="cpu", precision="auto")
    grounded = GroundedSamSegmenter(gdino_model, tiny_sam, device="cpu", precision="auto",
                                    box_threshold=0.0, gdino_min_size=128, gdino_max_boxes=2)
    lama = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_precision="auto")
    assert (alone.precision, alone.decoder_precision) == ("bf16", "fp32")
    assert (grounded.detector.precision, grounded.sam.precision, grounded.sam.decoder_precision) == ("bf16", "bf16", "fp32")
    assert lama.precision == "fp32"
    explicit = GroundedSamSegmenter(gdino_model, tiny_sam, device="cpu", precision="bf16")
    assert explicit.sam.decoder_precision == "bf16"  # an explicit precision applies to every part
    seen = []
    transformer = tiny_sam.mask_decoder.transformer
    real = transformer.forward
    transformer.forward = lambda src, *a, **k: seen.append(src.dtype) or real(src, *a, **k)
    try:
        img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
        (res,) = grounded.segment([img], [SegmentRequest(text="bird")])
    finally:
        del transformer.forward
    assert len(res.masks) == 2 and seen == [torch.float32]
