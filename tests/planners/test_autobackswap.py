"""AutoBackSwap: swap counts per augmentation ratio, other-class backgrounds, pixels, determinism."""

import json
import math
from collections import Counter

import numpy as np
import pytest
from helpers import build

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.backends.patchnet import PatchNetSegmenter
from bgforge.errors import BgforgeError
from bgforge.io.images import decode, open_image, open_mask
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.recipe import Recipe
from bgforge.sources.synthetic_blobs import make_blob_folder

N = 12  # images: classes a, b, c in turn


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return make_blob_folder(tmp_path_factory.mktemp("abs") / "in", n=N, size=(48, 40), grid=None, seed=4)


def params(blobs, **kw):
    p = dict(recipemod.load("autobackswap").params)
    p.update(input=str(blobs), manifest=str(blobs / "manifest.jsonl"), segmenter="provided", inpainter="telea",
             image_format="png")
    p.update(kw)
    return p


def plan(blobs, **kw):
    r = Recipe(name="autobackswap", planner="autobackswap", params=params(blobs, **kw))
    return planners.get("autobackswap").plan(r, BuildContext())


def members(folder):
    return {k: f for p in sorted((folder / "shards").glob("*.tar")) for k, f in iter_shard(p)}


@pytest.mark.parametrize("ratio", [0, 0.25, 0.5, 1, 1.5, 3])
def test_swap_counts_follow_the_ratio(blobs, ratio):
    planned = plan(blobs, ratio=ratio)
    swaps = [s for s in planned.samples if s.meta["kind"] == "swap"]
    originals = [s for s in planned.samples if s.meta["kind"] == "original"]
    assert len(originals) == N
    assert len(swaps) == math.floor(ratio) * N + round((ratio - math.floor(ratio)) * N)
    per_image = Counter(s.meta["source_key"] for s in swaps)
    assert set(per_image.values()) <= {math.floor(ratio), math.floor(ratio) + 1}
    for key, n in per_image.items():
        assert [s.meta["copy"] for s in swaps if s.meta["source_key"] == key] == list(range(n))
    # phase 1 covers exactly the images a swap uses, as foreground or background
    needed = {s.meta["source_key"] for s in swaps} | {s.meta["bg_key"] for s in swaps}
    assert {s.key for phase in planned.prerequisites for s in phase.samples} == needed


def test_half_ratio_picks_depend_on_the_seed_only(blobs):
    def pick(seed):
        return sorted(s.meta["source_key"] for s in plan(blobs, ratio=0.5, seed=seed).samples if s.meta["kind"] == "swap")

    assert len(pick(0)) == N // 2 and pick(0) == pick(0)
    assert any(pick(0) != pick(s) for s in (1, 2, 3))
    assert len(plan(blobs, ratio=0.5, include_originals=False).samples) == N // 2


def test_background_always_from_another_class(blobs):
    planned = plan(blobs, ratio=3)
    label_of = {s.meta["source_key"]: s.meta["label"] for s in planned.samples if s.meta["kind"] == "original"}
    swaps = [s for s in planned.samples if s.meta["kind"] == "swap"]
    assert len(swaps) == 3 * N
    for s in swaps:
        assert s.meta["bg_label"] != s.meta["label"] and label_of[s.meta["bg_key"]] == s.meta["bg_label"]
        assert s.meta["group_name"] == f"{s.meta['label']}_on_{s.meta['bg_label']}"
    assert len({s.meta["bg_label"] for s in swaps if s.meta["label"] == "a"}) == 2  # both other classes drawn


def test_single_class_split_is_refused(tmp_path):
    root = make_blob_folder(tmp_path / "one", n=3, size=(32, 32), grid=None, classes=("a",))
    with pytest.raises(BgforgeError, match="at least two classes"):
        plan(root, ratio=1)


@pytest.fixture(scope="module")
def built(blobs, tmp_path_factory):
    out = tmp_path_factory.mktemp("abs-out") / "o"
    build(Recipe(name="autobackswap", planner="autobackswap", params=params(blobs, ratio=1.5)), BuildContext(), out,
          progress=False)
    return out


