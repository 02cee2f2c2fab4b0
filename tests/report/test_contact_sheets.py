"""Contact sheets a person can read (issue 34, point 2): labels wrapped, never cut; every class on
the sheet; inpaint tiles show the inpainted pixels; the edit flips sheet shows original and edit."""

import io
import json
import tarfile

import numpy as np
from PIL import Image

from bgforge.io import preview
from bgforge.io.preview import CAPTION_FONT, LABEL_FONT, LABEL_W, wrap
from bgforge.report.spurious import Tally, flip_sheet


def png(color, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_tar(path, members: dict) -> str:
    """members: key -> {ext: bytes}, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, files in members.items():
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_wrap_never_cuts():
    for text, font, width in [("country_car-country_bg-country_obj", LABEL_FONT, LABEL_W - 8),
                              ("box turtle on bobsled", CAPTION_FONT, 112),
                              ("Rhodesian ridgeback on potter's wheel", CAPTION_FONT, 112),
                              ("x" * 80, CAPTION_FONT, 112)]:
        lines = wrap(text, width, font)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")   # every character kept
        assert all(font.getlength(line) <= width for line in lines)
    assert wrap("country_car-country_bg-country_obj", LABEL_W - 8, LABEL_FONT)[0].endswith("-")  # at a dash


def _ink_rows(sheet: Image.Image, x0: int, x1: int) -> np.ndarray:
    a = np.asarray(sheet.convert("L"))[:, x0:x1]
    return np.nonzero((a < 128).any(axis=1))[0]


def test_long_row_label_wraps_onto_more_lines():
    tile = Image.new("RGB", (112, 112), (200, 200, 255))
    sheet = preview._sheet({"country_car-country_bg-country_obj": [(tile, "box turtle on bobsled")]}, 8, 112)
    rows = _ink_rows(sheet, 0, LABEL_W)
    assert rows.max() - rows.min() > 20      # two lines of label, not one cut at 28 characters
    caption = _ink_rows(sheet, LABEL_W, LABEL_W + 112)
    assert caption.min() >= 112                # the caption sits under the tile ...
    assert (np.asarray(sheet.convert("L"))[112:, LABEL_W + 90:LABEL_W + 112] < 128).any() or \
        caption.max() - caption.min() > 14     # ... on one full line or wrapped onto two


def test_every_class_appears_on_the_sheet(tmp_path):
    """HSI-like: 10 classes x 12 groups planned class by class, a shard per class: rows filled
    first-come (2 per class) showed classes 0-3 only, 4 of the 10."""
    classes, groups = [f"class{c}" for c in range(10)], [f"G{g}" for g in range(12)]
    paths = []
    for c in classes:
        members = {f"{c}-{g}-{i}": {"png": png((20 * int(c[5:]), 0, 0), (16, 16)),
                                    "json": json.dumps({"class_name": c, "group": g}).encode()}
                   for g in groups for i in range(3)}
        paths.append(write_tar(tmp_path / f"train-{c}.tar", members))
    picks = preview._picks_from_shards(paths, 8, 16, {g: 30 for g in groups})
    shown = {caption for row in picks.values() for _, caption in row}
    assert shown == set(classes)
    assert all(len(row) == 8 for row in picks.values())


def test_inpaint_tile_shows_the_result_segment_tile_the_mask():
    result = png((0, 160, 0), (100, 100))
    mask = Image.new("L", (100, 100), 0)
    mask.paste(255, (25, 25, 75, 75))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    inpainted = np.asarray(preview._thumb(result, 100, buf.getvalue(), None, result=True))
    assert tuple(inpainted[50, 50]) == (0, 160, 0)          # the hole's inpainted pixels, untinted
    assert tuple(inpainted[25, 50]) != (0, 160, 0)          # its outline drawn
    segmented = np.asarray(preview._thumb(result, 100, buf.getvalue(), None))
    assert segmented[50, 50, 0] > 50                        # a segment sheet tints the mask red


def test_flip_sheet_shows_original_beside_edit(tmp_path):
    out = tmp_path / "ed"
    rows = []
    members = {}
    for i in range(2):
        members[f"cat_{i}-orig"] = {"png": png((220, 0, 0), (112, 112))}      # originals red
        members[f"cat_{i}-rm0"] = {"png": png((0, 0, 220), (112, 112))}       # edits blue
        rows.append({"key": f"cat_{i}-orig", "source_key": f"cat_{i}", "edit": "original", "class_name": "cat",
                     "correct_before": True, "shard": "shards/train-00000.tar", "classifier": "c"})
        rows.append({"key": f"cat_{i}-rm0", "source_key": f"cat_{i}", "edit": "remove", "class_name": "cat",
                     "phrase": "a very long phrase about a red ball on the sofa", "flip": True,
                     "correct_before": True, "pred_after_name": "dog", "shard": "shards/train-00000.tar"})
    write_tar(out / "shards" / "train-00000.tar", members)
    tally = Tally()
    for r in rows:
        tally.add(r)
    path = flip_sheet(out, tally.flipped, tally.report(), originals=tally.originals)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    x = 150                                                  # the first cell: original, then edit
    assert tuple(sheet[56, x + 56]) == (220, 0, 0)
    assert tuple(sheet[56, x + 112 + 2 + 56]) == (0, 0, 220)
    assert sheet.shape[0] >= 112 + 3 * 13                    # the long phrase wrapped, plus `-> dog`
