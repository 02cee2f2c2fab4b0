"""Every recipe and the stage commands run on embedded data: `--demo`, or `bgforge demo-inputs`."""

import csv
import json

import pytest
from typer.testing import CliRunner

from bgforge.cli import app

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["bap-waterbirds", "bap-coco-vehicles", "bap-coco-person"])
def test_bap_recipes_have_a_demo(tmp_path, recipe):
    res = runner.invoke(app, ["build", recipe, "--demo", "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["samples"] > 0
    assert manifest["recipe"]["params"]["places_categories"] == ["/b/bamboo_forest", "/f/forest/broadleaf",
                                                                  "/o/ocean", "/l/lake/natural"]


@pytest.mark.slow
def test_demo_inputs_feed_the_stage_commands_and_autobackswap(tmp_path):
    assert runner.invoke(app, ["demo-inputs", str(tmp_path / "d")]).exit_code == 0
    photos, manifest = tmp_path / "d" / "photos", tmp_path / "d" / "photos" / "manifest.jsonl"
    # the masks lie beside photos/, not in it: a scan of photos/ finds the 24 photos only
    assert sorted(p.suffix for p in photos.rglob("*") if p.is_file()) == [".jpg"] * 24 + [".jsonl"]
    res = runner.invoke(app, ["segment", "-i", str(photos), "-m", str(manifest), "-b", "box", "-o", str(tmp_path / "m"),
                              "-q"])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(open(tmp_path / "m" / "metadata.csv")))
    assert {r["split"] for r in table} == {"train", "test"}   # the manifest's split, one column
    groups = json.loads((tmp_path / "m" / "groups.json").read_text())
    assert set(groups) == {"train", "test"} and set(groups["train"]["groups"]) == {"bird", "boat"}
    res = runner.invoke(app, ["build", "autobackswap", "--set", f"input={photos}", "--set", f"manifest={manifest}",
                              "--set", "segmenter=box", "--out", str(tmp_path / "abs"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["edit", "-i", str(photos), "-m", str(manifest), "-p", str(tmp_path / "d" / "phrases.jsonl"),
                              "--grounding", "provided", "--out", str(tmp_path / "ed"), "-q"])
    assert res.exit_code == 0, res.output
    assert "split" in next(csv.reader(open(tmp_path / "ed" / "metadata.csv")))


def test_segment_warns_when_every_mask_is_empty(tmp_path):
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    assert runner.invoke(app, ["demo-inputs", str(tmp_path / "d"), "--images", "4"]).exit_code == 0
    photos = tmp_path / "d" / "photos"
    for mask in (tmp_path / "d" / "photo_masks").glob("*.png"):
        Image.fromarray(np.zeros((120, 160), np.uint8)).save(mask)   # a detector that found nothing
    proc = subprocess.run([sys.executable, "-m", "bgforge", "segment", "-i", str(photos), "-m",
                           str(photos / "manifest.jsonl"), "-b", "provided", "-o", str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "warning: every one of the 4 masks is empty" in proc.stderr
