"""Device and precision helpers shared by the model backends.

Kept free of model code so the classical backends never need more than `import torch`
lazily, and so every neural backend interprets `device` / `precision` the same way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from bgforge.choices import PRECISIONS
from bgforge.errors import BgforgeError


def resolve_device(device=None):
    """Return a torch.device: None/"auto" -> cuda if available else cpu.

    Asking for CUDA on a machine without it is a user error, not a silent CPU fallback:
    a run planned for a GPU would otherwise take hours without saying why.
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BgforgeError(
            f"unknown device {device!r}: expected cpu, cuda, cuda:N or auto ({exc})"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BgforgeError(
                f"device {device!r} requested but CUDA is not available here; use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BgforgeError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA "
                f"device(s) exist; use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type not in ("cpu", "mps"):
        raise BgforgeError(f"unsupported device {device!r}: expected cpu, cuda, cuda:N or auto")
    return dev


def check_precision(precision: str | None) -> str:
    """Normalise a precision name; None means fp32."""
    p = "fp32" if precision is None else str(precision).lower()
    if p not in PRECISIONS:
        raise BgforgeError(
            f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        )
    return p


def _bf16_device(dev) -> bool:
    """Whether `auto` means bf16 on this device: a CUDA device with bf16 kernels (Ampere and later).
    The one place the device decides (tests force it on a CPU to run the CUDA branch's precisions)."""
    import torch

    return dev.type == "cuda" and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str | None, device) -> str:
    """`auto` -> bf16 on a CUDA device with bf16 kernels (Ampere and later), else fp32.

    bf16 autocast is what makes SAM ViT-H ~5x faster on a GPU (PERFORMANCE.md); on a CPU fp32
    is both exact and faster. Other names are only checked.
    """
    import torch

    p = check_precision(precision)
    if p != "auto":
        return p
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return "bf16" if _bf16_device(dev) else "fp32"


# What `auto` means for each model part, resolved once here for every caller (sam, grounded-sam, lama):
# "device": bf16 where the device has it, else fp32; "fp32": always fp32.
#  - SAM's prompt encoder and mask decoder are cheap, and bf16 there costs mask IoU (>= 0.99 vs fp32
#    becomes >= 0.98);
#  - LaMa's Fourier blocks have no bf16 FFT (cuFFT), so bf16 would fail every image.
AUTO_BY_PART = {"sam_encoder": "device", "sam_decoder": "fp32", "gdino": "device", "lama": "fp32"}


def part_precision(precision: str | None, device, part: str) -> str:
    """The precision one model part runs at: an explicit name applies to every part, `auto` follows
    AUTO_BY_PART. Callers hand on the user's precision, never one already resolved for another part."""
    p = check_precision(precision)
    if p != "auto":
        return p
    return resolve_precision("auto", device) if AUTO_BY_PART[part] == "device" else "fp32"


def enable_fast_matmul(device) -> None:
    """TF32 for fp32 matmuls and convolutions on CUDA (Ampere and later): ~8x the fp32
    throughput for a 10-bit mantissa, well inside what segmentation and inpainting need."""
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@contextlib.contextmanager
def autocast(device, precision: str | None) -> Iterator[None]:
    """Autocast context for `precision` on `device`.

    fp32 -> no autocast. CPU + fp16 -> no autocast either: CPU fp16 kernels are missing or
    slower than fp32 for most ops, so it is not worth the accuracy loss. CPU + bf16 and
    CUDA + bf16/fp16 use torch.autocast.
    """
    import torch

    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    p = resolve_precision(precision, dev)
    if p == "fp32" or (dev.type == "cpu" and p == "fp16") or dev.type not in ("cpu", "cuda"):
        with contextlib.nullcontext():
            yield
        return
    dtype = torch.bfloat16 if p == "bf16" else torch.float16
    with torch.autocast(device_type=dev.type, dtype=dtype):
        yield


def upload(array: np.ndarray, device):
    """An array (an HxWxC uint8 image, a box table) on `device`: through pinned memory and non-blocking
    on CUDA, so the copy overlaps the GPU's work (images go up as uint8: 1 byte a channel, not 4).
    The non-blocking copy runs on a CPU too (every test); pinning needs a CUDA driver."""
    import torch

    if not array.flags.writeable or not array.flags.c_contiguous:  # decoded PIL buffers are read-only
        array = np.array(array, order="C")
    t = torch.from_numpy(array)
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
