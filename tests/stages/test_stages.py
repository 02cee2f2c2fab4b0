"""`bgforge segment` / `bgforge inpaint` end to end on a synthetic image folder."""

import json

import numpy as np
import pytest
from PIL import Image
from standins import stand_in
from typer.testing import CliRunner

from bgforge.backends import registry
from bgforge.backends.sam import SamSegmenter
from bgforge.cli import app
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.sources.synthetic import make_object_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_object_folder(tmp_path_factory.mktemp("objs") / "in", n=10)


def members(out):
    return {k: f for p in sorted((out / "shards").glob("*.tar")) for k, f in iter_shard(p)}


def invoke(*args):
    res = runner.invoke(app, [str(a) for a in args])
    return res


def test_segment_box_backend_masks_are_the_boxes(folder, tmp_path):
    res = invoke("segment", "-i", folder, "-m", folder / "manifest.jsonl", "-b", "box", "-o", tmp_path / "seg",
                 "--dilation", "15", "-q")
    assert res.exit_code == 0, res.output
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    got = members(tmp_path / "seg")
    assert len(got) == len(manifest)
    for row in manifest:
        files = got[row["path"].replace("/", "_").rsplit(".", 1)[0]]
        mask = decode(files["mask.png"], "L") > 127
        x0, y0, x1, y1 = row["boxes"][0]
        expect = np.zeros_like(mask)
        expect[y0:y1, x0:x1] = True
        assert np.array_equal(mask, expect)
        dil = decode(files["dilated.png"], "L") > 127
        assert dil.sum() == (min(x1 + 7, mask.shape[1]) - max(x0 - 7, 0)) * (min(y1 + 7, mask.shape[0]) - max(y0 - 7, 0))
        meta = json.loads(files["json"])
        assert meta["backend"] == "box" and meta["num_objects"] == 1
        assert meta["area_frac"] == pytest.approx(expect.mean(), abs=1e-6)
        assert files["jpg"] == (folder / row["path"]).read_bytes()  # the source image travels unchanged


def test_segment_with_sam_stage_runs_the_real_predictor_code(folder, tmp_path, tiny_sam, monkeypatch):
    # A registry entry that builds the real SamSegmenter around the tiny random SAM.
    monkeypatch.setitem(registry.SEGMENTERS, "sam-tiny",
                        stand_in("segmenter", lambda o: SamSegmenter(tiny_sam, device="cpu")))
    res = invoke("segment", "-i", folder, "-m", folder / "manifest.jsonl", "-b", "sam-tiny", "-o", tmp_path / "seg",
                 "--batch-size", "4", "-q")
    assert res.exit_code == 0, res.output
    got = members(tmp_path / "seg")
    for files in got.values():
        meta = json.loads(files["json"])
        mask = decode(files["mask.png"], "L")
        assert mask.shape == (meta["height"], meta["width"])
        assert meta["num_objects"] == 1 and len(meta["scores"]) == 1


def test_segment_then_inpaint_removes_objects(folder, tmp_path):
    assert invoke("segment", "-i", folder, "-m", folder / "manifest.jsonl", "-b", "provided", "-o", tmp_path / "seg",
                  "-q").exit_code == 0
    res = invoke("inpaint", "-i", tmp_path / "seg", "-b", "telea", "-o", tmp_path / "bg", "--format", "png", "-q")
    assert res.exit_code == 0, res.output
    for key, files in members(tmp_path / "bg").items():
        src = members(tmp_path / "seg")[key]
        original, filled = decode(src["jpg"]), decode(files["png"])
        hole = decode(files["mask.png"], "L") > 127
        obj = decode(src["mask.png"], "L") > 127
        assert hole.sum() > obj.sum()                               # dilated by 15
        assert np.array_equal(filled[~hole], original[~hole])       # outside the hole untouched
        # the bird colour is gone: the fill is far from the object's pixels
        assert np.abs(filled[obj].astype(int) - original[obj].astype(int)).mean() > 20


def test_inpaint_lama_through_real_loader_and_resize(folder, tmp_path, lama_stub):
    res = invoke("inpaint", "-i", folder, "-m", folder / "manifest.jsonl", "-b", "lama", "--segmenter", "box",
                 "--lama-checkpoint", lama_stub, "--resize", "64", "-o", tmp_path / "bg", "--devices", "cpu", "-q")
    assert res.exit_code == 0, res.output
    got = members(tmp_path / "bg")
    assert len(got) == 10
    for files in got.values():
        assert decode(files["jpg"]).shape == (64, 64, 3)
        assert json.loads(files["json"])["inpainter"] == "lama"


def test_missing_checkpoint_fails_before_any_work(folder, tmp_path):
    res = invoke("inpaint", "-i", folder, "-b", "lama", "-o", tmp_path / "bg")
    assert res.exit_code == 2
    assert "bgforge models fetch lama" in res.output and "big-lama.pt" in res.output
    assert not (tmp_path / "bg" / "shards").exists()


def test_wrong_size_mask_is_logged_and_the_rest_kept(folder, tmp_path):
    import shutil

    bad = tmp_path / "in"
    shutil.copytree(folder, bad)
    Image.new("L", (10, 10)).save(bad / "masks" / "img_0003.png")
    (bad / "images" / "img_0005.jpg").write_bytes(b"broken")
    res = invoke("segment", "-i", bad, "-m", bad / "manifest.jsonl", "-b", "provided", "-o", tmp_path / "seg", "-q")
    assert res.exit_code == 3
    errors = {e["key"]: e for e in map(json.loads, (tmp_path / "seg" / "errors.jsonl").read_text().splitlines())}
    assert set(errors) == {"images_img_0003", "images_img_0005"}
    assert "10x10" in errors["images_img_0003"]["message"] and errors["images_img_0003"]["stage"] == "read_mask"
    assert len(members(tmp_path / "seg")) == 8
