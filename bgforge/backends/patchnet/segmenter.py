"""`patchnet` segmenter: patch probabilities, upsampled to the image, thresholded into one mask."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bgforge.errors import BgforgeError

from ..base import Segmenter, SegmentResult, check_batch, mask_bbox
from .labels import resize_input
from .model import load_patchnet, predict

if TYPE_CHECKING:
    import torch


def _threshold(value) -> float:
    threshold = float(value)
    if not 0 < threshold < 1:
        raise BgforgeError(f"patchnet threshold must lie strictly between 0 and 1, got {threshold}")
    return threshold


class PatchNetSegmenter(Segmenter):
    """Mask = (patch probabilities, upsampled bilinearly to the image size) >= threshold.

    Prompts (boxes, text) are ignored: the detector finds the foreground by itself. An image
    with no pixel above the threshold gets no object.
    """

    name = "patchnet"

    def __init__(self, model: torch.nn.Module, info: dict, threshold: float = 0.5, batch_size: int = 16):
        """`model` and `info` as `load_patchnet` returns them (the network on its device, the checkpoint's
        input size and stride); the segmenter runs on the model's device."""
        threshold = _threshold(threshold)
        self.model, self.info = model, info
        self.device = next(self.model.parameters()).device
        self.input_size = int(self.info["input_size"])
        self.threshold, self.batch_size = threshold, int(batch_size)

    @classmethod
    def from_options(cls, model_path: str | Path | None = None, threshold: float = 0.5,
                     device: str | torch.device | None = None, batch_size: int = 16) -> "PatchNetSegmenter":
        """Load M.pt (`bgforge patchnet train`'s checkpoint) onto `device`."""
        if model_path is None:
            raise BgforgeError("segmenter 'patchnet' needs a model: pass --patchnet-model M.pt (backend option "
                               "patchnet_model), made by `bgforge patchnet train`")
        _threshold(threshold)  # before the load
        return cls(*load_patchnet(model_path, device), threshold=threshold, batch_size=batch_size)

    def predict_patches(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, g, g) float32 foreground probability per patch."""
        if not images:
            g = self.input_size // int(self.info["stride"])
            return np.zeros((0, g, g), np.float32)
        batch = np.stack([resize_input(im, self.input_size) for im in images])
        return predict(self.model, batch, self.device, self.batch_size)

    def probabilities(self, patches: np.ndarray, height: int, width: int) -> np.ndarray:
        """(H, W) float32: one image's patch map upsampled bilinearly (pixel centres, align_corners=False)."""
        import torch
        import torch.nn.functional as F

        p = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))[None, None]
        return F.interpolate(p, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()

    def segment(self, images: list[np.ndarray], requests: list) -> list[SegmentResult]:
        check_batch(images, requests, "requests")
        out = []
        for img, patches in zip(images, self.predict_patches(images), strict=True):
            h, w = img.shape[:2]
            prob = self.probabilities(patches, h, w)
            mask = prob >= self.threshold
            if not mask.any():
                out.append(SegmentResult.empty(h, w, self.name))
                continue
            out.append(SegmentResult(masks=mask[None], boxes=mask_bbox(mask)[None],
                                     scores=np.array([prob[mask].mean()], np.float32), backend=self.name))
        return out
