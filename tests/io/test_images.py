"""io.images: OpenCV decodes where its pixels are Pillow's; DCT-reduced reads; shards hash themselves as written."""

import numpy as np
import pytest
from PIL import Image

from bgforge.errors import SampleError
from bgforge.io.hashing import sha256_file
from bgforge.io.images import jpeg_header, open_image, open_mask, read_rgb, sample_image
from bgforge.io.shards import ShardWriter, json_bytes


def _photo(w: int = 123, h: int = 77) -> Image.Image:
    """Smooth gradients plus noise: every DCT coefficient and chroma edge gets exercised."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8))


JPEG_KINDS = {
    "420": dict(quality=75),
    "444": dict(quality=90, subsampling=0),
    "422": dict(quality=60, subsampling=1),
    "progressive": dict(quality=80, progressive=True),
    "optimized": dict(quality=95, optimize=True),
}


@pytest.mark.parametrize("kind", [*JPEG_KINDS, "grey", "cmyk", "png", "exif-rotated"])
def test_exact_read_is_pillows_pixels(tmp_path, kind):
    path = tmp_path / ("x.png" if kind == "png" else "x.jpg")
    im = _photo()
    if kind in JPEG_KINDS:
        im.save(path, **JPEG_KINDS[kind])
    elif kind == "grey":
        im.convert("L").save(path, quality=85)
    elif kind == "cmyk":  # Pillow converts CMYK itself: read_rgb must leave it to Pillow
        im.convert("CMYK").save(path, quality=85)
    elif kind == "png":
        im.save(path)
    else:  # Pillow ignores EXIF orientation when decoding; so must OpenCV here
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(path, quality=85, exif=exif.tobytes())
    ours = read_rgb(path, "read_image", exact=True)
    assert ours.dtype == np.uint8 and ours.flags.c_contiguous
    assert np.array_equal(ours, np.asarray(open_image(path))), kind
    with Image.open(path) as pil:  # the frame header read from the bytes agrees with Pillow's
        want = (pil.mode, pil.size) if pil.format == "JPEG" else None
    assert jpeg_header(path.read_bytes()) == want, kind
    # every stage's decode of a sample's bytes (io.images.rgb_pixels) takes the same path
    assert np.array_equal(sample_image({"image": str(path)})[0], np.asarray(open_image(path))), kind


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB", "P", "LA"])
def test_masks_read_as_pillow_reads_them(tmp_path, mode):
    """8-bit greyscale PNGs (CUB's masks) go through OpenCV; every other kind through Pillow, as before."""
    grey = np.asarray(_photo().convert("L"))
    im = Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(grey).convert(mode)
    im.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as pil:
        want = np.asarray(pil.convert("L") if pil.mode == "L" else pil.convert("RGB")) if mode != "I;16" else grey
    got = open_mask(tmp_path / "m.png")
    assert got.dtype == np.uint8 and np.array_equal(got, want), mode


def test_jpeg_header_refuses_what_it_cannot_vouch_for():
    assert jpeg_header(b"") is None and jpeg_header(b"\x89PNG\r\n") is None
    assert jpeg_header(b"\xff\xd8\xff\xda\x00\x02") is None       # scan before any frame header
    assert jpeg_header(b"\xff\xd8\xff\xc0\x00\x11\x0c") is None   # 12-bit, cut short
    sof = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x4b\x00\x64\x03"  # 8-bit, 100 x 75, 3 components
    assert jpeg_header(sof) == ("RGB", (100, 75))
    assert jpeg_header(sof.replace(b"\xc0", b"\xc3")) is None  # lossless: left to Pillow


def test_a_cut_short_jpeg_is_an_error_not_grey_rows(tmp_path):
    path = tmp_path / "cut.jpg"
    _photo(400, 300).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(SampleError, match="cannot decode"):
        sample_image({"image": str(path)})


def test_fast_read_reduces_but_covers_and_errors_name_the_stage(tmp_path):
    path = tmp_path / "big.jpg"
    _photo(400, 300).save(path, quality=75)
    assert read_rgb(path, cover=(100, 75)).shape == (75, 100, 3)      # 1/4 scale still covers
    assert read_rgb(path, cover=(101, 75)).shape == (150, 200, 3)     # 1/4 would not: 1/2
    assert read_rgb(path, cover=(101, 75), exact=True).shape == (300, 400, 3)  # exact never reduces
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    for exact in (False, True):
        with pytest.raises(SampleError, match="cannot decode") as err:
            read_rgb(tmp_path / "bad.jpg", "read_background", exact=exact)
        assert err.value.stage == "read_background"
        with pytest.raises(SampleError, match="file not found"):
            read_rgb(tmp_path / "missing.jpg", exact=exact)


def test_shard_writer_writes_tarfiles_bytes_and_hashes_them(tmp_path):
    import io
    import tarfile

    members = [(f"k{i}", {"jpg": bytes(range(256)) * (i * 7 + 1), "cls": b"1", "json": {"i": i}}) for i in range(5)]
    members += [("\u00e9l\u00e8ve_" + "x" * 86, {"png": b"\x89PNG" * 100})]  # non-ASCII, 100 bytes with .png
    writer = ShardWriter(tmp_path / "shards" / "train-00000.tar")
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, files in members:
            writer.write(key, files)
            for ext, data in files.items():
                data = json_bytes(data) if isinstance(data, dict) else data
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
                tar.addfile(info, io.BytesIO(data))
    path = writer.commit()
    assert path.read_bytes() == expected.getvalue()
    assert writer.sha256 == sha256_file(path)
