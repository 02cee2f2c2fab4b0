"""Decoding and encoding with errors that name the file: regular files only, one pixel limit.

Pillow and OpenCV bundle the same libjpeg-turbo and both decode with its defaults (accurate
integer IDCT, fancy upsampling), so for a YCbCr or greyscale JPEG OpenCV hands back Pillow's
pixels exactly (tests/io/test_images.py pins it), ~0.2 ms sooner and without the PIL -> numpy copy:
`rgb_pixels` (bytes) and `read_rgb(exact=True)` (files) take that path and leave every other file
(CMYK JPEGs, whose colour conversion differs; PNG; other formats) to Pillow. The `fast` paths may
also ask `read_rgb` for a DCT-reduced image (`cover`), which is not pixel-exact.
"""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import SampleError, UnsafeInput
from ..records import IMAGE_EXTS
from .orientation import TRANSPOSE, orient_array, orient_image, orientation, pil_orientation, shown_size
from .shards import read_member

# JPEG modes whose colour conversion Pillow leaves to libjpeg itself (CMYK it converts on its own):
# for these OpenCV's bundled libjpeg-turbo, with the same defaults, hands back Pillow's pixels.
LIBJPEG_MODES = ("RGB", "L")
# Pillow never applies EXIF orientation when it decodes; OpenCV does unless told not to
AS_PIL = cv2.IMREAD_IGNORE_ORIENTATION
_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB


# Start-of-frame markers of Huffman-coded baseline, extended and progressive JPEGs; the rare
# others (lossless, arithmetic, hierarchical) go to Pillow, which decides what it can read
_SOF = {0xC0, 0xC1, 0xC2}
_MODES = {1: "L", 3: "RGB", 4: "CMYK"}  # what Pillow calls an 8-bit JPEG of 1, 3 or 4 components


def _reason(exc: Exception) -> str:
    """An exception's text without the in-memory buffer PIL names ("<_io.BytesIO object at 0x..>"):
    the address differs every run, and errors.jsonl must not."""
    return re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc)) or type(exc).__name__


