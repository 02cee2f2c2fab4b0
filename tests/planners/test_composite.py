"""`bgforge composite` (one group on its own) and `bgforge stats imagenet`."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.sources.synthetic import make_imagenet, make_object_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    root = make_object_folder(tmp_path_factory.mktemp("objs") / "in", n=8, size=(120, 90))
    bg = root.parent / "bg"
    res = runner.invoke(app, ["inpaint", "-i", str(root), "-m", str(root / "manifest.jsonl"), "-b", "telea",
                              "--resize", "224", "--format", "png", "-o", str(bg), "-q"])
    assert res.exit_code == 0, res.output
    return root, bg


@pytest.mark.parametrize("pos,mode", [("corner", "random"), ("center", "original")])
def test_composite_one_group(objects, tmp_path, pos, mode):
    root, bg = objects
    res = runner.invoke(app, ["composite", "--fg", str(root), "--fg-manifest", str(root / "manifest.jsonl"), "--bg", str(bg),
                              "--size", "56", "--pos", pos, "--bg-mode", mode, "--format", "png",
                              "-o", str(tmp_path / "c"), "-q"])
    assert res.exit_code == 0, res.output
    bgs = {k: f for p in (bg / "shards").glob("*.tar") for k, f in iter_shard(p)}
    rows = map(json.loads, (root / "manifest.jsonl").read_text().splitlines())
    manifest = {r["path"].replace("/", "_").rsplit(".", 1)[0]: r for r in rows}
    n = 0
    for p in (tmp_path / "c" / "shards").glob("*.tar"):
        for key, files in iter_shard(p):
            meta = json.loads(files["json"])
            assert meta["group"] == ("CoR-56" if pos == "corner" else "CeO-56")
            x0, y0, x1, y1 = meta["paste_box"]
            assert (x0, y0) == ((168, 0) if pos == "corner" else (112 - 28, 112 - 28))
            if mode == "random":
                assert meta["bg_label"] != meta["label"]
            else:
                assert meta["bg_key"] == key
            out = decode(files["png"]).astype(int)
            crop = Image.open(root / manifest[key]["path"]).convert("RGB").crop(tuple(manifest[key]["boxes"][0]))
            crop = np.asarray(crop.resize((56, 56), Image.LANCZOS)).astype(int)
            assert np.array_equal(out[y0:y1, x0:x1], crop)
            keep = np.ones((224, 224), bool)
            keep[y0:y1, x0:x1] = False
            assert np.array_equal(out[keep], decode(bgs[meta["bg_key"]]["png"]).astype(int)[keep])
            n += 1
    assert n == 8


def test_stats_imagenet_cli(tmp_path):
    root = make_imagenet(tmp_path / "inet", classes={"n01440764": "tench", "n01443537": "goldfish"}, n_train=4, n_val=2)
    res = runner.invoke(app, ["stats", "imagenet", "--imagenet-root", str(root), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "s" / "class_stats.csv")))
    assert {r["wnid"] for r in rows} == {"n01440764", "n01443537"}
    assert all(0.5 <= float(r["centeredness"]) <= 1 and 0 < float(r["size"]) <= 1 for r in rows)
    assert Image.open(tmp_path / "s" / "histograms.png").size[0] > 100
