"""Class centeredness / size statistics, checked against hand-computed values."""

import csv

import numpy as np
import pytest
from PIL import Image

from bgforge.report.stats import HIST_SIZE, class_stats, histogram_png, write_stats_csv
from bgforge.sources import synthetic
from bgforge.sources.imagenet import ImageNetSource

A, B = "n00000001", "n00000002"
# key -> (class, width, height, boxes). Class A: a centred box (C = 1, S = 2500/10000) and a box
# centred at (75, 25) -> normalised (0.75, 0.25), 0.25 off centre (C = 0.75, S = 400/10000).
# Class B, one 100x50 image with two boxes pooled: centre (10, 5) -> (0.1, 0.1), C = 0.6,
# S = 200/5000; centre (50, 25), C = 1, S = 400/5000.
TREE = {
    f"{A}_1": (A, 100, 100, [(25, 25, 75, 75)]),
    f"{A}_2": (A, 100, 100, [(65, 15, 85, 35)]),
    f"{B}_1": (B, 100, 50, [(0, 0, 20, 10), (40, 15, 60, 35)]),
}
EXPECTED = {A: (2, 2, (1 + 0.75) / 2, (0.25 + 0.04) / 2), B: (1, 2, (0.6 + 1) / 2, (0.04 + 0.08) / 2)}


def write_tree(root, box_format):
    (root / "LOC_synset_mapping.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "LOC_synset_mapping.txt").write_text(f"{A} alpha thing, alpha\n{B} beta thing\n")
    rows = []
    for key, (wnid, w, h, boxes) in TREE.items():
        img = root / "train" / wnid / f"{key}.JPEG"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (90, 120, 60)).save(img)
        if box_format == "xml":
            xml = root / "Annotation" / wnid / f"{key}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            objs = "".join(f"<object><name>{wnid}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                           f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
            xml.write_text(f"<annotation><filename>{key}</filename><size><width>{w}</width>"
                           f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>")
        else:
            rows.append(f"{key}," + " ".join(f"{wnid} {b[0]} {b[1]} {b[2]} {b[3]}" for b in boxes))
    if rows:
        (root / "LOC_train_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("box_format", ["xml", "csv"])
def test_stats_match_hand_computed_values(tmp_path, box_format):
    src = ImageNetSource(write_tree(tmp_path / "inet", box_format))
    rows = class_stats(src, "train")
    assert [r["wnid"] for r in rows] == [A, B]
    assert [r["name"] for r in rows] == ["alpha thing", "beta thing"]
    for r in rows:
        images, objects, c, s = EXPECTED[r["wnid"]]
        assert (r["images"], r["objects"]) == (images, objects)
        assert r["centeredness"] == pytest.approx(c, abs=1e-12)
        assert r["size"] == pytest.approx(s, abs=1e-12)
    # The CSV has no image size: it came from the JPEG header, which must give the same numbers.
    if box_format == "csv":
        assert all(i.width is None for i in src.images("train"))


def test_stats_for_selected_classes_and_csv_output(tmp_path):
    src = ImageNetSource(write_tree(tmp_path / "inet", "xml"))
    rows = class_stats(src, "train", wnids=["beta thing"])
    assert [r["wnid"] for r in rows] == [B]
    path = write_stats_csv(class_stats(src), tmp_path / "out" / "stats.csv")
    with open(path, newline="") as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0]) == ["wnid", "name", "images", "objects", "centeredness", "size"]
    assert back[0]["wnid"] == A and back[0]["centeredness"] == "0.875000" and back[0]["size"] == "0.145000"
    assert back[1]["images"] == "1" and back[1]["objects"] == "2" and float(back[1]["size"]) == pytest.approx(0.06)


def test_csv_boxes_outside_the_real_image_are_dropped_by_stats(tmp_path):
    root = write_tree(tmp_path / "inet", "csv")
    text = (root / "LOC_train_solution.csv").read_text()
    (root / "LOC_train_solution.csv").write_text(text.replace(f"{A}_2,", f"{A}_2,{A} 150 10 200 60 "))
    src = ImageNetSource(root)
    rows = {r["wnid"]: r for r in class_stats(src)}
    assert rows[A]["objects"] == 2 and rows[A]["centeredness"] == pytest.approx(0.875)
    assert (f"{A}_2", "box [150,10,200,60] lies outside the 100x100 image; dropped from the statistics") in src.problems


def test_histogram_png_on_a_synthetic_tree(tmp_path):
    root = synthetic.make_imagenet(tmp_path / "inet", n_train=3, n_val=1, size=(100, 80))
    src = ImageNetSource(root)
    rows = class_stats(src, "train")
    assert len(rows) == 21 and all(r["images"] == 3 for r in rows)
    assert all(0.5 <= r["centeredness"] <= 1 and 0 < r["size"] < 1 for r in rows)
    path = histogram_png(rows, tmp_path / "hist.png")
    with Image.open(path) as im:
        assert im.size == HIST_SIZE == (960, 420)
        arr = np.asarray(im.convert("RGB"))
    bar = np.all(arr == (70, 120, 190), axis=-1)
    assert bar[:, : HIST_SIZE[0] // 2].sum() > 100 and bar[:, HIST_SIZE[0] // 2:].sum() > 100  # both panels
    assert (arr.sum(-1) < 100).sum() > 500  # axes and labels were drawn
