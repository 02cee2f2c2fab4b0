"""Folder-manifest boxes are checked against the image size at planning (read from the header):
boxes wholly outside the image are skipped and logged, boxes past the edge are kept as written."""

import json

import numpy as np
from PIL import Image

from bgforge.sources.folder import load_folder


def test_boxes_outside_the_image_are_skipped_and_logged(tmp_path):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "a.png")  # 32 wide, 24 high
    row = {"path": "a.png", "boxes": [[40, 2, 50, 10], [2, 30, 10, 40], [-9, -9, -1, -1], [20, 10, 40, 30], [1, 1, 8, 8]]}
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n")
    skipped = []
    samples = load_folder(tmp_path, tmp_path / "m.jsonl", skipped=skipped)
    assert samples[0].meta["boxes"] == [[20.0, 10.0, 40.0, 30.0], [1.0, 1.0, 8.0, 8.0]]
    assert [s["error_type"] for s in skipped] == ["BadBox"] * 3
    assert all("outside the 32x24 image; dropped" in s["message"] for s in skipped)


def test_unreadable_image_keeps_its_boxes_for_the_stage_to_report(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "missing.png", "boxes": [[1, 1, 8, 8]]}) + "\n")
    skipped = []
    samples = load_folder(tmp_path, tmp_path / "m.jsonl", skipped=skipped)
    assert samples[0].meta["boxes"] == [[1.0, 1.0, 8.0, 8.0]] and skipped == []
