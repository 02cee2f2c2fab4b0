"""SAM's image-encoder attention through `scaled_dot_product_attention`.

segment-anything materialises every (tokens x tokens) attention matrix in fp32 and adds the
decomposed relative-position bias to it; for ViT-H's global blocks that is 64^2 x 64^2 per
head. Here `F.scaled_dot_product_attention` runs a fused kernel (memory-efficient attention on
CUDA, bf16-friendly) with the bias folded into the queries and keys (see `_sdpa_forward`), so no
attention matrix or bias is materialised. The result equals the original within float tolerance
(tests/backends/test_throughput.py checks it on CPU, fp32 and bf16).
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
    if not self.use_rel_pos:
        out = F.scaled_dot_product_attention(q, k, v)  # scale: head_dim ** -0.5, as SAM's
    else:
        # add_decomposed_rel_pos adds rel_h[query, key row] + rel_w[query, key column] to each scaled
        # logit. The same sum is a dot product: queries carry their rel_h and rel_w rows, keys a one-hot
        # of their row and column, so SDPA never sees a (tokens x tokens) bias (512 MiB per image and
        # global block of ViT-H in bf16) and can take its memory-efficient kernel.
        Rh = get_rel_pos(H, H, self.rel_pos_h)
        Rw = get_rel_pos(W, W, self.rel_pos_w)
        r_q = q.reshape(B * self.num_heads, H, W, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh).reshape(B, self.num_heads, H * W, H)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw).reshape(B, self.num_heads, H * W, W)
        rows = torch.arange(H * W, device=x.device)
        one_hot = torch.cat([F.one_hot(rows // W, H), F.one_hot(rows % W, W)], dim=1).to(q.dtype)
        q_aug = torch.cat([q * q.shape[-1] ** -0.5, rel_h.to(q.dtype), rel_w.to(q.dtype)], dim=-1)
        k_aug = torch.cat([k, one_hot.expand(B, self.num_heads, -1, -1)], dim=-1)
        out = F.scaled_dot_product_attention(q_aug, k_aug, v, scale=1.0)
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
