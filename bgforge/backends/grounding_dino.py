"""`grounded-sam` segmenter: text prompt -> GroundingDINO boxes -> SAM masks.

groundingdino's own `predict()` handles one image, defaults to CUDA and preprocesses PIL
images; here preprocessing runs on tensors and images whose resized shapes are equal run
as one batch. With `gdino_bucket` > 0 each resized image is also padded (zeros, with a padding
mask, as upstream's NestedTensor batches) up to a multiple of it, so mixed sizes share a batch;
the padding depends on the image's own size only, so a result never depends on which images
share its batch, but it differs slightly from an unpadded run (the Swin backbone sees the pad):
opt-in.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from bgforge.errors import BgforgeError

from .base import Detection, GroundedSegmenter, SegmentRequest, SegmentResult, check_batch
from .device import autocast, check_precision, enable_fast_matmul, part_precision, resolve_device, upload
from .needs import hub_offline
from .normalize import normalize
from .sam import SamSegmenter, build_sam
from .weights import (
    load_checkpoint,
    resolve_checkpoint,
    resolve_gdino_config,
    resolve_text_encoder,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger("bgforge")


def cxcywh_to_xyxy(boxes: ArrayLike, width: int, height: int, clip: bool = True) -> np.ndarray:
    """(N,4) normalised cx,cy,w,h -> (N,4) float32 x0,y0,x1,y1 in pixels of a WxH image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx, cy, bw, bh = b[:, 0] * width, b[:, 1] * height, b[:, 2] * width, b[:, 3] * height
    out = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    if clip:
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out.astype(np.float32)


def resized_shape(h: int, w: int, size: int = 800, max_size: int | None = 1333) -> tuple[int, int]:
    """(h, w) after RandomResize([size], max_size): groundingdino's get_size_with_aspect_ratio."""
    if max_size is not None:
        lo, hi = float(min(w, h)), float(max(w, h))
        if hi / lo * size > max_size:
            size = int(round(max_size * lo / hi))
    if (w <= h and w == size) or (h <= w and h == size):
        return h, w
    if w < h:
        return int(size * h / w), size
    return size, int(size * w / h)


