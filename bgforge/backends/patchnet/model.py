"""The patch network, its checkpoint format (M.pt) and batched prediction.

EfficientNet-B0 features cut at the output stride, then a 1x1 convolution: one foreground
logit per patch. Inputs are normalised with the ImageNet statistics so that ImageNet-trained
--init weights fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bgforge.errors import BgforgeError

from ..device import resolve_device
from ..normalize import normalize

if TYPE_CHECKING:
    import torch

FORMAT = "bgforge-patchnet"
FORMAT_VERSION = 1
# Output stride -> (EfficientNet-B0 `features` blocks kept, their output channels).
CUTS = {32: (9, 1280), 16: (6, 112), 8: (4, 40)}


def check_stride(stride: int) -> None:
    if stride not in CUTS:
        raise BgforgeError(f"stride must be one of {', '.join(map(str, CUTS))}, got {stride}")


def build_patchnet(stride: int = 32) -> torch.nn.Sequential:
    """EfficientNet-B0 features (cut at `stride`) + a 1x1 conv: (B,3,S,S) -> (B,1,S/stride,S/stride) logits.

    The module names match torchvision's efficientnet_b0 (`features.N...`), so a torchvision
    checkpoint's backbone weights load as they are.
    """
    from collections import OrderedDict

    import torch.nn as nn
    from torchvision.models import efficientnet_b0

    check_stride(stride)
    blocks, channels = CUTS[stride]
    backbone = efficientnet_b0(weights=None)
    return nn.Sequential(OrderedDict(features=backbone.features[:blocks], head=nn.Conv2d(channels, 1, kernel_size=1)))


def to_tensor(batch: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> normalised (N, 3, S, S) float32 on device."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2).float().div_(255)
    return normalize(x)


def predict(model: torch.nn.Module, images: np.ndarray, device: str | torch.device,
            batch_size: int = 16) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, g, g) float32 foreground probabilities."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            logits = model(to_tensor(images[start:start + batch_size], device))
            out.append(torch.sigmoid(logits)[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def load_init(model: torch.nn.Module, path: str | Path) -> int:
    """Copy backbone (and, if shapes fit, head) weights from a local checkpoint; returns tensors loaded."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"--init {path} not found; pass a local EfficientNet-B0 state dict or a patchnet checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BgforgeError(f"--init {path} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(data, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(data.get(wrapper), dict):
                data = data[wrapper]
                break
    if not isinstance(data, dict):
        raise BgforgeError(f"--init {path} holds a {type(data).__name__}, not a state dict")
    data = {k.removeprefix("module."): v for k, v in data.items()}
    own = model.state_dict()
    backbone = [k for k in own if k.startswith("features.")]
    missing = [k for k in backbone if k not in data or tuple(data[k].shape) != tuple(own[k].shape)]
    if missing:
        raise BgforgeError(f"--init {path} does not hold EfficientNet-B0 backbone weights: {len(missing)} of "
                           f"{len(backbone)} `features.*` tensors missing or misshapen (e.g. {missing[0]})")
    take = {k: data[k] for k in own if k in data and tuple(data[k].shape) == tuple(own[k].shape)}
    model.load_state_dict(take, strict=False)
    return len(take)


def load_patchnet(path: str | Path,
                  device: str | torch.device | None = None) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on device, checkpoint info without the weights) from M.pt."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BgforgeError(f"patchnet model {path} not found; train one with `bgforge patchnet train --images D "
                           "--labels L.json --out M.pt`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BgforgeError(f"patchnet model {path} is not a readable torch checkpoint "
                           f"({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise BgforgeError(f"{path} is not a patchnet checkpoint (no format {FORMAT!r}); make one with "
                           "`bgforge patchnet train`")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise BgforgeError(f"{path} was written by a newer bgforge ({ckpt.get('bgforge_version')}); upgrade bgforge")
    dev = resolve_device(device)
    model = build_patchnet(int(ckpt["stride"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(dev).eval()
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, info
