"""`sam` segmenter: Segment Anything prompted with boxes.

Batched: one image-encoder pass for a chunk of images (a whole call by default: the executor's
chunk, i.e. --batch-size), then the prompt encoder and mask decoder over every box of the pass at
once (one box upload; up to DECODER_BOXES boxes a call), each box reading its own image's
embedding. Masks and scores move to the CPU once per pass. Precision `auto`: bf16 autocast on CUDA, fp32 on CPU; the
encoder's attention runs through scaled_dot_product_attention (sam_attention.py). On CUDA the
uint8 image goes up pinned and non-blocking and is resized and normalised there.
"""

from __future__ import annotations

import numpy as np

from bgforge.choices import SAM_MODELS  # segment-anything's registry names
from bgforge.errors import BgforgeError

from .base import Segmenter, SegmentResult, as_boxes, check_batch
from .device import autocast, check_precision, enable_fast_matmul, part_precision, resolve_device, upload
from .weights import load_checkpoint, resolve_checkpoint

DECODER_BOXES = 64  # boxes per mask-decoder call: its activations are ~4 MB (fp32) a box


def torch_compile(module):
    """`--compile`: torch.compile the module (opt-in: minutes of warm-up, then faster steps)."""
    import torch

    return torch.compile(module, mode="max-autotune-no-cudagraphs")


def _state_dict(obj) -> dict:
    # official files are a bare state dict; tolerate the common {"model": ...} wrapper
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BgforgeError(f"SAM checkpoint holds a {type(obj).__name__}, not a state dict")
    return obj


def build_sam(sam_model: str = "vit_h", checkpoint=None):
    """Build a SAM of type `sam_model` and load its checkpoint on the CPU."""
    import torch
    from segment_anything import sam_model_registry

    if sam_model not in SAM_MODELS:
        raise BgforgeError(
            f"unknown SAM model {sam_model!r}: expected one of {', '.join(SAM_MODELS)}")
    path = resolve_checkpoint(f"sam_{sam_model}", checkpoint)
    # build_sam() would torch.load without map_location (CUDA-saved files fail on CPU),
    # so build empty and load ourselves.
    sd = _state_dict(load_checkpoint(path, f"sam_{sam_model}"))
    # Skeleton on the meta device: random init of ViT-H costs ~8 s of CPU for weights we
    # overwrite anyway; assign=True then adopts the loaded tensors.
    with torch.device("meta"):
        model = sam_model_registry[sam_model](checkpoint=None)
    try:
        model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as exc:
        missing = sum(k not in sd for k in model.state_dict())
        unexpected = sum(k not in model.state_dict() for k in sd)
        raise BgforgeError(
            f"checkpoint {path} does not fit SAM {sam_model} ({missing} missing, {unexpected} "
            f"unexpected keys{', shape mismatch' if 'size mismatch' in str(exc) else ''}); "
            "check that --sam-model matches the checkpoint"
        ) from None
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        # a non-persistent buffer was left uninitialised: take the slow, safe path
        model = sam_model_registry[sam_model](checkpoint=None)
        model.load_state_dict(sd, strict=True)
    return model.eval()


