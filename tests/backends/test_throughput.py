"""Throughput paths, exercised on the CPU with the same code the GPU runs (issue #15)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from collections import Counter

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from bgforge.backends import SegmentRequest, get_inpainter
from bgforge.backends.device import resolve_precision
from bgforge.backends.grounding_dino import GroundedSamSegmenter
from bgforge.backends.sam import SamSegmenter
from bgforge.records import Sample


# ---------------------------------------------------------------- SAM: SDPA attention, device resize
def test_sdpa_attention_equals_segment_anythings(tiny_sam):
    from segment_anything.modeling.image_encoder import Attention

    from bgforge.backends.sam_attention import use_sdpa

    torch.manual_seed(1)
    block = Attention(dim=32, num_heads=2, use_rel_pos=True, input_size=(8, 8)).eval()
    with torch.no_grad():  # non-zero relative-position tables, so the bias matters
        block.rel_pos_h.normal_()
        block.rel_pos_w.normal_()
    x = torch.randn(2, 8, 8, 32)
    with torch.no_grad():
        want = block(x)
        assert use_sdpa(torch.nn.Sequential(block)) == 1
        got = block(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


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
    seg = SamSegmenter(sam_model_obj=tiny_sam, device="cpu", device_resize=True)
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
    seg = SamSegmenter(sam_model_obj=tiny_sam, device="cpu")
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
    assert SamSegmenter(sam_model_obj=tiny_sam, device="cpu").precision == "fp32"
    # a recipe's backend_options.precision is meant for SAM/GroundingDINO: LaMa's FFTs stay fp32
    lama = get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", precision="bf16")
    assert lama.precision == "fp32"
    assert get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_precision="auto").precision == "fp32"
    assert get_inpainter("lama", lama_checkpoint=str(lama_stub), device="cpu", lama_precision="bf16").precision == "bf16"


# ---------------------------------------------------------------- inpaint: one segmenter call per chunk
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


# ---------------------------------------------------------------- stored key index + decoded-background cache
def _write_shard(path, members: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_key_index_is_stored_once_and_rebuilt_when_shards_change(tmp_path):
    from bgforge.sources.key_index import IndexedStore, index_path, write_key_index
    from bgforge.sources.store import ShardStore

    _write_shard(tmp_path / "shards" / "all-00000.tar", {"a.png": _png(10), "a.json": b"{}", "b.png": _png(20),
                                                         "b.json": b"{}"})
    _write_shard(tmp_path / "shards" / "all-00001.tar", {"c.png": _png(30), "c.json": b"{}"})
    write_key_index(tmp_path)
    stamp = index_path(tmp_path).stat().st_mtime_ns
    write_key_index(tmp_path)  # current: not rewritten
    assert index_path(tmp_path).stat().st_mtime_ns == stamp
    store, reference = IndexedStore(tmp_path, cache_size=2), ShardStore(tmp_path)
    for key in "abc":
        assert np.array_equal(store.image(key), reference.image(key))
        assert store.read(key, "json") == reference.read(key, "json")
    assert "a" in store and "z" not in store
    store.image("c")
    assert (store.hits, store.misses) == (1, 3)
    assert not store.image("c").flags.writeable  # shared by every composite that uses it
    # a changed shard set makes the stored index stale: it is rebuilt, not trusted
    _write_shard(tmp_path / "shards" / "all-00002.tar", {"d.png": _png(40)})
    assert "d" in IndexedStore(tmp_path)


# ---------------------------------------------------------------- previews, records
def test_previews_stop_reading_once_every_group_is_picked(tmp_path, monkeypatch):
    import json

    from bgforge.io import preview

    paths = []
    for n in range(3):
        members = {}
        for i in range(4):
            key = f"s{n}_{i}"
            members[f"{key}.jpg"] = _png(10 * i)
            members[f"{key}.json"] = json.dumps({"group_name": f"g{i % 2}"}).encode()
        paths.append(tmp_path / f"t-{n}.tar")
        _write_shard(paths[-1], members)
    full = preview.contact_sheet(paths, per_group=2)
    opened = []
    real = preview.iter_shard
    monkeypatch.setattr(preview, "iter_shard", lambda p: opened.append(p) or real(p))
    early = preview.contact_sheet(paths, per_group=2, group_counts={"g0": 6, "g1": 6})
    assert opened == paths[:1]
    assert early.tobytes() == full.tobytes()


def test_sample_to_dict_is_shallow_and_equal_to_asdict():
    s = Sample(key="k", split="train", inputs={"box": [1, 2, 3, 4]}, meta={"label": 1})
    assert s.to_dict() == dataclasses.asdict(s)
    assert not hasattr(s, "__dict__")  # slots: a million of them while a plan is made


def test_gdino_max_boxes_keeps_the_best_scored(gdino_model, tiny_sam):
    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    opts = dict(device="cpu", gdino_model_obj=gdino_model, sam_model_obj=tiny_sam, box_threshold=0.0,
                gdino_min_size=128)
    (every,) = GroundedSamSegmenter(**opts).detect([img], ["bird"])
    (top,) = GroundedSamSegmenter(gdino_max_boxes=2, **opts).detect([img], ["bird"])
    assert len(every.scores) > 2 and len(top.scores) == 2
    np.testing.assert_allclose(np.sort(top.scores), np.sort(every.scores)[-2:])


def test_no_key_index_for_an_output_without_tars(tmp_path):
    from bgforge.sources.key_index import index_path, write_key_index

    (tmp_path / "shards").mkdir()
    assert write_key_index(tmp_path) is None and not index_path(tmp_path).exists()


def test_grounded_sam_under_bf16_autocast_hands_back_float32_and_bool(gdino_model, tiny_sam):
    """The dtype path of a CUDA run (precision auto = bf16), on the CPU: numpy has no bf16, so every
    tensor must leave the models as float32 or bool, with size buckets too."""
    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    opts = dict(device="cpu", gdino_model_obj=gdino_model, sam_model_obj=tiny_sam, box_threshold=0.0,
                gdino_min_size=128, precision="bf16")
    for bucket in (0, 64):
        seg = GroundedSamSegmenter(gdino_bucket=bucket, **opts)
        results = seg.segment([img, img[:200]], [SegmentRequest(text="bird")] * 2)
        for res, h in zip(results, (224, 200)):
            assert res.masks.dtype == bool and res.masks.shape[1:] == (h, 224) and len(res.masks) > 0
            assert res.scores.dtype == np.float32 and res.boxes.dtype == np.float32


def test_auto_precision_runs_the_sam_decoder_in_fp32(tiny_sam):
    """`auto` (bf16 on CUDA) keeps the prompt encoder and mask decoder in fp32; an explicit bf16 does not.
    Run here on the CPU with bf16 forced: the decoder sees an fp32 embedding under auto-like settings."""

    assert SamSegmenter(sam_model_obj=tiny_sam, device="cpu", precision="auto").decoder_precision == "fp32"
    bf16 = SamSegmenter(sam_model_obj=tiny_sam, device="cpu", precision="bf16")
    assert bf16.decoder_precision == "bf16"
    mixed = SamSegmenter(sam_model_obj=tiny_sam, device="cpu", precision="bf16")
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


def test_contact_sheets_spread_over_classes_label_tiles_and_sort_rows_naturally(tmp_path):
    """Rows show several classes (planned class by class, the first rows used to be one class), each
    tile says its class (and a random background's), and CeO-56 comes before CeO-112."""
    import io as _io

    from PIL import Image as _Image

    from bgforge.io import preview
    from bgforge.io.shards import ShardWriter

    def png(colour):
        buf = _io.BytesIO()
        _Image.new("RGB", (16, 16), colour).save(buf, "PNG")
        return buf.getvalue()

    paths = []
    for n, cls in enumerate(["tench", "goldfish", "shark"]):   # one shard per class, as a plan orders them
        w = ShardWriter(tmp_path / f"train-{n:05d}.tar")
        for i in range(4):
            for group in ("CeO-112", "CeO-56", "CeR-56"):
                meta = {"group_name": group, "class_name": cls, "wnid": f"n0{n}", "background": "random"
                        if group.startswith("CeR") else "own", "bg_class": "n01"}
                w.write(f"{cls}-{group}-{i}", {"png": png((40 * n, 0, 0)), "json": meta})
        w.commit()
        paths.append(tmp_path / f"train-{n:05d}.tar")
    picks = preview._picks_from_shards(paths, 4, 32, None)
    assert Counter(c for _, c in picks["CeO-56"]) == {"tench": 2, "goldfish": 2}   # two per class, then the next
    assert {c for _, c in picks["CeR-56"]} == {"tench on goldfish", "goldfish on goldfish"}
    sheet = preview._sheet(picks, 4, 32)
    assert sheet is not None and sheet.height == 3 * (32 + 4 + preview.CAPTION_H)
    assert sorted(picks, key=preview._natural) == ["CeO-56", "CeO-112", "CeR-56"]
