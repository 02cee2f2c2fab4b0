"""SAM's image-encoder attention through `scaled_dot_product_attention`.

segment-anything materialises every (tokens x tokens) attention matrix in fp32 and adds the
decomposed relative-position bias to it; for ViT-H's global blocks that is 64^2 x 64^2 per
head. Here `F.scaled_dot_product_attention` runs a fused kernel with the bias folded into the
queries and keys (see `_sdpa_forward`), so no attention matrix or bias is materialised.

The folded width (head dim + window rows + window columns: 80 + 14 + 14 = 108 in ViT-H's windowed
blocks) is zero-padded to a multiple of 8, and on a GPU v to the same width where that costs little
(`pads_v`): the fused CUDA kernels refuse other widths in bf16 and SDPA would fall back to its math
kernel with an fp32 upcast. Zero columns add exactly zero to every logit, and the padded output
columns are dropped. `sdpa_kernels` states which kernels a shape is eligible for
(tests/backends/test_sam_attention.py checks every real block shape).

No host sync per forward: each block's relative-position index and key one-hot are built once per
(grid, device, dtype) and kept on the device (segment-anything's `get_rel_pos` indexes the device
table with a CPU `arange` on every call).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

ALIGN = 8          # flash, memory-efficient (bf16/fp16) and cuDNN want head dims that are multiples of 8
FLASH_MAX_DIM = 256  # flash attention's largest head dim
# v is padded to q's width (flash wants equal widths) only where that adds at most half of v's own width
# in zeros: ViT-H's windows (80 -> 112) and vit_b's (64 -> 96), not the global blocks (80 -> 208, 64 -> 192),
# where the extra P.V work would outweigh flash's edge over the memory-efficient kernel (which takes v as is).
V_PAD_MAX_RATIO = 1.5
# On a CPU v stays as is: padded, SDPA took its CPU flash kernel and vit_b's encoder used several times the CPU
# time of the GEMM-based math kernel (the CPU smoke, on a busy machine)
PAD_V_ON_CPU = False


def pads_v(width: int, head_dim: int, device) -> bool:
    """Whether the fold pads v to the padded q/k `width` on `device` (the rule above)."""
    on_device = torch.device(device).type != "cpu" or PAD_V_ON_CPU
    return on_device and width <= FLASH_MAX_DIM and width <= V_PAD_MAX_RATIO * head_dim


def padded_width(width: int) -> int:
    return width + (-width) % ALIGN


def _rel_table(attn, axis: str, size: int, device) -> torch.Tensor:
    """(size, size, C) relative-position rows for `size` queries and keys (segment-anything's
    get_rel_pos for equal query and key sizes), from an index built once and kept on the device."""
    table = attn.rel_pos_h if axis == "h" else attn.rel_pos_w
    if table.shape[0] != 2 * size - 1:  # a table for another grid: upstream's interpolation (rare)
        from segment_anything.modeling.image_encoder import get_rel_pos

        return get_rel_pos(size, size, table)
    cache = attn.__dict__.setdefault("_bgforge_index", {})
    key = (size, str(device))
    if key not in cache:
        coords = torch.arange(size)
        cache[key] = (coords[:, None] - coords[None, :] + size - 1).to(device)
    return table[cache[key]]


def _key_one_hot(attn, H: int, W: int, width: int, device, dtype) -> torch.Tensor:
    """(H*W, width - head_dim): each key's row and column as a one-hot, zero-padded; cached per block."""
    cache = attn.__dict__.setdefault("_bgforge_one_hot", {})
    key = (H, W, width, str(device), dtype)
    if key not in cache:
        rows = torch.arange(H * W)
        extra = torch.zeros(H * W, width, dtype=dtype)
        extra[rows, rows // W] = 1
        extra[rows, H + rows % W] = 1
        cache.clear()  # one grid per block in practice: keep one entry
        cache[key] = extra.to(device)
    return cache[key]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """The one SDPA call of the encoder (a seam for the kernel-eligibility test)."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def _sdpa_forward(self, x: torch.Tensor) -> torch.Tensor:
    B, H, W, _ = x.shape
    qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, H*W, C)
    hd = q.shape[-1]
    if not self.use_rel_pos:
        out = attend(q, k, v)  # scale: head_dim ** -0.5, as SAM's
    else:
        # add_decomposed_rel_pos adds rel_h[query, key row] + rel_w[query, key column] to each scaled
        # logit. The same sum is a dot product: queries carry their rel_h and rel_w rows, keys a one-hot
        # of their row and column, so SDPA never sees a (tokens x tokens) bias (512 MiB per image and
        # global block of ViT-H in bf16) and can take a fused kernel.
        Rh = _rel_table(self, "h", H, x.device)
        Rw = _rel_table(self, "w", W, x.device)
        r_q = q.reshape(B * self.num_heads, H, W, hd)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh).reshape(B, self.num_heads, H * W, H)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw).reshape(B, self.num_heads, H * W, W)
        width = padded_width(hd + H + W)
        # (B, tokens, heads, width) buffers seen as (B, heads, tokens, width): the layout cuDNN's kernel takes
        q_aug, k_aug = (q.new_zeros(B, H * W, self.num_heads, width).transpose(1, 2) for _ in range(2))
        q_aug[..., :hd] = q * hd ** -0.5
        q_aug[..., hd:hd + H] = rel_h
        q_aug[..., hd + H:hd + H + W] = rel_w
        k_aug[..., :hd] = k
        k_aug[..., hd:] = _key_one_hot(self, H, W, width - hd, x.device, k.dtype)
        if pads_v(width, hd, x.device):  # flash attention wants v as wide as q and k; the extra columns are zeros
            wide = v.new_zeros(B, H * W, self.num_heads, width).transpose(1, 2)
            wide[..., :hd] = v
            v = wide
        elif x.device.type != "cpu":  # v in the same (B, tokens, heads, C) layout, which cuDNN's kernel wants
            v = v.transpose(1, 2).contiguous().transpose(1, 2)
        out = attend(q_aug, k_aug, v, scale=1.0)[..., :hd]
    out = out.reshape(B, self.num_heads, H, W, hd).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(out)


def use_sdpa(image_encoder: torch.nn.Module) -> int:
    """Route every attention block of a SAM image encoder through SDPA; returns how many."""
    from segment_anything.modeling.image_encoder import Attention

    n = 0
    for module in image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_forward, module)
            n += 1
    return n


def sdpa_kernels(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sm: tuple[int, int] = (9, 0),
                 cudnn_version: int = 91000, has_mask: bool = False) -> set[str]:
    """The fused CUDA kernels SDPA may pick for these tensors on a GPU of compute capability `sm`,
    by PyTorch's documented eligibility rules (aten/src/ATen/native/transformers/cuda/sdp_utils.cpp:
    check_head_dim_size_flash, check_head_dim_size_mem_efficient, check_cudnn_tensor_shapes and
    check_cudnn_layout); `math` is always eligible. The CUDA helpers (torch.backends.cuda.can_use_*)
    need a GPU, so the rules are restated here for the CPU tests; the proof records the kernels
    the GPU really ran (benchmarks/gpu_profile.py)."""
    half = q.dtype in (torch.float16, torch.bfloat16)
    dq, dk, dv = q.shape[-1], k.shape[-1], v.shape[-1]
    eligible = {"math"}
    if half and dq == dk == dv and dq <= FLASH_MAX_DIM and dq % 8 == 0 and not has_mask and sm >= (8, 0):
        eligible.add("flash")
    align = max(4, 128 // (16 if half else 32)) if sm >= (8, 0) else (8 if half else 1)
    if dq == dk and dq % align == 0 and dv % align == 0 and q.dtype in (torch.float16, torch.bfloat16, torch.float32):
        eligible.add("efficient")
    limit = 256 if sm == (9, 0) and cudnn_version >= 91000 else 128
    h, s, d = q.shape[1], q.shape[2], q.shape[3]
    bshd = all(t.stride(1) == t.shape[-1] and t.stride(2) == t.shape[1] * t.shape[-1] and t.stride(3) == 1
               for t in (q, k, v))
    if half and max(dq, dv) <= limit and dq % 8 == 0 and dv % 8 == 0 and k.shape[2] > 1 and bshd and h * s * d:
        eligible.add("cudnn")
    return eligible