def jpeg_header(raw: bytes) -> tuple[str, tuple[int, int]] | None:
    """(Pillow's mode, (width, height)) from an 8-bit JPEG's frame header, read straight from the
    bytes (~0.2 ms sooner than Image.open); None for anything else, which then goes to Pillow."""
    if raw[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(raw):
        if raw[at] != 0xFF:
            return None
        marker = raw[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(raw[at + 2:at + 4], "big")
        if marker in _SOF:
            if at + 10 > len(raw) or raw[at + 4] != 8 or raw[at + 9] not in _MODES:
                return None
            height, width = int.from_bytes(raw[at + 5:at + 7], "big"), int.from_bytes(raw[at + 7:at + 9], "big")
            return (_MODES[raw[at + 9]], (width, height)) if width and height else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a JPEG we know
            return None
        at += 2 + length
    return None


# No image of a dataset bgforge reads comes near this; a file over it is refused before it is read
# (a manifest naming /dev/zero or a 40 GB file would otherwise be read until memory runs out).
MAX_FILE_BYTES = 1 << 30
PIXEL_LIMIT_ENV = "BGFORGE_MAX_IMAGE_PIXELS"   # overrides Pillow's MAX_IMAGE_PIXELS (89.5 M) in every worker


def pixel_limit() -> int | None:
    """The most pixels an image may claim in its header: $BGFORGE_MAX_IMAGE_PIXELS, else Pillow's
    MAX_IMAGE_PIXELS (None or 0: no limit)."""
    env = os.environ.get(PIXEL_LIMIT_ENV, "").strip()
    return int(env) if env.isdigit() else Image.MAX_IMAGE_PIXELS


def check_pixels(size: tuple[int, int], where: object) -> None:
    """Refuse a header that claims more pixels than `pixel_limit()` before any decoder allocates them
    (a 631-byte JPEG may claim 30000 x 30000: 2.7 GB of RGB, and OpenCV allows 2^30 pixels)."""
    limit = pixel_limit()
    width, height = size
    if limit and width * height > limit:
        raise UnsafeInput(f"{where} claims {width}x{height} = {width * height:,} pixels, over the limit of "
                          f"{limit:,} (a decompression bomb or a corrupt header); raise it with "
                          f"{PIXEL_LIMIT_ENV}=N if the image is real")


if os.environ.get(PIXEL_LIMIT_ENV, "").strip().isdigit():  # Pillow's own bomb check follows the same limit
    Image.MAX_IMAGE_PIXELS = int(os.environ[PIXEL_LIMIT_ENV]) or None


def _open_regular(path: str | Path) -> int:
    """A descriptor of `path`, refused unless it is a regular file of at most MAX_FILE_BYTES.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or
                    stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise UnsafeInput(f"{path} is {kind}; expected an image file")
        if st.st_size > MAX_FILE_BYTES:
            raise UnsafeInput(f"{path} is {st.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit of one image")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_raw(path: str | Path) -> bytes:
    """A whole regular file in one unbuffered read: ~0.02 ms for a 60 KB JPEG, where np.fromfile takes
    ~0.3 ms and Path.read_bytes ~0.05 ms (millions of images are read this way). Devices, FIFOs and
    files over MAX_FILE_BYTES raise UnsafeInput."""
    with open(_open_regular(path), "rb", buffering=0) as fh:
        return fh.readall()


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as shown (EXIF orientation applied) from the header of a regular file (no pixels
    decoded), checked against the pixel limit. Planning uses it: a bomb there is refused before any worker starts."""
    with open(_open_regular(path), "rb") as fh, pil_open(fh, path) as im:
        return shown_size(im.size, pil_orientation(im))  # the size a viewer shows (and boxes are drawn on)


def pil_open(data, where: object = None) -> Image.Image:
    """Image.open on bytes, a path or a file object, its header's size checked before anything is decoded."""
    try:
        im = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data)
    except Image.DecompressionBombError as exc:  # Pillow's own check, at twice its limit
        raise UnsafeInput(f"{where if where is not None else 'an image'}: {exc}") from None
    try:
        check_pixels(im.size, where if where is not None else "an image")
    except UnsafeInput:
        im.close()
        raise
    return im


def _png_size(raw: bytes) -> tuple[int, int]:
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def cv2_rgb(data: np.ndarray, flag: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """OpenCV's decode of encoded bytes as RGB (None when OpenCV cannot read them, a cut-short
    JPEG included). `flag` may ask for a DCT-reduced image (read_rgb)."""
    direct = _RGB if flag == cv2.IMREAD_COLOR else None
    arr = cv2.imdecode(data, (direct if direct is not None else flag) | AS_PIL) if data.size else None
    if arr is None or direct is not None:
        return arr
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """`im.convert(mode)`, except that 16-bit and 32-bit greyscale is scaled to 8 bits, not clipped
    (PIL's own conversion clips every value above 255 to white)."""
    if im.mode == mode:
        return im
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        peak = float(arr.max()) if arr.size else 0.0
        # 16-bit data (I;16*, or mode I from a 16-bit PNG) spans 0..65535; float images 0..1
        scale = 255.0 / 65535.0 if im.mode.startswith("I;16") or peak > 255 else (255.0 if peak <= 1.0 and im.mode == "F"
                                                                                  else 1.0)
        im = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
    return im.convert(mode) if im.mode != mode else im


def open_image(path: str | Path, stage: str = "read", mode: str = "RGB",
               draft: tuple[int, int] | None = None) -> Image.Image:
    """Fully decoded PIL image; a missing or corrupt file raises SampleError.

    draft=(w, h): let a JPEG decode at a reduced DCT scale that still covers w x h (fast paths only).
    """
    try:
        im = pil_open(read_raw(path), path)
        o = pil_orientation(im) if im.format != "PNG" else None  # a PNG's eXIf may follow its pixels
        if draft is not None:
            im.draft("RGB", shown_size(draft, o or 1))  # `draft` is in shown orientation
        im.load()  # decodes and closes the file (single-frame images); no copy needed
        return to_mode(orient_image(im, o), mode)
    except FileNotFoundError:
        raise SampleError(stage, f"file not found: {path}") from None
    except UnsafeInput as exc:
        raise SampleError(stage, str(exc)) from None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise SampleError(stage, f"cannot decode {path}: {_reason(exc)}") from None


def _grey8_png(raw: bytes) -> bool:
    """An 8-bit greyscale PNG (its IHDR: bit depth 8, colour type 0)."""
    return raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR" and raw[24:26] == b"\x08\x00"


def open_mask(path: str | Path, stage: str = "read_mask") -> np.ndarray:
    """A soft mask as uint8: (H, W) for greyscale files, (H, W, 3) otherwise (used per channel)."""
    try:
        raw = read_raw(path)
        if _grey8_png(raw) and orientation(raw) == 1:  # lossless and 8-bit: OpenCV's pixels are Pillow's,
            # ~0.15 ms sooner (CUB's masks)
            check_pixels(_png_size(raw), path)
            arr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
            if arr is not None and arr.ndim == 2 and arr.dtype == np.uint8:
                return arr
        with pil_open(raw, path) as im:
            im.load()
            shown = orient_image(im)
            arr = np.asarray(to_mode(shown, "L") if shown.mode in ("L", "I", "I;16", "F") else shown.convert("RGB"))
    except FileNotFoundError:
        raise SampleError(stage, f"mask not found: {path}") from None
    except UnsafeInput as exc:
        raise SampleError(stage, str(exc)) from None
    except Exception as exc:
        raise SampleError(stage, f"cannot decode mask {path}: {_reason(exc)}") from None
    return arr


def encode(array_or_image: np.ndarray | Image.Image, fmt: str, quality: int = 95, png_level: int = 6) -> bytes:
    """Pixels as `fmt` bytes (recipes choose the quality and level through io.encoding.Encoding)."""
    if fmt == "png" and isinstance(array_or_image, np.ndarray) and array_or_image.dtype == np.uint8 \
            and array_or_image.ndim == 3 and array_or_image.shape[2] == 3:
        # An RGB PNG through OpenCV: the same pixels as Pillow's at the same zlib level, ~25% sooner
        # (every Hard-Spurious-ImageNet background). Greyscale masks stay with Pillow, faster there.
        ok, data = cv2.imencode(".png", cv2.cvtColor(array_or_image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
        if ok:
            return data.tobytes()
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
    """Encoded bytes as a `mode` array, Pillow's pixels (RGB through rgb_pixels' faster JPEG path)."""
    if mode == "RGB":
        return rgb_pixels(data)
    with pil_open(data) as im:
        im.load()
        return np.asarray(to_mode(orient_image(im), mode))


def rgb_pixels(raw: bytes) -> np.ndarray:
    """RGB pixels exactly as Pillow decodes them, EXIF orientation applied (ImageOps.exif_transpose):
    a YCbCr or greyscale JPEG through OpenCV (the same pixels ~0.3 ms sooner, without the PIL -> numpy
    copy; tests/io/test_images.py pins it), anything else through Pillow."""
    return _rgb_oriented(raw)[0]


def _rgb_oriented(raw: bytes) -> tuple[np.ndarray, int]:
    """(RGB pixels as shown, the EXIF orientation that was applied: 1 for none)."""
    header = jpeg_header(raw)
    if header is not None:
        check_pixels(header[1], "the JPEG")
    if header is not None and header[0] in LIBJPEG_MODES:
        arr = cv2_rgb(np.frombuffer(raw, np.uint8))
        if arr is not None:
            o = orientation(raw)
            return orient_array(arr, o), o
    with pil_open(raw) as im:  # Pillow's pixels, or its own error for a file OpenCV refused
        im.load()
        o = pil_orientation(im)
        return np.asarray(to_mode(orient_image(im, o), "RGB")), o


def sample_image(inputs: dict, stage: str = "read_image") -> tuple[np.ndarray, bytes, str]:
    """(RGB array, the raw encoded bytes, their extension) of a record from a folder or a shard."""
    if "image" in inputs:
        path = Path(inputs["image"])
        try:
            raw = read_raw(path)
        except FileNotFoundError:
            raise SampleError(stage, f"file not found: {path}") from None
        except UnsafeInput as exc:
            raise SampleError(stage, str(exc)) from None
        ext = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
    else:
        ext = next((e for e in IMAGE_EXTS if e in inputs.get("members", {})), None)
        if ext is None:
            raise SampleError(stage, f"no image member ({'/'.join(IMAGE_EXTS)}) in {inputs.get('shard')}")
        raw = read_member(inputs, ext, stage)
    try:
        arr, turned = _rgb_oriented(raw)
    except UnsafeInput as exc:
        raise SampleError(stage, f"{inputs.get('image', inputs.get('shard'))}: {exc}") from None
    except Exception as exc:
        raise SampleError(stage, f"cannot decode {inputs.get('image', inputs.get('shard'))}: {_reason(exc)}") from None
    if ext not in ("jpg", "png"):
        raw, ext = encode(arr, "png"), "png"  # keep shards readable by every WebDataset decoder
    elif turned in TRANSPOSE:  # stored as shown, without the tag: a reader that applies it would turn the
        raw = encode(arr, ext)  # image again, but not its mask (Hugging Face's loader does); encode's q95
    return arr, raw, ext


def sample_mask(inputs: dict, shape: tuple, stage: str = "read_mask") -> np.ndarray | None:
    """A provided mask (file or shard member `mask.png`) as bool (H, W), checked against the image size."""
    if "mask" in inputs:
        arr = open_mask(inputs["mask"], stage)
        where = inputs["mask"]
    elif "mask.png" in inputs.get("members", {}):
        arr = decode(read_member(inputs, "mask.png", stage), "L")
        where = f"{inputs['shard']} member mask.png"
    else:
        return None
    arr = arr if arr.ndim == 2 else arr.max(axis=2)
    if arr.shape[:2] != tuple(shape[:2]):
        raise SampleError(stage, f"mask {where} is {arr.shape[1]}x{arr.shape[0]} but its image is "
                                 f"{shape[1]}x{shape[0]}")
    return arr > 127


# DCT-reduced reads (what the fast resampling paths use): libjpeg-turbo decodes at 1/2, 1/4 or 1/8
# scale straight from the coefficients, PIL's draft mode without PIL; not pixel-exact
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _reduction(size: tuple[int, int], cover: tuple[int, int] | None) -> int:
    """The largest DCT reduction (1, 2, 4 or 8) whose image still covers `cover` (w, h)."""
    if cover is not None:
        w, h = size
        for factor, flag in _REDUCED:
            if -(-w // factor) >= cover[0] and -(-h // factor) >= cover[1]:
                return flag
    return cv2.IMREAD_COLOR


def read_rgb(path: str | Path, stage: str = "read", cover: tuple[int, int] | None = None,
             exact: bool = False) -> np.ndarray:
    """An RGB uint8 array; SampleError if unreadable.

    exact: pixel for pixel what io.images.open_image decodes (OpenCV for YCbCr/greyscale JPEGs,
    Pillow otherwise). Else `cover=(w, h)` may DCT-reduce a JPEG, never below w x h.
    """
    path = Path(path)
    try:
        raw = read_raw(path)
        header = jpeg_header(raw)
        if header is not None:
            fmt, (mode, size) = "JPEG", header
        else:
            with pil_open(raw, path) as im:  # the header only: format, mode and size
                fmt, mode, size = im.format, im.mode, im.size
        check_pixels(size, path)
    except FileNotFoundError:
        raise SampleError(stage, f"file not found: {path}") from None
    except Exception as exc:  # PIL raises many types for a corrupt header
        raise SampleError(stage, f"cannot decode {path}: {_reason(exc)}") from None
    turn = orientation(raw)
    if fmt != "JPEG" or (exact and mode not in LIBJPEG_MODES):
        if exact or turn != 1:
            return np.asarray(open_image(path, stage=stage))
        flag = cv2.IMREAD_COLOR
    else:  # `cover` is in shown orientation; the reduction is chosen on the stored sides
        flag = cv2.IMREAD_COLOR if exact else _reduction(size, None if cover is None else shown_size(cover, turn))
    arr = cv2_rgb(np.frombuffer(raw, np.uint8), flag)
    if arr is None:
        raise SampleError(stage, f"cannot decode {path}: not an image OpenCV can read")
    return orient_array(arr, turn)
