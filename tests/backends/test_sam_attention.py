"""SAM's folded-bias SDPA attention: exact against segment-anything with non-zero position tables, zero-padded
to widths the fused CUDA kernels take, and no per-call host work for the relative-position index."""

from __future__ import annotations

import pytest
import torch

from bgforge.backends import sam_attention
from bgforge.backends.sam_attention import padded_width, sdpa_kernels, use_sdpa


def _block(dim, heads, size, seed=1):
    from segment_anything.modeling.image_encoder import Attention

    torch.manual_seed(seed)
    block = Attention(dim=dim, num_heads=heads, use_rel_pos=True, input_size=size).eval()
    with torch.no_grad():  # non-zero relative-position tables: a random SAM has all-zero ones
        block.rel_pos_h.normal_()
        block.rel_pos_w.normal_()
    return block


@pytest.mark.slow
@pytest.mark.parametrize("dim, heads, size", [
    (32, 2, (7, 7)),      # 16 + 14 = 30 -> padded to 32, v padded too
    (32, 2, (6, 10)),     # non-square grid: 16 + 16 = 32, no pad
    (160, 2, (14, 14)),   # ViT-H's windowed width: 80 + 28 = 108 -> 112
    (80, 1, (100, 80)),   # 80 + 180 = 260 > 256: q and k padded to 264, v left at 80
])
@pytest.mark.parametrize("pad_v", [False, True])   # True: v padded as on a GPU
def test_padded_fold_equals_segment_anythings_attention(dim, heads, size, pad_v, monkeypatch):
    monkeypatch.setattr(sam_attention, "PAD_V_ON_CPU", pad_v)
    block = _block(dim, heads, size)
    x = torch.randn(2, *size, dim)
    with torch.no_grad():
        want = block(x)
        assert use_sdpa(torch.nn.Sequential(block)) == 1
        seen = []
        real = sam_attention.attend
        sam_attention.attend = lambda q, k, v, scale=None: seen.append((q.shape[-1], v.shape[-1])) or real(q, k, v, scale)
        try:
            got = block(x)
            again = block(x)  # the cached index and one-hot give the same result
        finally:
            sam_attention.attend = real
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.equal(got, again)
    hd = dim // heads
    width = padded_width(hd + sum(size))
    padded = pad_v and width <= 256 and width <= 1.5 * hd
    assert width % 8 == 0 and seen[0] == (width, width if padded else hd)
    assert padded == (pad_v and (dim, heads) == (160, 2))  # only the window-like shape pads v


def test_relative_position_index_is_built_once_per_block_on_the_device():
    """segment-anything's get_rel_pos makes a CPU arange and indexes the device table with it on every
    call (a host-to-device copy per call on CUDA); the block keeps its index on the table's device."""
    block = _block(32, 2, (7, 7))
    use_sdpa(torch.nn.Sequential(block))
    calls = []
    real_arange = torch.arange

    def counting(*args, **kwargs):
        calls.append(args)
        return real_arange(*args, **kwargs)

    torch.arange = counting
    try:
        with torch.no_grad():
            for _ in range(3):
                block(torch.randn(1, 7, 7, 32))
    finally:
        torch.arange = real_arange
    assert len(calls) == 2  # the rows' index and the keys' one-hot, at the first call only
    (index,) = block._bgforge_index.values()
    assert index.device == block.rel_pos_h.device and index.shape == (7, 7)


# (embed dim, heads, token grid) of every real block: windows of 14 x 14 tokens, global blocks over 64 x 64
REAL_BLOCKS = {
    "vit_h window": (1280, 16, (14, 14)),   # 80 + 28 = 108 -> 112
    "vit_h global": (1280, 16, (64, 64)),   # 80 + 128 = 208
    "vit_b window": (768, 12, (14, 14)),    # 64 + 28 = 92 -> 96
    "vit_b global": (768, 12, (64, 64)),    # 64 + 128 = 192
}


@pytest.mark.parametrize("name", sorted(REAL_BLOCKS))
def test_every_real_block_shape_is_eligible_for_the_fused_kernels(name):
    """The tensors the real forward hands SDPA (built on the meta device, as on a GPU, in bf16: shapes, dtypes and
    strides, no arithmetic) meet the documented rules of PyTorch's fused kernels on an H100 (sm 9.0, cuDNN 9.10):
    windows: flash, memory-efficient and cuDNN (v padded); global blocks: memory-efficient and cuDNN (v left at the
    head dim: padding it to 192/208 would more than double the P.V work); on an A100 cuDNN's 128 limit leaves
    the global blocks to the memory-efficient kernel. Unpadded (the old fold), a windowed block was eligible for
    the math kernel only."""
    dim, heads, size = REAL_BLOCKS[name]
    from segment_anything.modeling.image_encoder import Attention

    with torch.device("meta"):
        block = Attention(dim=dim, num_heads=heads, use_rel_pos=True, input_size=size).to(torch.bfloat16)
    use_sdpa(torch.nn.Sequential(block))
    seen = []

    class Captured(Exception):
        pass

    def capture(q, k, v, scale=None):
        seen.append((q, k, v))
        raise Captured

    real = sam_attention.attend
    sam_attention.attend = capture
    try:
        with pytest.raises(Captured):
            block(torch.empty(1, *size, dim, dtype=torch.bfloat16, device="meta"))
    finally:
        sam_attention.attend = real
    (q, k, v) = seen[0]
    hd = dim // heads
    assert q.shape[-1] % 8 == 0 and q.shape[-1] == k.shape[-1] == padded_width(hd + sum(size))
    window = "window" in name
    assert v.shape[-1] == (q.shape[-1] if window else hd)  # v padded for flash in the windows only
    assert sdpa_kernels(q, k, v) == ({"math", "flash", "efficient", "cudnn"} if window else {"math", "efficient", "cudnn"})
    a100 = sdpa_kernels(q, k, v, sm=(8, 0))
    assert a100 == ({"math", "flash", "efficient", "cudnn"} if window else {"math", "efficient"})
    if hd + sum(size) != q.shape[-1]:  # what the unpadded fold gave SDPA
        old_q = torch.empty(*q.shape[:-1], hd + sum(size), dtype=torch.bfloat16, device="meta")
        assert sdpa_kernels(old_q, old_q, v[..., :hd]) == {"math"}


def test_eligibility_rules_refuse_what_the_kernels_refuse():
    bf = dict(dtype=torch.bfloat16, device="meta")
    q = torch.empty(1, 16, 196, 112, **bf)
    assert "flash" not in sdpa_kernels(q, q, torch.empty(1, 16, 196, 80, **bf))       # v narrower than q
    packed = torch.empty(1, 196, 16, 112, **bf).transpose(1, 2)                        # cuDNN's layout
    assert sdpa_kernels(packed, packed, packed, has_mask=True) == {"math", "efficient", "cudnn"}  # flash: no mask
    f32 = q.float()
    assert sdpa_kernels(f32, f32, f32) == {"math", "efficient"}                          # fp32: efficient only
    wide = torch.empty(1, 16, 196, 264, **bf)
    assert sdpa_kernels(wide, wide, wide) == {"math", "efficient"}                        # over 256
    assert "cudnn" in sdpa_kernels(packed, packed, packed) and "cudnn" not in sdpa_kernels(q, q, q)