@contextlib.contextmanager
def _quiet():
    """Hide groundingdino/timm/transformers deprecation chatter (not errors) from the CLI."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*meshgrid.*", category=UserWarning)
        yield


def preprocess_caption(caption: str) -> str:
    c = caption.lower().strip()
    return c if c.endswith(".") else c + "."


def build_grounding_dino(config: str | None = None, checkpoint: str | None = None,
                         text_encoder: str | None = None) -> torch.nn.Module:
    """GroundingDINO from a config file + checkpoint, loaded on the CPU."""
    try:
        with _quiet(), hub_offline():  # the hub stays offline: a missing BERT fails at once, not after retries
            from groundingdino.models import build_model
            from groundingdino.util.misc import clean_state_dict
            from groundingdino.util.slconfig import SLConfig
    except ImportError as exc:
        raise BgforgeError(
            f"grounded-sam needs groundingdino-py (`pip install groundingdino-py`): {exc}"
        ) from None
    cfg_path = resolve_gdino_config(config)
    ckpt_path = resolve_checkpoint("groundingdino_swint", checkpoint)
    args = SLConfig.fromfile(str(cfg_path))
    args.device = "cpu"
    args.text_encoder_type = resolve_text_encoder(text_encoder, args.text_encoder_type)
    # gradient checkpointing only matters for training, and torch.utils.checkpoint warns
    # (or refuses) when called in inference mode
    args.use_checkpoint = False
    args.use_transformer_ckpt = False
    try:
        # build_model prints "final text_encoder_type: ..." to stdout
        with contextlib.redirect_stdout(io.StringIO()), _quiet(), hub_offline():
            model = build_model(args)
    except OSError as exc:  # transformers cannot find bert-base-uncased offline
        raise BgforgeError(
            f"GroundingDINO text encoder {args.text_encoder_type!r} is not available offline "
            f"({' '.join(str(exc).split())[:120]}); run `bgforge models fetch bert-base-uncased`"
        ) from None
    sd = load_checkpoint(ckpt_path, "groundingdino_swint")
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
        sd = sd["model"]
    sd = clean_state_dict(sd)
    try:
        res = model.load_state_dict(sd, strict=False)
    except RuntimeError:
        raise BgforgeError(
            f"checkpoint {ckpt_path} does not fit the GroundingDINO config {cfg_path} "
            "(tensor shape mismatch); use the config that matches the checkpoint"
        ) from None
    # upstream loads with strict=False; tolerate a few missing buffers but not a wrong file
    missing = [k for k in res.missing_keys if not k.endswith("position_ids")]
    if len(missing) > 0.5 * len(model.state_dict()):
        raise BgforgeError(
            f"checkpoint {ckpt_path} does not look like a GroundingDINO checkpoint "
            f"({len(missing)} of {len(model.state_dict())} weights missing)"
        )
    if missing:
        log.warning("GroundingDINO checkpoint %s lacks %d weights, e.g. %s",
                    ckpt_path, len(missing), missing[0])
    return model.eval()


class GroundingDinoDetector:
    """Text-prompted boxes; loaded once, reused for every batch."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32", box_threshold: float = 0.3,
                 text_threshold: float = 0.25, min_size: int = 800, max_size: int | None = 1333,
                 max_boxes: int | None = None, bucket: int = 0) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.precision = precision
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.min_size = int(min_size)
        self.max_size = None if max_size is None else int(max_size)
        # at most this many boxes per image, best scores first (None: every box over the threshold)
        self.max_boxes = None if max_boxes is None else int(max_boxes)
        self.bucket = int(bucket or 0)  # 0: batch equal resized shapes only, unpadded
        self.no_sync = True  # False: upstream's forward as it is (the proof compares the two)
        if self.bucket < 0:
            raise BgforgeError(f"gdino_bucket must be 0 (off) or a positive size in pixels, got {bucket}")

    def _prepare(self, img: np.ndarray):
        import torchvision.transforms.functional as TF

        h, w = img.shape[:2]
        t = upload(img, self.device).permute(2, 0, 1).float().div_(255.0)  # uint8 up, then float
        size = resized_shape(h, w, self.min_size, self.max_size)
        if size != (h, w):
            t = TF.resize(t, list(size), antialias=True)  # bilinear, like the PIL path
        return normalize(t)  # ImageNet statistics, as groundingdino.datasets.transforms

    def _batch_shape(self, img: np.ndarray) -> tuple[int, int]:
        """The (h, w) the model sees this image at: its resized shape, padded up to the bucket."""
        h, w = resized_shape(*img.shape[:2], self.min_size, self.max_size)
        step = self.bucket or 1
        return h + (-h) % step, w + (-w) % step

    def _samples(self, images: list[np.ndarray], shape: tuple[int, int]):
        """Images of one batch shape as the model's input: a plain tensor, or padded with a mask."""
        import torch

        tensors = [self._prepare(img) for img in images]
        if not self.bucket:
            return torch.stack(tensors)
        from groundingdino.util.misc import NestedTensor

        batch = torch.zeros((len(tensors), 3, *shape), device=self.device)
        pad = torch.ones((len(tensors), *shape), dtype=torch.bool, device=self.device)  # True: padding
        for t, b, m in zip(tensors, batch, pad):
            b[:, : t.shape[1], : t.shape[2]] = t
            m[: t.shape[1], : t.shape[2]] = False
        # boxes come back relative to the unpadded image: the position encodings and the
        # decoder's reference points are normalised by the mask's valid extent
        return NestedTensor(batch, pad)

    def _phrase(self, token_logits, ids: list[int]) -> str:
        """Caption words whose token score passes text_threshold (as upstream's
        get_phrases_from_posmap, minus [CLS]/[SEP]/'.' which it would also return)."""
        tok = self.model.tokenizer
        special = set(tok.all_special_ids)
        picked = [ids[j] for j in (token_logits[: len(ids)] > self.text_threshold).nonzero()[:, 0]
                  if ids[j] not in special]
        return tok.decode(picked).replace(".", "").strip()

    def detect(self, images: list[np.ndarray], captions: list[str]) -> list[Detection]:
        """Per image: boxes xyxy float32 (N,4), scores (N,) and the phrase each box matched."""
        import torch

        from . import gdino_nosync

        captions = [preprocess_caption(c) for c in captions]
        results: list = [None] * len(images)
        # Only images of one size AND one caption share a forward pass: upstream's text enhancer
        # repeats the phrase mask with `repeat(nhead, 1, 1)` where nn.MultiheadAttention wants
        # per-sample-then-per-head order, so batched different captions borrow each other's
        # masks (Open-GroundingDino#115); predict() runs batch 1 and never meets it.
        buckets: dict[tuple, list[int]] = {}
        for i, img in enumerate(images):
            buckets.setdefault((self._batch_shape(img), captions[i]), []).append(i)
        tok = self.model.tokenizer
        with torch.inference_mode():
            for (shape, _), idx in buckets.items():
                samples = self._samples([images[i] for i in idx], shape)
                caps = [captions[i] for i in idx]
                # no host sync inside the forward pass (gdino_nosync): same outputs as upstream's
                nosync = gdino_nosync.active(self.model, caps) if self.no_sync else contextlib.nullcontext()
                with autocast(self.device, self.precision), _quiet(), nosync:
                    out = self.model(samples, captions=caps)
                # the box threshold on the device: only the kept queries' token scores cross to the host
                probs = out["pred_logits"].float().sigmoid()  # (B, nq, 256)
                keep_b = probs.max(dim=2).values > self.box_threshold
                kept = probs[keep_b].cpu().split(keep_b.sum(dim=1).tolist())
                keep_b, boxes_b = keep_b.cpu(), out["pred_boxes"].float().cpu()  # (B, nq, 4) cxcywh in [0,1]
                for j, i in enumerate(idx):
                    logits, boxes = kept[j], boxes_b[j][keep_b[j]]
                    if self.max_boxes is not None and len(logits) > self.max_boxes:
                        top = logits.max(dim=1).values.argsort(descending=True)[: self.max_boxes].sort().values
                        logits, boxes = logits[top], boxes[top]
                    ids = tok(captions[i])["input_ids"]
                    phrases = [self._phrase(lg, ids) for lg in logits]
                    h, w = images[i].shape[:2]
                    results[i] = Detection(
                        cxcywh_to_xyxy(boxes.numpy(), w, h),
                        logits.max(dim=1).values.numpy().astype(np.float32),
                        phrases,
                    )
        return results


