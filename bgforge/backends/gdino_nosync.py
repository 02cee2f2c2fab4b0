"""GroundingDINO's forward without host syncs, for bgforge's detector (upstream calls run unchanged).

On CUDA every conversion of a device value to a Python value waits for the GPU. Upstream's forward
(groundingdino-py 0.4.0) does that ~100 times a call (counted on a CPU: tests/backends/test_gdino_nosync.py):
- the text masks (bertwarper.generate_masks_with_special_tokens_and_transfer_map) loop over `nonzero()` of
  the device token ids, reading each index back;
- `spatial_shapes`, a device tensor, is iterated per level as device scalars (the encoder's reference
  points, the two-stage proposals, and the deformable attention's split and reshape in every layer);
- every deformable attention asserts a device sum equals the token count;
- the decoder checks every layer's output for NaN/inf (`if output.isnan().any() | ...`).

Here the masks are built from the caption's CPU token ids and go up in one copy, the level shapes are
Python ints taken from the feature maps' shapes, and the assert and the NaN check are skipped. The same
operations otherwise run in the same order, so the outputs are bit-identical to upstream's
(`groundingdino.util.inference.predict`, tested).

`install()` replaces six upstream functions once; each runs bgforge's version only inside `active(...)`
(a context variable GroundingDinoDetector.detect sets around its forward pass) and upstream's own
otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
import torch.nn.functional as F

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("bgforge_gdino_nosync", default=None)
_ORIGINAL: dict = {}


class _Run:
    """What one forward pass knows on the host: the captions' text masks, and the level shapes once known."""

    def __init__(self, masks: tuple):
        self.masks = masks                  # text_masks() of the captions, on the CPU
        self.shapes: list | None = None     # [(h, w)] per feature level, Python ints


@contextlib.contextmanager
def active(model, captions: list[str]) -> Iterator[None]:
    """bgforge's sync-free versions for `model`'s forward passes inside this block (captions as passed to it)."""
    install()
    ids = model.tokenizer(captions, padding="longest", return_tensors="pt")["input_ids"]  # as the model tokenizes
    token = _ACTIVE.set(_Run(text_masks(ids, model.specical_tokens)))  # (sic: upstream's attribute name)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _run(need_shapes: bool = True) -> _Run | None:
    run = _ACTIVE.get()
    return run if run is not None and (run.shapes is not None or not need_shapes) else None


def _upload(t: torch.Tensor, device) -> torch.Tensor:
    if torch.device(device).type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


# ---------------------------------------------------------------- text masks
def text_masks(input_ids: torch.Tensor, special_ids) -> tuple:
    """From CPU token ids: each phrase's tokens attend to each other only (a block per phrase between special
    tokens), their position ids restart at 0 per phrase, and one token mask per phrase. Upstream's
    values, computed on the CPU."""
    bs, n = input_ids.shape
    attention = torch.eye(n, dtype=torch.bool).unsqueeze(0).repeat(bs, 1, 1)
    positions = torch.zeros((bs, n), dtype=torch.long)
    phrases: list[list] = [[] for _ in range(bs)]
    special = torch.zeros((bs, n), dtype=torch.bool)
    for sid in special_ids:
        special |= input_ids == sid
    last = 0  # like upstream, not reset per row: every row starts with [CLS] at column 0
    for row, col in special.nonzero().tolist():
        if col in (0, n - 1):
            attention[row, col, col] = True
            positions[row, col] = 0
        else:
            attention[row, last + 1:col + 1, last + 1:col + 1] = True
            positions[row, last + 1:col + 1] = torch.arange(0, col - last)
            phrase = torch.zeros(n, dtype=torch.bool)
            phrase[last + 1:col] = True
            phrases[row].append(phrase)
        last = col
    return attention, positions, [torch.stack(p, dim=0) for p in phrases]


def _masks(tokenized, special_tokens_list, tokenizer):
    run = _run(need_shapes=False)
    if run is None:
        return _ORIGINAL["masks"](tokenized, special_tokens_list, tokenizer)
    device = tokenized["input_ids"].device
    attention, positions, phrases = run.masks
    n = attention.shape[1]
    # one copy up: the attention mask and the position ids side by side
    packed = _upload(torch.cat([attention.long(), positions[:, :, None]], dim=2), device)
    # the phrase masks stay on the CPU: GroundingDINO.forward does not use them
    return packed[:, :, :n].bool(), packed[:, :, n].contiguous(), phrases


