"""BAP composites (PAPERS §3) on synthetic CUB / Places365 / COCO / texture trees: counts, the
leakage rule, the compositing rule pixel by pixel, shard grouping, the COCO filters and the
80/20 background split."""

import csv
import io
import json
from collections import Counter, defaultdict

import numpy as np
import pytest
from conftest import shard_bytes
from helpers import build
from PIL import Image, ImageFilter

from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError, SampleError
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.planners.bap_backgrounds import background_pools, draw_backgrounds
from bgforge.rng import rng_for
from bgforge.sources import synthetic
from bgforge.sources.coco import CocoSource, annotation_mask, decode_rle
from bgforge.sources.synthetic_coco import make_coco, make_textures
from bgforge.stages.bap import bap_composite, harden_and_blur, tight_crop

SPECIES = ["001.Black_footed_Albatross", "059.California_Gull", "009.Brewer_Blackbird", "073.Blue_Jay"]
VEHICLES = ["car", "bus", "airplane", "boat", "train", "bicycle"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("bap")
    cats = recipemod.load("bap-waterbirds").params["places_categories"]
    places = base / "places"
    synthetic.make_places(places, categories=list(cats), per_category=4, size=(80, 60), seed=5)
    # the Waterbirds categories, with enough images to plan waterbirds-95 (derived exclusion)
    synthetic.make_places(places, categories=synthetic.LAND + synthetic.WATER, per_category=12, size=(80, 60), seed=5)
    return {"cub": synthetic.make_cub(base / "CUB_200_2011", species=SPECIES, per_species=5, size=(120, 90), seed=5),
            "places": places, "coco": make_coco(base / "coco", n_images=30, seed=5),
            "textures": make_textures(base / "dtd", per_kind=5, size=(64, 64), seed=5)}


def bap(roots, out, name="bap-waterbirds", sets=(), **kw):
    r = recipemod.apply_overrides(recipemod.load(name), list(sets))
    return build(r, BuildContext(roots=dict(roots)), out, progress=False, **kw)


def rows(out):
    with open(out / "metadata.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def shard_members(out):
    """{shard name: [(key, json meta, decoded image)]} in tar order."""
    found = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        found[tar.stem] = [(key, json.loads(files["json"]), Image.open(io.BytesIO(files.get("jpg") or files["png"])))
                           for key, files in iter_shard(tar)]
    return found


@pytest.fixture(scope="module")
def waterbirds_split(roots, tmp_path_factory):
    """A real waterbirds-95 build on the same roots: its metadata.csv and CUB ids per split."""
    out = tmp_path_factory.mktemp("wb") / "wb95"
    build(recipemod.load("waterbirds-95"), BuildContext(roots={"cub": roots["cub"], "places": roots["places"]}), out,
          progress=False)
    by_split = defaultdict(set)
    for r in rows(out):
        by_split[int(r["split"])].add(int(r["img_id"]))
    return out / "metadata.csv", by_split


# ---------------------------------------------------------------- bap-waterbirds

def test_real_k10_m5_counts_distinct_backgrounds_and_geometry(roots, tmp_path):
    out = tmp_path / "o"
    res = bap(roots, out, sets=["max_foregrounds=3", "image_format=png"])
    params = recipemod.load("bap-waterbirds").params
    assert (params["anchors"], params["alignments"]) == (10, 5)
    assert res.errors == 0 and res.total_samples == 3 * 15
    by_fg = defaultdict(list)
    for shard in shard_members(out).values():
        for _key, meta, image in shard:
            by_fg[meta["fg_key"]].append((meta, image))
    assert len(by_fg) == 3
    for fg, items in by_fg.items():
        assert [(m["role"], m["index"]) for m, _ in items] == \
            [("anchor", i) for i in range(10)] + [("align", j) for j in range(5)]
        assert len({m["bg_filename"] for m, _ in items}) == 15          # distinct within the foreground
        for m, image in items:
            assert image.size == (224, 224)
            assert m["bg_category"] in params["places_categories"]
            assert m["fg_id"] == int(fg.split("_")[1]) and m["class_name"] in SPECIES
            x0, y0, x1, y1 = m["paste_box"]
            longer = max(x1 - x0, y1 - y0)
            assert longer == m["longer_side"] == round(m["scale"] * 224)
            assert 0.6 * 224 - 0.5 <= longer <= 0.8 * 224 + 0.5
            assert abs((x0 + x1) - 224) <= 1 and abs((y0 + y1) - 224) <= 1   # centred
    # the foreground phase holds one tight crop per foreground
    fg_rows = rows(out / "foregrounds")
    assert sorted(r["key"] for r in fg_rows) == sorted(by_fg)


def test_derived_exclusion_matches_a_real_waterbirds_build(roots, tmp_path, waterbirds_split):
    _, by_split = waterbirds_split
    assert by_split[1] and by_split[2]
    bap(roots, tmp_path / "o", sets=["anchors=2", "alignments=1"])
    fg_ids = {int(r["fg_id"]) for r in rows(tmp_path / "o")}
    assert fg_ids == by_split[0]                      # every train bird, no val/test bird
    assert not fg_ids & (by_split[1] | by_split[2])


def test_exclusion_from_metadata_csv(roots, tmp_path, waterbirds_split):
    metadata, by_split = waterbirds_split
    bap(roots, tmp_path / "o", sets=["anchors=2", "alignments=1", f"exclude_metadata={metadata}",
                                     "exclude_from_recipe=null"])
    assert {int(r["fg_id"]) for r in rows(tmp_path / "o")} == by_split[0]
    # a hand-written file: only ids 1 and 2 are in val/test, so every other bird is kept
    hand = tmp_path / "hand.csv"
    hand.write_text("img_id,split\n1,1\n2,2\n3,0\n")
    bap(roots, tmp_path / "o2", sets=["anchors=1", "alignments=0", f"exclude_metadata={hand}"])
    assert {int(r["fg_id"]) for r in rows(tmp_path / "o2")} == set(range(3, 21))


def test_bad_exclusion_metadata_is_one_line(roots, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("img_id,y\n1,0\n")
    with pytest.raises(BgforgeError, match="lacks column"):
        bap(roots, tmp_path / "o", sets=[f"exclude_metadata={bad}"])
    with pytest.raises(BgforgeError, match="not found"):
        bap(roots, tmp_path / "o", sets=[f"exclude_metadata={tmp_path / 'missing.csv'}"])


def assert_foregrounds_whole(out, n_fg):
    shard_of = defaultdict(set)
    members = shard_members(out)
    for shard, items in members.items():
        assert len(items) % 3 == 0                       # whole foregrounds of K + M = 3
        for _, meta, _ in items:
            shard_of[meta["fg_key"]].add(shard)
    assert len(shard_of) == n_fg and all(len(s) == 1 for s in shard_of.values())
    return members


def test_shards_keep_a_foreground_together(roots, tmp_path):
    out = tmp_path / "o"
    bap(roots, out, sets=["anchors=2", "alignments=1", "max_foregrounds=5"], shard_size=6, min_shards=1)
    assert [len(v) for v in assert_foregrounds_whole(out, 5).values()] == [6, 6, 3]


def test_shard_size_is_rounded_to_whole_foregrounds(roots, tmp_path):
    # needs execution.plan.make_plan to honour Planned.shard_multiple (7 -> 6 here)
    out = tmp_path / "o"
    bap(roots, out, sets=["anchors=2", "alignments=1", "max_foregrounds=5"], shard_size=7, min_shards=1)
    assert [len(v) for v in assert_foregrounds_whole(out, 5).values()] == [6, 6, 3]


def test_same_bytes_whatever_the_worker_count(roots, tmp_path):
    sets = ["anchors=2", "alignments=2", "max_foregrounds=4"]
    bap(roots, tmp_path / "w1", sets=sets, workers=1)
    bap(roots, tmp_path / "w2", sets=sets, workers=2)
    assert shard_bytes(tmp_path / "w1") == shard_bytes(tmp_path / "w2")


def test_background_draws_are_distinct_and_too_few_is_an_error(roots, tmp_path):
    pool = [("a", [("a/1", "p1")]), ("b", [("b/1", "p2"), ("b/2", "p3")]), ("c", [(f"c/{i}", f"q{i}") for i in range(5)])]
    for seed in range(20):                   # the whole pool: every image exactly once
        picks = draw_backgrounds(rng_for(seed, "t"), pool, 8)
        assert sorted(name for _, name, _ in picks) == sorted(f for _, files in pool for f, _ in files)
    with pytest.raises(BgforgeError, match="distinct"):
        bap(roots, tmp_path / "o", sets=["anchors=300", "max_foregrounds=1"])


# ---------------------------------------------------------------- the compositing rule, pixel by pixel

def test_composite_rule_on_a_hand_made_example():
    # a 40 x 20 red object whose mask is 255 in the middle, 120 on the left band, 90 on the right band
    fg = np.zeros((20, 40, 3), np.uint8)
    fg[..., 0] = 200
    mask = np.full((20, 40), 255, np.uint8)
    mask[:, :8] = 120       # > 100: kept
    mask[:, 32:] = 90       # <= 100: hardened to 0
    bg = Image.new("RGB", (300, 200), (0, 0, 210))
    out, box = bap_composite(fg, mask, bg, longer=160)

    # independent expectation: Lanczos-resize the mask to 160 x 80, harden, place centred on the
    # canvas, blur the whole canvas with GaussianBlur(1), alpha-blend red over blue
    small = np.asarray(Image.fromarray(mask).resize((160, 80), Image.LANCZOS))
    hard = np.zeros((224, 224), np.uint8)
    hard[72:152, 32:192] = np.where(small > 100, 255, 0)
    alpha = Image.fromarray(hard).filter(ImageFilter.GaussianBlur(1))
    expected = Image.composite(Image.new("RGB", (224, 224), (200, 0, 0)), Image.new("RGB", (224, 224), (0, 0, 210)),
                               alpha)
    assert box == [32, 72, 192, 152]                  # longer side 160, centred
    assert out.shape == (224, 224, 3)
    assert np.array_equal(out, np.asarray(expected))
    assert tuple(out[112, 40]) == (200, 0, 0)         # the 120 band is object
    assert tuple(out[112, 185]) == (0, 0, 210)        # the 90 band is background
    a = np.asarray(alpha)
    assert 0 < a[112, 31] < 255 and a[112, 28] == 0   # soft edge 1-3 px outside the object, nothing beyond


def test_tight_crop_uses_the_hardening_threshold():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 200
    mask[8, 0] = 100          # faint: not part of the object
    crop, mcrop, box = tight_crop(image, mask, 100)
    assert box == [3, 2, 9, 5] and crop.shape == (3, 6, 3) and (mcrop == 200).all()
    with pytest.raises(SampleError):
        tight_crop(image, np.full((10, 12), 100, np.uint8), 100)
    hard = harden_and_blur(Image.fromarray(np.uint8([[100, 101, 255, 0]])), 100, radius=0, pad=1)
    assert np.asarray(hard).tolist() == [[0] * 6, [0, 0, 255, 255, 0, 0], [0] * 6]


# ---------------------------------------------------------------- COCO

def coco_expected(roots, categories, min_box):
    data = json.loads((roots["coco"] / "annotations" / "instances_train2017.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    return Counter(names[a["category_id"]] for a in data["annotations"]
                   if names[a["category_id"]] in categories and not a["iscrowd"]
                   and a["bbox"][2] >= min_box and a["bbox"][3] >= min_box)


def test_coco_vehicles_filters_withheld_and_background_split(roots, tmp_path):
    out = tmp_path / "veh"
    res = bap(roots, out, "bap-coco-vehicles", sets=["anchors=2", "alignments=1", f"texture_dir={roots['textures']}"])
    assert res.errors == 0
    fg_rows = rows(out / "foregrounds")
    kept = Counter(r["class_name"] for r in fg_rows)
    assert kept == coco_expected(roots, VEHICLES, 28)
    # the synthetic tree holds small vehicles, trucks and motorcycles: the filters had work to do
    assert coco_expected(roots, VEHICLES, 0) != kept
    assert coco_expected(roots, ["truck", "motorcycle"], 28)
    comp = rows(out)
    assert {r["class_name"] for r in comp} <= set(VEHICLES)
    assert all(int(r["label"]) == VEHICLES.index(r["class_name"]) for r in comp)
    assert len(comp) == 3 * len(fg_rows)
    # 80/20: no background image, and no COCO image, serves both train and test
    bgs = defaultdict(set)
    for r in comp:
        bgs[r["split"]].add(r["bg_filename"])
    assert bgs["train"] and bgs["test"] and not bgs["train"] & bgs["test"]
    images = defaultdict(set)
    for shard in shard_members(out / "foregrounds").values():
        for _, meta, _image in shard:
            images[meta["split"]].add(meta["image_id"])
            assert min(meta["bbox"][2:]) >= 28
    assert images["train"] and images["test"] and not images["train"] & images["test"]
    for shard in shard_members(out).values():
        for _, meta, _ in shard:
            x0, y0, x1, y1 = meta["paste_box"]
            assert max(x1 - x0, y1 - y0) <= 168


def test_background_pools_split_80_20_per_category(roots):
    params = recipemod.load("bap-coco-vehicles").params
    params = {**params, "texture_dir": str(roots["textures"])}
    pools, _, _, _ = background_pools(params, BuildContext(roots=dict(roots)), seed=0)
    train, test = dict(pools["train"]), dict(pools["test"])
    assert len(train) == 50 + 3                      # 50 Places365 categories + 3 texture folders
    assert any(c.startswith("textures/") for c in train)
    for cat, files in train.items():
        n = len(files) + len(test.get(cat, []))
        assert len(test.get(cat, [])) == round(0.2 * n)
        assert not {f for f, _ in files} & {f for f, _ in test.get(cat, [])}


def test_coco_person_min_box_112_and_168_px_cap(roots, tmp_path):
    out = tmp_path / "person"
    bap(roots, out, "bap-coco-person", sets=["anchors=1", "alignments=1", "upscale=true"])
    fg_rows = rows(out / "foregrounds")
    assert Counter(r["class_name"] for r in fg_rows) == coco_expected(roots, ["person"], 112)
    assert len(fg_rows) >= 2
    for shard in shard_members(out).values():
        for _, meta, image in shard:
            x0, y0, x1, y1 = meta["paste_box"]
            assert max(x1 - x0, y1 - y0) == 168 and image.size == (224, 224)   # upscale=true: exactly 75 %


def test_coco_category_errors(roots, tmp_path, monkeypatch):
    with pytest.raises(BgforgeError, match="both used and withheld"):
        bap(roots, tmp_path / "o", "bap-coco-vehicles", sets=["categories=[car, truck]"])
    with pytest.raises(BgforgeError, match="not in instances_train2017.json"):
        CocoSource(roots["coco"]).objects(["spaceship"])
    monkeypatch.delenv("BGFORGE_TEXTURES_ROOT", raising=False)
    no_textures = {k: v for k, v in roots.items() if k != "textures"}
    with pytest.raises(BgforgeError, match="texture_dir"):
        bap(no_textures, tmp_path / "o2", "bap-coco-vehicles")


def test_segmentation_decoding():
    poly = [[2.0, 1.0, 8.0, 1.0, 8.0, 5.0, 2.0, 5.0]]          # a rectangle, corners included
    mask = annotation_mask(poly, 8, 10)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert (mask[1:6, 2:9] == 255).all() and mask.sum() == 255 * 5 * 7
    # uncompressed RLE is column-major and starts with a run of zeros
    expected = np.zeros((3, 4), np.uint8)
    expected[1:3, 1] = 1
    expected[0, 2] = 1
    assert np.array_equal(decode_rle([4, 3, 5], 3, 4), expected)
    assert np.array_equal(annotation_mask({"counts": [4, 3, 5], "size": [3, 4]}, 3, 4), expected * 255)
    with pytest.raises(ValueError):
        decode_rle([4, 3], 3, 4)


def test_compressed_rle_without_pycocotools_says_how_to_fix(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pycocotools", None)       # as if not installed
    with pytest.raises(SampleError, match="pip install pycocotools"):
        annotation_mask({"counts": "PPYo0", "size": [3, 4]}, 3, 4)
    root = make_coco(tmp_path / "coco", n_images=2, seed=1)
    ann = root / "annotations" / "instances_train2017.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"] = {"counts": "PPYo0", "size": [224, 256]}
    ann.write_text(json.dumps(data))
    name = next(c["name"] for c in data["categories"] if c["id"] == data["annotations"][0]["category_id"])
    with pytest.raises(BgforgeError, match="pip install pycocotools"):
        CocoSource(root).objects([name])
