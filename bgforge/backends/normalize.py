"""The one set of ImageNet normalisation constants every torch backend uses.

ImageNet-pretrained networks (torchvision classifiers, the EfficientNet backbone of patchnet,
GroundingDINO's Swin) expect pixels scaled to [0, 1] and standardised per channel with these
statistics; defining them once keeps the backends from drifting apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(tensor: torch.Tensor, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> torch.Tensor:
    """(..., 3, H, W) float tensor in [0, 1] -> standardised per channel, on the tensor's device."""
    import torch

    m = torch.tensor(mean, device=tensor.device).view(3, 1, 1)
    s = torch.tensor(std, device=tensor.device).view(3, 1, 1)
    return (tensor - m) / s