def test_swap_pixels_are_foreground_over_the_inpainted_background(blobs, built):
    manifest = {r["path"].replace("/", "_").rsplit(".", 1)[0]: r
                for r in map(json.loads, (blobs / "manifest.jsonl").read_text().splitlines())}
    got, bgs = members(built), members(built / "backgrounds")
    swaps = {k: f for k, f in got.items() if json.loads(f["json"])["kind"] == "swap"}
    assert len(swaps) == N + N // 2 and len(got) == N + len(swaps)
    for key, files in swaps.items():
        meta = json.loads(files["json"])
        src = manifest[meta["source_key"]]
        image = np.asarray(open_image(blobs / src["path"]))
        mask = open_mask(blobs / src["mask"]) > 127
        obj = decode(bgs[meta["source_key"]]["object.png"], "L") > 127
        assert np.array_equal(obj, mask)  # segmenter `provided`: phase 1 keeps the dataset's mask
        background = decode(bgs[meta["bg_key"]]["png"])
        assert np.array_equal(decode(files["png"]), np.where(mask[..., None], image, background)), key
        assert not np.array_equal(background, np.asarray(open_image(blobs / manifest[meta["bg_key"]]["path"])))
        assert int(files["cls"]) == meta["class_index"] and meta["bg_label"] != meta["label"]
    originals = {k: f for k, f in got.items() if json.loads(f["json"])["kind"] == "original"}
    for key, files in originals.items():
        assert files["png"] == (blobs / manifest[key]["path"]).read_bytes()  # originals travel unchanged
    groups = json.loads((built / "groups.json").read_text())["all"]["groups"]
    assert groups["a_on_a"] == 4 and sum(v for g, v in groups.items() if g.split("_on_")[0] != g.split("_on_")[1]) == 18


def test_same_bytes_whatever_the_worker_count(blobs, built, tmp_path):
    out = tmp_path / "w2"
    build(Recipe(name="autobackswap", planner="autobackswap", params=params(blobs, ratio=1.5)), BuildContext(), out,
          progress=False, workers=2)
    for sub in ("", "backgrounds"):
        a = {p.name: p.read_bytes() for p in sorted((built / sub / "shards").glob("*.tar"))}
        b = {p.name: p.read_bytes() for p in sorted((out / sub / "shards").glob("*.tar"))}
        assert a == b and a


@pytest.fixture(scope="module")
def small_model(trained_patchnet):
    """The session's trained patch detector (conftest.trained_patchnet): it finds the blobs of these images too."""
    return trained_patchnet[2]


@pytest.mark.slow
def test_default_segmenter_is_the_patch_detector(blobs, small_model, tmp_path):
    assert recipemod.load("autobackswap").params["segmenter"] == "patchnet"
    out = tmp_path / "pn"
    p = params(blobs, segmenter="patchnet", patchnet_model=str(small_model), ratio=1)
    build(Recipe(name="autobackswap", planner="autobackswap", params=p), BuildContext(), out, progress=False)
    seg = PatchNetSegmenter.from_options(small_model, device="cpu")
    manifest = [json.loads(line) for line in (blobs / "manifest.jsonl").read_text().splitlines()]
    bgs = members(out / "backgrounds")
    found = 0
    for row in manifest:
        key = row["path"].replace("/", "_").rsplit(".", 1)[0]
        image = np.asarray(open_image(blobs / row["path"]))
        expect = seg.segment([image], [None])[0].union()
        if "object.png" in bgs[key]:  # the manifest's mask is ignored: phase 1 ran the detector
            found += 1
            assert np.array_equal(decode(bgs[key]["object.png"], "L") > 127, expect)
        else:
            assert not expect.any()
    assert found >= N - 2
    swaps = [json.loads(f["json"]) for f in members(out).values() if json.loads(f["json"])["kind"] == "swap"]
    assert len(swaps) == found and all(m["segmenter"] == "patchnet" for m in swaps)


def test_patchnet_without_model_fails_before_any_work(blobs, tmp_path):
    p = params(blobs, segmenter="patchnet")
    with pytest.raises(BgforgeError, match="patchnet needs a model"):
        build(Recipe(name="autobackswap", planner="autobackswap", params=p), BuildContext(), tmp_path / "x",
              progress=False)
    assert not (tmp_path / "x").exists()


def test_command_and_recipe_build_the_same_dataset(blobs, tmp_path):
    from typer.testing import CliRunner

    from bgforge.cli import app

    res = CliRunner().invoke(app, ["autobackswap", "--input", str(blobs), "--manifest", str(blobs / "manifest.jsonl"),
                                   "--out", str(tmp_path / "cmd"), "--segmenter", "provided", "--inpainter", "telea",
                                   "--ratio", "0.5", "--format", "png", "-q"])
    assert res.exit_code == 0, res.output
    r = recipemod.apply_overrides(recipemod.load("autobackswap"), [
        f"input={blobs}", f"manifest={blobs / 'manifest.jsonl'}", "segmenter=provided", "inpainter=telea",
        "ratio=0.5", "image_format=png"])
    build(r, BuildContext(), tmp_path / "recipe", progress=False)
    for sub in ("", "backgrounds"):
        a = {p.name: p.read_bytes() for p in sorted((tmp_path / "cmd" / sub / "shards").glob("*.tar"))}
        b = {p.name: p.read_bytes() for p in sorted((tmp_path / "recipe" / sub / "shards").glob("*.tar"))}
        assert a == b and a
    assert json.loads((tmp_path / "cmd" / "groups.json").read_text())["all"]["total"] == N + N // 2
