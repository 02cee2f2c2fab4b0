"""How a chain writes its images: format, JPEG quality and PNG level, read from a recipe once.

The defaults live here and nowhere else. Recipes that rebuild a reference set their own quality
(Waterbirds and UrbanCars save at PIL's 75, see docs/fidelity.md); everything else writes q95.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# numpy, OpenCV and Pillow (io.images) load on first encode: the CLI reads JPEG_QUALITY for its help

JPEG_QUALITY = 95   # where a recipe or command sets none
PNG_LEVEL = 6       # zlib level of PNG images (Pillow's default)
MASK_PNG_LEVEL = 1  # masks compress well at any level: the fastest one


@dataclass(frozen=True)
class Encoding:
    image_format: str = "jpg"
    jpeg_quality: int = JPEG_QUALITY
    png_level: int = PNG_LEVEL

    @classmethod
    def of(cls, params: dict, default_format: str = "jpg", png_level: int = PNG_LEVEL) -> "Encoding":
        """The encoding a recipe's (already checked) params ask for; unset keys take the defaults."""
        quality = params.get("jpeg_quality")
        return cls(params.get("image_format") or default_format,
                   JPEG_QUALITY if quality is None else int(quality), png_level)

    def encode(self, image) -> bytes:
        from .images import encode

        return encode(image, self.image_format, quality=self.jpeg_quality, png_level=self.png_level)

    def as_format(self, image_format: str) -> "Encoding":
        return replace(self, image_format=image_format)


def encode_mask(mask: np.ndarray) -> bytes:
    """A boolean (or 0/1) mask as an 8-bit PNG of 0 and 255."""
    import numpy as np

    from .images import encode

    return encode(mask.astype(np.uint8) * 255, "png", png_level=MASK_PNG_LEVEL)
