"""EXIF orientation, read and applied with ImageOps.exif_transpose's semantics (io/images.py uses it).

Every decode in io/images.py returns the image as a viewer shows it, so the boxes and masks a person
drew on the shown image fit it, and bgforge stores images without the tag: Hugging Face's loader
applies the tag, and would turn an image but not its mask. The OpenCV fast paths decode the stored
pixels and turn the array (the same pixels as Image.transpose: tests/io/test_untrusted_input.py).
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

ORIENTATION = 0x0112
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')


def _exif_ifd0_orientation(tiff: bytes) -> int | None:
    """Tag 0x0112 of a TIFF header's first IFD (an Exif APP1 block after its "Exif\\0\\0"); None when it
    is absent, 0 when the block is not one this parser reads (Pillow then decides)."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or int.from_bytes(tiff[2:4], order) != 42:
        return 0
    at = int.from_bytes(tiff[4:8], order)
    if at + 2 > len(tiff):
        return 0
    for i in range(int.from_bytes(tiff[at:at + 2], order)):
        entry = tiff[at + 2 + 12 * i:at + 14 + 12 * i]
        if len(entry) < 12:
            return 0
        if int.from_bytes(entry[:2], order) == ORIENTATION:
            kind, count = int.from_bytes(entry[2:4], order), int.from_bytes(entry[4:8], order)
            if count != 1 or kind not in (3, 4):
                return 0
            return int.from_bytes(entry[8:10] if kind == 3 else entry[8:12], order)
    return None


def _jpeg_orientation(raw: bytes) -> int:
    """A JPEG's orientation from its APP1 segments, as Pillow reads it (the first Exif block's IFD0 tag,
    else an XMP packet's tiff:Orientation); 0 where only Pillow can tell."""
    at, exif_seen, xmp = 2, False, False
    while at + 4 <= len(raw) and raw[at] == 0xFF:
        marker = raw[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        length = int.from_bytes(raw[at + 2:at + 4], "big")
        if marker == 0xDA or length < 2:
            break
        if marker == 0xE1:
            segment = raw[at + 4:at + 2 + length]
            if segment.startswith(b"Exif\x00\x00") and not exif_seen:
                exif_seen = True
                found = _exif_ifd0_orientation(segment[6:])
                if found is not None:
                    return found
            elif segment.startswith(b"http://ns.adobe.com/xap/1.0/"):
                xmp = True
        at += 2 + length
    return 0 if xmp else 1


def pil_orientation(im: Image.Image) -> int:
    """The orientation Pillow reads (Exif, else XMP); 1 when none or unreadable. A PNG's eXIf chunk
    after its pixels is not looked for before they are loaded (Pillow would decode them to find it)."""
    try:
        if im.format == "PNG" and "exif" not in im.info and "Raw profile type exif" not in im.info:
            xmp = im.info.get("XML:com.adobe.xmp") or ""
            m = _XMP_ORIENTATION.search(xmp.encode() if isinstance(xmp, str) else xmp)
            return int(m[2]) if m else 1
        return int(im.getexif().get(ORIENTATION, 1))
    except Exception:  # a damaged Exif block: shown as stored, as most viewers do
        return 1


def orientation(raw: bytes) -> int:
    """EXIF orientation 1..8 of encoded bytes (1: none), as Image.getexif() reads it. JPEGs (their Exif
    block parsed here) and PNGs without an Exif or XMP chunk are answered without Pillow."""
    if raw[:2] == b"\xff\xd8":
        found = _jpeg_orientation(raw)  # ~10 us: no Pillow for the Exif block of a camera JPEG
        if found:
            return found
    if raw[:8] == _PNG_SIG and b"eXIf" not in raw and b"exif" not in raw and b"XML:com.adobe.xmp" not in raw:
        return 1
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.format == "PNG" and "exif" not in im.info:
                im.load()  # an eXIf chunk after the pixels
            return pil_orientation(im)
    except Exception:
        return 1


def orient_array(arr: np.ndarray, o: int) -> np.ndarray:
    """An array as stored -> as shown for EXIF orientation `o` (exactly Image.transpose's pixels)."""
    if o not in TRANSPOSE:
        return arr
    arr = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
           8: lambda a: np.rot90(a, 1)}[o](arr)
    return np.ascontiguousarray(arr)


def orient_image(im: Image.Image, o: int | None = None) -> Image.Image:
    """A loaded PIL image as shown (its own orientation unless `o` is given)."""
    o = pil_orientation(im) if o is None else o
    return im.transpose(TRANSPOSE[o]) if o in TRANSPOSE else im


def shown_size(size: tuple[int, int], o: int) -> tuple[int, int]:
    return (size[1], size[0]) if o in (5, 6, 7, 8) else size
