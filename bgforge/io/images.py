"""Decoding and encoding with errors that name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SampleError


def open_image(path, stage: str = "read", mode: str = "RGB") -> Image.Image:
    """Fully decoded PIL image; a missing or corrupt file raises SampleError."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode) if im.mode != mode else im.copy()
    except FileNotFoundError:
        raise SampleError(stage, f"file not found: {path}") from None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise SampleError(stage, f"cannot decode {path}: {exc}") from None


def open_mask(path, stage: str = "read_mask") -> np.ndarray:
    """A soft mask as uint8: (H, W) for greyscale files, (H, W, 3) otherwise (used per channel)."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im if im.mode == "L" else im.convert("RGB"))
    except FileNotFoundError:
        raise SampleError(stage, f"mask not found: {path}") from None
    except Exception as exc:
        raise SampleError(stage, f"cannot decode mask {path}: {exc}") from None
    return arr


def encode(array_or_image, fmt: str, quality: int = 95, png_level: int = 6) -> bytes:
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        im.save(buf, format="JPEG", quality=int(quality))
    elif fmt == "png":
        im.save(buf, format="PNG", compress_level=int(png_level))
    else:
        raise ValueError(f"unknown image format {fmt!r} (jpg or png)")
    return buf.getvalue()


def decode(data: bytes, mode: str = "RGB") -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert(mode))


def ensure_parent(path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
