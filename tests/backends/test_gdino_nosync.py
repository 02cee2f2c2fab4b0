"""GroundingDINO without host syncs (backends/gdino_nosync.py): no device value read back inside the forward pass,
and outputs bit-identical to upstream's forward and to groundingdino.util.inference.predict."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bgforge.backends import gdino_nosync
from bgforge.backends.grounding_dino import GroundingDinoDetector, cxcywh_to_xyxy

# the ops that copy a device value to the host (each one a GPU wait on CUDA)
READ_BACK = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::nonzero"}


class ReadBacks(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in READ_BACK:
            self.counts[func._schema.name] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def pixels():
    torch.manual_seed(3)
    return torch.rand(2, 3, 64, 80)


def test_no_value_is_read_back_inside_the_forward_pass(gdino_model, pixels):
    captions = ["bird . dog.", "bird . dog."]
    with torch.inference_mode():
        with ReadBacks() as upstream:
            want = gdino_model(pixels, captions=captions)
        with gdino_nosync.active(gdino_model, captions):   # the host-side masks are built here, before
            with ReadBacks() as ours:
                got = gdino_model(pixels, captions=captions)
    assert sum(upstream.counts.values()) > 20, upstream.counts  # masks, level shapes, asserts, the NaN check
    assert sum(ours.counts.values()) == 0, ours.counts
    assert torch.equal(got["pred_logits"], want["pred_logits"]) and torch.equal(got["pred_boxes"], want["pred_boxes"])


@pytest.mark.parametrize("captions", [["bird . dog."], ["bird.", "the water . a land . boat."], ["cat ? dog ."]])
def test_text_masks_from_cpu_ids_equal_upstreams(gdino_model, captions):
    from groundingdino.models.GroundingDINO.bertwarper import generate_masks_with_special_tokens_and_transfer_map

    tok = gdino_model.tokenizer(captions, padding="longest", return_tensors="pt")
    want = generate_masks_with_special_tokens_and_transfer_map(tok, gdino_model.specical_tokens, gdino_model.tokenizer)
    got = gdino_nosync.text_masks(tok["input_ids"], gdino_model.specical_tokens)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and got[1].dtype == want[1].dtype
    assert len(got[2]) == len(want[2]) and all(torch.equal(a, b) for a, b in zip(got[2], want[2]))


@pytest.mark.slow
def test_detect_is_bit_identical_to_upstream_predict(gdino_model):
    """The batch-1 API Grounded-SAM calls, on the same preprocessed tensor: equal boxes and scores, not just close."""
    from groundingdino.util.inference import predict

    rng = np.random.default_rng(4)
    image = rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)
    det = GroundingDinoDetector(gdino_model, torch.device("cpu"), box_threshold=0.2, text_threshold=0.2, min_size=64)
    assert det.no_sync
    (boxes, scores, phrases), = det.detect([image], ["bird . dog"])
    ref_boxes, ref_scores, ref_phrases = predict(gdino_model, det._prepare(image), "bird . dog.", 0.2, 0.2, device="cpu")
    assert len(boxes) == len(ref_boxes) > 0
    np.testing.assert_array_equal(scores, ref_scores.numpy())
    np.testing.assert_array_equal(boxes, cxcywh_to_xyxy(ref_boxes.numpy(), 200, 150))
    assert phrases == [" ".join(t for t in p.split() if t not in ("[CLS]", "[SEP]")) for p in ref_phrases]


@pytest.mark.slow
def test_outside_the_block_upstream_runs_unchanged(gdino_model, pixels):
    gdino_nosync.install()
    with torch.inference_mode(), ReadBacks() as counted:
        gdino_model(pixels[:1], captions=["bird."])
    assert counted.counts["aten::is_nonzero"] > 0   # upstream's asserts and NaN check still run