# ---------------------------------------------------------------- level shapes as Python ints
def _transformer_forward(self, srcs, masks, *args, **kwargs):
    run = _run(need_shapes=False)
    if run is not None:
        run.shapes = [(int(s.shape[-2]), int(s.shape[-1])) for s in srcs]
    return _ORIGINAL["transformer"](self, srcs, masks, *args, **kwargs)


def _reference_points(spatial_shapes, valid_ratios, device):
    run = _run()
    if run is None:
        return _ORIGINAL["reference_points"](spatial_shapes, valid_ratios, device)
    levels = []
    for lvl, (h, w) in enumerate(run.shapes):
        ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device),
                                torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device), indexing="ij")
        ys = ys.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        xs = xs.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        levels.append(torch.stack((xs, ys), -1))
    return torch.cat(levels, 1)[:, :, None] * valid_ratios[:, None]


def _proposals(memory, memory_padding_mask, spatial_shapes, learnedwh=None):
    run = _run()
    if run is None or learnedwh is not None:
        return _ORIGINAL["proposals"](memory, memory_padding_mask, spatial_shapes, learnedwh)
    n = memory.shape[0]
    levels, start = [], 0
    for lvl, (h, w) in enumerate(run.shapes):
        pad = memory_padding_mask[:, start:start + h * w].view(n, h, w, 1)
        valid_h, valid_w = torch.sum(~pad[:, :, 0, 0], 1), torch.sum(~pad[:, 0, :, 0], 1)
        gy, gx = torch.meshgrid(torch.linspace(0, h - 1, h, dtype=torch.float32, device=memory.device),
                                torch.linspace(0, w - 1, w, dtype=torch.float32, device=memory.device), indexing="ij")
        grid = torch.cat([gx.unsqueeze(-1), gy.unsqueeze(-1)], -1)
        scale = torch.cat([valid_w.unsqueeze(-1), valid_h.unsqueeze(-1)], 1).view(n, 1, 1, 2)
        grid = (grid.unsqueeze(0).expand(n, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0 ** lvl)
        levels.append(torch.cat((grid, wh), -1).view(n, -1, 4))
        start += h * w
    boxes = torch.cat(levels, 1)
    inside = ((boxes > 0.01) & (boxes < 0.99)).all(-1, keepdim=True)
    boxes = torch.log(boxes / (1 - boxes))  # unsigmoid
    boxes = boxes.masked_fill(memory_padding_mask.unsqueeze(-1), float("inf")).masked_fill(~inside, float("inf"))
    out = memory.masked_fill(memory_padding_mask.unsqueeze(-1), float(0)).masked_fill(~inside, float(0))
    return out, boxes


def _deformable_forward(self, query, key=None, value=None, query_pos=None, key_padding_mask=None,
                        reference_points=None, spatial_shapes=None, level_start_index=None, **kwargs):
    run = _run()
    if run is None:
        return _ORIGINAL["deformable"](self, query, key, value, query_pos, key_padding_mask, reference_points,
                                       spatial_shapes, level_start_index, **kwargs)
    value = query if value is None else value
    if query_pos is not None:
        query = query + query_pos
    if not self.batch_first:
        query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
    bs, n_query, _ = query.shape
    n_value = value.shape[1]  # upstream asserts it equals the shapes' sum, on the device: skipped
    value = self.value_proj(value)
    if key_padding_mask is not None:
        value = value.masked_fill(key_padding_mask[..., None], float(0))
    value = value.view(bs, n_value, self.num_heads, -1)
    offsets = self.sampling_offsets(query).view(bs, n_query, self.num_heads, self.num_levels, self.num_points, 2)
    weights = self.attention_weights(query).view(bs, n_query, self.num_heads, self.num_levels * self.num_points)
    weights = weights.softmax(-1).view(bs, n_query, self.num_heads, self.num_levels, self.num_points)
    if reference_points.shape[-1] == 2:
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)  # stays on the device
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
    elif reference_points.shape[-1] == 4:
        locations = (reference_points[:, :, None, :, None, :2]
                     + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5)
    else:
        raise ValueError(f"Last dim of reference_points must be 2 or 4, but get {reference_points.shape[-1]} instead.")
    out = self.output_proj(_sample(value, run.shapes, locations, weights))
    return out if self.batch_first else out.permute(1, 0, 2)