def resize_longest_side(t, target: int):
    """(1, 3, H, W) uint8 on any device -> float, long side `target`, as SamPredictor.set_image's
    PIL path resizes it (bilinear with antialias, then rounded to uint8: within a grey level).

    Not upstream's `ResizeLongestSide.apply_image_torch`: it reads the size from dims 0 and 1 of a
    BCHW tensor (B and C), so every image became 341 x 1024 whatever its shape
    (segment-anything#218).
    """
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    h, w = int(t.shape[2]), int(t.shape[3])
    size = ResizeLongestSide.get_preprocess_shape(h, w, target)
    out = torch.nn.functional.interpolate(t.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.round_().clamp_(0, 255)


class SamSegmenter(Segmenter):
    """`SamSegmenter(sam)`: a built segment-anything `Sam` (SamPredictor's style), moved to `device`;
    `SamSegmenter.from_options(sam_model=..., sam_checkpoint=...)` builds it from a checkpoint."""

    name = "sam"

    def __init__(
        self,
        model,
        device=None,
        precision: str = "auto",
        multimask: bool = True,
        encoder_batch: int | None = None,
        device_resize: bool | None = None,
        compile: bool = False,
    ):
        from segment_anything import SamPredictor

        from .sam_attention import use_sdpa

        self.device = resolve_device(device)
        # `auto`: bf16 for the image encoder on CUDA (where the time goes), fp32 for the prompt encoder and
        # mask decoder (device.AUTO_BY_PART)
        self.precision = part_precision(precision, self.device, "sam_encoder")
        self.decoder_precision = part_precision(precision, self.device, "sam_decoder")
        enable_fast_matmul(self.device)
        self.multimask = bool(multimask)
        # None: the whole call in one encoder pass (callers hand a chunk of --batch-size images)
        self.encoder_batch = None if encoder_batch is None else max(1, int(encoder_batch))
        # resizing on the device saves ~10 ms of CPU per image; on a CPU the reference's PIL
        # resize is kept so masks match SamPredictor.set_image exactly
        self.device_resize = self.device.type == "cuda" if device_resize is None else bool(device_resize)
        self.model = model.to(self.device).eval()
        use_sdpa(self.model.image_encoder)
        self.encoder = torch_compile(self.model.image_encoder) if compile else self.model.image_encoder
        # SamPredictor only for its ResizeLongestSide transform (matching the model's
        # img_size); we drive the model directly to batch the encoder.
        self.transform = SamPredictor(self.model).transform

    @classmethod
    def from_options(cls, sam_model: str = "vit_h", sam_checkpoint=None, device=None, precision: str = "auto",
                     **options) -> "SamSegmenter":
        """Load SAM `sam_model` from its checkpoint (weights.resolve_checkpoint: the option, the
        environment, models.yaml or the model dir); a bad device or precision fails before the load."""
        device = resolve_device(device)
        check_precision(precision)
        return cls(build_sam(sam_model, sam_checkpoint), device=device, precision=precision, **options)

    # ------------------------------------------------------------------ helpers
    def _input(self, img: np.ndarray):
        """(3, S, S) normalised, padded model input and the resized size (h, w)."""
        import torch

        if self.device_resize:
            t = resize_longest_side(upload(img, self.device).permute(2, 0, 1)[None], self.transform.target_length)
        else:
            resized = self.transform.apply_image(img)  # HxWx3 uint8 (PIL), long side = img_size
            t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
        return self.model.preprocess(t)[0], tuple(t.shape[-2:])

    def _encode(self, images: list[np.ndarray]):
        """Image embeddings (B,C,h,w) plus each image's resized input size."""
        import torch

        pairs = [self._input(img) for img in images]
        with autocast(self.device, self.precision):
            emb = self.encoder(torch.stack([p[0] for p in pairs]))
        return emb, [p[1] for p in pairs]

    def _decode(self, emb, sizes: list, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[tuple]:
        """Each image's best mask per box and its predicted IoU, still on the device: [(N,H,W) bool, (N,)].

        Every box of the pass goes through the prompt encoder and mask decoder together (the
        boxes go up in one copy, with the index of the image each belongs to), each box with its
        own image's embedding: segment-anything's decoder takes one image per call, so this runs
        its predict_masks steps on the gathered embeddings (`_predict_masks`)."""
        import torch

        m = self.model
        counts = [b.shape[0] for b in boxes]
        owner = np.repeat(np.arange(len(boxes), dtype=np.float32), counts)
        packed = upload(np.concatenate([np.concatenate(boxes).astype(np.float32), owner[:, None]], 1), self.device)
        box_t = torch.cat([self.transform.apply_boxes_torch(part, img.shape[:2])
                           for part, img in zip(packed[:, :4].split(counts), images)])
        index = packed[:, 4].long()
        if self.decoder_precision == "fp32":
            emb = emb.float()
        low_parts, iou_parts = [], []
        with autocast(self.device, self.decoder_precision):
            pe = m.prompt_encoder.get_dense_pe()
            for at in range(0, box_t.shape[0], DECODER_BOXES):
                part = slice(at, at + DECODER_BOXES)
                sparse, dense = m.prompt_encoder(points=None, boxes=box_t[part], masks=None)
                low, iou = _predict_masks(m.mask_decoder, emb[index[part]], pe, sparse, dense)
                low_parts.append(low.float())
                iou_parts.append(iou.float())
        low_res, iou = torch.cat(low_parts), torch.cat(iou_parts)
        # MaskDecoder.forward's choice: the 3 multimask outputs, or the single-mask token alone
        low_res, iou = (low_res[:, 1:], iou[:, 1:]) if self.multimask else (low_res[:, :1], iou[:, :1])
        if low_res.shape[1] > 1:  # several candidates per box: keep the best-scored one
            best = iou.argmax(dim=1)
            idx = torch.arange(low_res.shape[0], device=best.device)
            low_res, iou = low_res[idx, best][:, None], iou[idx, best][:, None]
        out = []
        for lows, scores, size, img in zip(low_res.split(counts), iou.split(counts), sizes, images):
            masks = m.postprocess_masks(lows, size, img.shape[:2])[:, 0] > m.mask_threshold
            out.append((masks, scores[:, 0]))
        return out

    def _to_host(self, decoded: list, boxes: list[np.ndarray]) -> list[SegmentResult]:
        """Every image's masks and scores of one encoder pass in one device -> host copy each: a
        copy waits for the GPU, so one per image would stall it once per image."""
        import torch

        masks = torch.cat([mk.reshape(-1) for mk, _ in decoded]).cpu().numpy()
        scores = torch.cat([s for _, s in decoded]).float().cpu().numpy()
        out, at, k = [], 0, 0
        for (mk, _), b in zip(decoded, boxes):
            n = mk.shape[0]
            out.append(SegmentResult(masks=masks[at:at + mk.numel()].reshape(mk.shape), boxes=b.astype(np.float32),
                                     scores=scores[k:k + n].astype(np.float32), backend=self.name))
            at, k = at + mk.numel(), k + n
        return out

    # ------------------------------------------------------------------ API
    def segment_boxes(
        self, images: list[np.ndarray], boxes: list[np.ndarray]
    ) -> list[SegmentResult]:
        """Like segment(), with plain (N,4) xyxy box arrays (grounded-sam uses this)."""
        import torch

        out: list[SegmentResult] = []
        step = self.encoder_batch or max(1, len(images))
        with torch.inference_mode():
            for start in range(0, len(images), step):
                chunk = images[start:start + step]
                chunk_boxes = boxes[start:start + step]
                if all(b.shape[0] == 0 for b in chunk_boxes):  # nothing to segment: skip encoder
                    out.extend(SegmentResult.empty(*i.shape[:2], self.name) for i in chunk)
                    continue
                emb, sizes = self._encode(chunk)
                todo = [j for j, b in enumerate(chunk_boxes) if b.shape[0]]
                decoded = self._decode(emb[todo], [sizes[j] for j in todo], [chunk[j] for j in todo],
                                       [chunk_boxes[j] for j in todo])
                found = dict(zip(todo, self._to_host(decoded, [chunk_boxes[j] for j in todo])))
                out.extend(found[j] if j in found else SegmentResult.empty(*img.shape[:2], self.name)
                           for j, img in enumerate(chunk))
        return out

    def segment(self, images, requests):
        check_batch(images, requests, "requests")
        return self.segment_boxes(images, [as_boxes(r.boxes) for r in requests])


def _predict_masks(decoder, embeddings, image_pe, sparse, dense):
    """segment-anything's MaskDecoder.predict_masks for boxes of several images: `embeddings` holds
    each box's own image embedding (N,C,h,w) where upstream repeats one image's N times. Every
    other step is upstream's, in its order (so fp32 masks equal SamPredictor's)."""
    import torch

    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    output_tokens = output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
    tokens = torch.cat((output_tokens, sparse), dim=1)
    src = embeddings + dense
    pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos_src, tokens)
    iou_token_out = hs[:, 0, :]
    mask_tokens_out = hs[:, 1: (1 + decoder.num_mask_tokens), :]
    src = src.transpose(1, 2).view(b, c, h, w)
    upscaled = decoder.output_upscaling(src)
    hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
                           dim=1)
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    return masks, decoder.iou_prediction_head(iou_token_out)