class GroundedSamSegmenter(GroundedSegmenter):
    """`GroundedSamSegmenter(gdino, sam)`: a built GroundingDINO and a built segment-anything `Sam`;
    `from_options(gdino_config=..., gdino_checkpoint=..., sam_model=..., sam_checkpoint=...)` builds both."""

    name = "grounded-sam"

    def __init__(self, gdino: torch.nn.Module, sam, device: str | None = None, precision: str = "auto",
                 box_threshold: float = 0.3, text_threshold: float = 0.25, gdino_min_size: int = 800,
                 gdino_max_size: int | None = 1333, gdino_max_boxes: int | None = None, gdino_bucket: int = 0,
                 **sam_options) -> None:
        self.device = resolve_device(device)
        self.precision = part_precision(precision, self.device, "gdino")  # auto: bf16 on CUDA, fp32 on CPU
        enable_fast_matmul(self.device)
        self.detector = GroundingDinoDetector(
            gdino, self.device, self.precision, box_threshold, text_threshold,
            gdino_min_size, gdino_max_size, gdino_max_boxes, gdino_bucket)
        # the user's precision, not GroundingDINO's: SAM resolves `auto` per part (fp32 decoder)
        self.sam = SamSegmenter(sam, device=self.device, precision=precision, **sam_options)

    @classmethod
    def from_options(cls, gdino_config: str | None = None, gdino_checkpoint: str | None = None,
                     gdino_text_encoder: str | None = None, sam_model: str = "vit_h", sam_checkpoint=None,
                     device: str | None = None, precision: str = "auto", **options) -> "GroundedSamSegmenter":
        """Load GroundingDINO (config, checkpoint, text encoder), then SAM, on the CPU; a bad device or
        precision fails before either load."""
        device = resolve_device(device)
        check_precision(precision)
        gdino = build_grounding_dino(gdino_config, gdino_checkpoint, gdino_text_encoder)
        return cls(gdino, build_sam(sam_model, sam_checkpoint), device=device, precision=precision, **options)

    def detect(self, images: list[np.ndarray], captions: list[str]) -> list[Detection]:
        return self.detector.detect(images, captions)

    def segment_boxes(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[SegmentResult]:
        return self.sam.segment_boxes(images, boxes)

    def segment(self, images: list[np.ndarray], requests: list[SegmentRequest]) -> list[SegmentResult]:
        check_batch(images, requests, "requests")
        for i, r in enumerate(requests):
            if not r.text or not r.text.strip(". "):
                raise BgforgeError(
                    f"grounded-sam needs a text prompt for image {i} (e.g. 'bird . dog'); "
                    "set the source's class names or use --segmenter sam with boxes"
                )
        dets = self.detect(images, [r.text for r in requests])
        results = self.segment_boxes(images, [d.boxes for d in dets])
        for res, (boxes, scores, phrases) in zip(results, dets):
            res.backend = self.name
            res.boxes = boxes
            res.scores = scores  # detector confidence: what the thresholds were applied to
            res.phrases = list(phrases)
        return results