def _sample(value, shapes, locations, weights):
    """Multi-scale deformable sampling (upstream's multi_scale_deformable_attn_pytorch) over Python shapes."""
    bs, _, heads, dims = value.shape
    _, n_query, _, n_levels, n_points, _ = locations.shape
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for level, (h, w) in enumerate(shapes):
        v = per_level[level].flatten(2).transpose(1, 2).reshape(bs * heads, dims, h, w)
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = weights.transpose(1, 2).reshape(bs * heads, 1, n_query, n_levels * n_points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(bs, heads * dims, n_query)
    return out.transpose(1, 2).contiguous()


# ---------------------------------------------------------------- the decoder without its NaN check
def _decoder_forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                     memory_key_padding_mask=None, pos=None, refpoints_unsigmoid=None, level_start_index=None,
                     spatial_shapes=None, valid_ratios=None, memory_text=None, text_attention_mask=None):
    if _run() is None:
        return _ORIGINAL["decoder"](self, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                    memory_key_padding_mask, pos, refpoints_unsigmoid, level_start_index,
                                    spatial_shapes, valid_ratios, memory_text, text_attention_mask)
    from groundingdino.models.GroundingDINO.transformer import gen_sineembed_for_position
    from groundingdino.util.misc import inverse_sigmoid

    output, outputs = tgt, []
    refs = refpoints_unsigmoid.sigmoid()
    all_refs = [refs]
    for layer_id, layer in enumerate(self.layers):
        if refs.shape[-1] == 4:
            refs_input = refs[:, :, None] * torch.cat([valid_ratios, valid_ratios], -1)[None, :]
        else:
            refs_input = refs[:, :, None] * valid_ratios[None, :]
        sine = gen_sineembed_for_position(refs_input[:, :, 0, :])
        raw_pos = self.ref_point_head(sine)
        query_pos = (self.query_scale(output) if self.query_scale is not None else 1) * raw_pos
        output = layer(tgt=output, tgt_query_pos=query_pos, tgt_query_sine_embed=sine,
                       tgt_key_padding_mask=tgt_key_padding_mask, tgt_reference_points=refs_input,
                       memory_text=memory_text, text_attention_mask=text_attention_mask, memory=memory,
                       memory_key_padding_mask=memory_key_padding_mask, memory_level_start_index=level_start_index,
                       memory_spatial_shapes=spatial_shapes, memory_pos=pos, self_attn_mask=tgt_mask,
                       cross_attn_mask=memory_mask)
        # upstream checks output for NaN/inf here (and only prints): one GPU wait per layer, skipped
        if self.bbox_embed is not None:
            new_refs = (self.bbox_embed[layer_id](output) + inverse_sigmoid(refs)).sigmoid()
            refs = new_refs.detach()
            all_refs.append(new_refs)
        outputs.append(self.norm(output))
    return [[o.transpose(0, 1) for o in outputs], [r.transpose(0, 1) for r in all_refs]]


def install() -> None:
    """Put the sync-free versions in place (once); outside `active(...)` each calls upstream's own."""
    if _ORIGINAL:
        return
    from groundingdino.models.GroundingDINO import groundingdino as gd
    from groundingdino.models.GroundingDINO import ms_deform_attn, transformer

    _ORIGINAL.update(masks=gd.generate_masks_with_special_tokens_and_transfer_map,
                     transformer=transformer.Transformer.forward,
                     reference_points=transformer.TransformerEncoder.get_reference_points,
                     proposals=transformer.gen_encoder_output_proposals,
                     deformable=ms_deform_attn.MultiScaleDeformableAttention.forward,
                     decoder=transformer.TransformerDecoder.forward)
    gd.generate_masks_with_special_tokens_and_transfer_map = _masks
    transformer.Transformer.forward = _transformer_forward
    transformer.TransformerEncoder.get_reference_points = staticmethod(_reference_points)
    transformer.gen_encoder_output_proposals = _proposals
    ms_deform_attn.MultiScaleDeformableAttention.forward = _deformable_forward
    transformer.TransformerDecoder.forward = _decoder_forward
