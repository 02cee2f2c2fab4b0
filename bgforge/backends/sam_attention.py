"""SAM's image-encoder attention through `scaled_dot_product_attention`.

segment-anything materialises every (tokens x tokens) attention matrix in fp32 and adds the
decomposed relative-position bias to it; for ViT-H's global blocks that is 64^2 x 64^2 per
head. `F.scaled_dot_product_attention` takes the same bias as an additive mask and runs a
fused kernel (memory-efficient attention on CUDA, bf16-friendly). The result equals the
original within float tolerance (tests/backends/test_throughput.py checks it on CPU).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


def _sdpa_forward(self, x: torch.Tensor) -> torch.Tensor:
    from segment_anything.modeling.image_encoder import get_rel_pos

    B, H, W, _ = x.shape
    qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, H*W, C)
    bias = None
    if self.use_rel_pos:
        Rh = get_rel_pos(H, H, self.rel_pos_h)
        Rw = get_rel_pos(W, W, self.rel_pos_w)
        r_q = q.reshape(B * self.num_heads, H, W, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
        # the same (B*heads, HW, HW) bias add_decomposed_rel_pos adds to the scaled logits
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(B, self.num_heads, H * W, H * W)
        bias = bias.to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # scale: head_dim ** -0.5, as SAM's
    out = out.view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
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
