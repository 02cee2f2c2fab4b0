"""The one set of ImageNet normalisation constants every torch backend uses.

ImageNet-pretrained networks (torchvision classifiers, the EfficientNet backbone of patchnet,
GroundingDINO's Swin) expect pixels scaled to [0, 1] and standardised per channel with these
statistics; defining them once keeps the backends from drifting apart.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(tensor: torch.Tensor, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> torch.Tensor:
    """(..., 3, H, W) float tensor in [0, 1] -> standardised per channel, on the tensor's device."""
    m, s = _statistics(tensor.device, tuple(mean), tuple(std))
    return (tensor - m) / s


@functools.lru_cache(maxsize=16)
def _statistics(device, mean: tuple, std: tuple):
    """The (3,1,1) float32 mean and std on `device`, made once (two small host -> device copies per
    image add up), as ordinary tensors even when first asked for under inference_mode (patchnet trains)."""
    import torch

    with torch.inference_mode(False):
        return (torch.tensor(mean, device=device).view(3, 1, 1), torch.tensor(std, device=device).view(3, 1, 1))
