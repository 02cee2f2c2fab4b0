"""Hard-Spurious-ImageNet on a synthetic ILSVRC tree: the paper's counts, pixels and background rules."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
from helpers import build
from PIL import Image

from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.sources.synthetic import make_imagenet

CLASSES = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
           "n01484850": "great white shark, white shark"}


@pytest.fixture(scope="module")
def inet(tmp_path_factory):
    # 80 (largest train quota) + 50 (val held out) train images per class with boxes; 5 val images
    return make_imagenet(tmp_path_factory.mktemp("inet"), classes=CLASSES, n_train=132, n_val=5,
                         size=(96, 72), seed=3, bad_boxes=True)


@pytest.fixture(scope="module")
def hsi(inet, tmp_path_factory):
    out = tmp_path_factory.mktemp("hsi") / "o"
    # three classes: the reference's self-pairing (about 1 in 100 of ImageNet's) would be 1 in 3 here
    r = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), ["self_pairing=false"])
    build(r, BuildContext(roots={"imagenet": inet}), out, progress=False, workers=2)
    return out


def rows(out):
    return list(csv.DictReader(open(out / "metadata.csv")))


@pytest.mark.slow
def test_paper_counts_per_class_and_group(hsi):
    table = Counter((r["wnid"], r["split"], r["group"]) for r in rows(hsi))
    params = recipemod.load("hard-spurious-imagenet").params
    for wnid in CLASSES:
        per_split = Counter()
        for (w, split, group), n in table.items():
            if w != wnid:
                continue
            per_split[split] += n
            if split == "train":
                assert n == (80 if group in params["difficulty"]["easy"] else 10), group
            elif split == "val":
                assert n == 20
        assert per_split == {"train": 400, "val": 240, "test": 5 * 12}, wnid
    groups = {g for (_, _, g) in table}
    assert len(groups) == 12


@pytest.mark.slow
def test_no_image_in_two_splits_and_draws_without_replacement_within_a_group(hsi):
    split_of = {}
    seen = set()
    for r in rows(hsi):
        assert split_of.setdefault(r["fg_key"], r["split"]) == r["split"]
        assert (r["fg_key"], r["group"]) not in seen
        seen.add((r["fg_key"], r["group"]))


@pytest.mark.slow
def test_background_rules(hsi):
    wnid_of = {}
    bg_meta = {}
    for p in sorted((hsi / "backgrounds" / "shards").glob("*.tar")):
        for key, files in iter_shard(p):
            bg_meta[key] = json.loads(files["json"])
    for r in rows(hsi):
        wnid_of[r["fg_key"]] = r["wnid"]
    for r in rows(hsi):
        if r["group"][2] == "O":      # original: the image's own background, never another image's
            assert r["bg_key"] == r["fg_key"] and r["bg_class"] == r["wnid"]
        else:                          # random: never the same class, and from the same split's pool
            assert r["bg_class"] != r["wnid"]
            assert bg_meta[r["bg_key"]]["wnid"] == r["bg_class"]
            assert r["bg_key"].startswith("ILSVRC2012_val") == (r["split"] == "test")


@pytest.mark.slow
def test_cor56_pixels_are_the_resized_box_crop_on_the_chosen_background(hsi, inet):
    bgs = {}
    for p in sorted((hsi / "backgrounds" / "shards").glob("*.tar")):
        for key, files in iter_shard(p):
            bgs[key] = decode(files["png"])
    checked = 0
    test_members = (files for shard in sorted((hsi / "shards").glob("test-*.tar")) for _, files in iter_shard(shard))
    for files in test_members:
        meta = json.loads(files["json"])
        if meta["group"] != "CoR-56":
            continue
        out = decode(files["jpg"]).astype(int)
        x0, y0, x1, y1 = meta["paste_box"]
        assert (x0, y0, x1, y1) == (224 - 56, 0, 224, 56)   # top-right corner
        src = Image.open(next(inet.rglob(meta["fg_key"] + ".JPEG"))).convert("RGB")
        crop = np.asarray(src.crop(tuple(int(round(v)) for v in meta["fg_box"])).resize((56, 56), Image.BICUBIC)).astype(int)
        assert np.abs(out[y0:y1, x0:x1] - crop)[3:-3, 3:-3].mean() < 4       # JPEG q95 noise only
        outside = np.ones(out.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.abs(out[outside] - bgs[meta["bg_key"]].astype(int)[outside]).mean() < 3
        checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_bad_boxes_are_logged_not_silently_dropped(hsi):
    errors = [json.loads(line) for line in (hsi / "errors.jsonl").read_text().splitlines()]
    messages = " | ".join(e["message"] for e in errors)
    assert "zero area" in messages and "outside" in messages
    assert all(e["stage"] == "source" for e in errors)


def test_too_few_images_is_said_up_front(inet, tmp_path):
    r = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), ["val_images_per_class=100"])
    expected = r"too few images for the quotas: n01440764 train: \d+ images with boxes, needs 80.*allow_reuse=true"
    with pytest.raises(BgforgeError, match=expected):
        build(r, BuildContext(roots={"imagenet": inet}), tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_mask_variant_and_ar_variant(inet, tmp_path):
    sets = ["quota.train.easy=2", "quota.train.medium=1", "quota.train.hard=1", "quota.val=1", "val_images_per_class=2"]
    sets += ["fg_mode=mask", "classes=[n01440764, n01443537]"]
    r = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), sets)
    res = build(r, BuildContext(roots={"imagenet": inet}), tmp_path / "m", progress=False)
    assert res.finalized and res.errors == 0
    r = recipemod.load("hard-spurious-imagenet-ar")
    build(r, BuildContext(roots={"imagenet": inet}), tmp_path / "ar", progress=False)
    corners = Counter()
    for r_ in rows(tmp_path / "ar"):
        assert r_["split"] == "test"
    for p in sorted((tmp_path / "ar" / "shards").glob("*.tar")):
        for _, files in iter_shard(p):
            meta = json.loads(files["json"])
            x0, y0, x1, y1 = meta["paste_box"]
            # the reference's int() twice: the short side s (or s - 1), unless the long side hit the canvas
            assert min(x1 - x0, y1 - y0) in (meta["size"] - 1, meta["size"]) or max(x1 - x0, y1 - y0) in (223, 224)
            if meta["position"] == "corner":
                corners[meta["corner"]] += 1
    assert len(corners) >= 3  # random corners
