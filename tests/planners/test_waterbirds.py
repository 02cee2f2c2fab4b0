"""The Waterbirds recipes on synthetic real-layout trees: exact counts, pixels, bad input."""

import csv
import json

import numpy as np
import pytest
import webdataset as wds
from helpers import build, reference_composite
from PIL import Image

from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext
from bgforge.planners.waterbirds import is_waterbird
from bgforge.sources import synthetic
from bgforge.sources.cub import CubSource

WATER = ["Albatross", "Gull", "Pelican", "Tern"]


def run(name, cub_root, places_root, out, *sets, **kw):
    r = recipemod.apply_overrides(recipemod.load(name), list(sets))
    ctx = BuildContext(roots={"cub": cub_root, "places": places_root})
    kw.setdefault("progress", False)
    return build(r, ctx, out, **kw)


def test_species_match_modes():
    names = recipemod.load("waterbirds-95").params["waterbird_species"]
    assert is_waterbird("eastern_towhee", names, "substring")       # the reference quirk
    assert not is_waterbird("eastern_towhee", names, "word")
    assert is_waterbird("pacific_loon", names, "word")
    assert not is_waterbird("common_loon", names, "word")
    assert is_waterbird("california_gull", names, "word")


@pytest.mark.parametrize("name,train_s,val_s", [("waterbirds-95", 0.95, 0.5), ("waterbirds-100", 1.0, 1.0)])
def test_exact_group_counts(tmp_path, cub_root, places_root, name, train_s, val_s):
    res = run(name, cub_root, places_root, tmp_path / "o")
    rows = list(csv.DictReader(open(tmp_path / "o" / "metadata.csv")))
    imgs = CubSource(cub_root).images()
    names = recipemod.load(name).params["waterbird_species"]
    y = {i.img_id: int(is_waterbird(i.species, names, "substring")) for i in imgs}
    n_train_cub = sum(i.is_train for i in imgs)
    n_val = int(np.round(0.2 * n_train_cub))
    by_split = {s: [r for r in rows if r["split"] == code] for s, code in (("train", "0"), ("val", "1"), ("test", "2"))}
    assert len(by_split["val"]) == n_val
    assert len(by_split["train"]) == n_train_cub - n_val
    assert len(by_split["test"]) == sum(not i.is_train for i in imgs)
    for split, s in (("train", train_s), ("val", val_s), ("test", 0.5)):
        for label in (0, 1):
            items = [r for r in by_split[split] if int(r["y"]) == label]
            assert all(y[int(r["img_id"])] == label for r in items)
            frac = s if label == 1 else 1 - s
            assert sum(int(r["place"]) for r in items) == int(np.round(frac * len(items))), (split, label)
    if name == "waterbirds-100":  # no minority example in train or val
        for split in ("train", "val"):
            assert all(r["y"] == r["place"] for r in by_split[split])
    groups = json.loads((tmp_path / "o" / "groups.json").read_text())
    assert groups["train"]["total"] == len(by_split["train"])
    assert res.finalized and res.errors == 0
    # backgrounds are never reused and come from the place's categories
    assert len({r["place_filename"] for r in rows}) == len(rows)
    for r in rows:
        prefix = ("/o/ocean/", "/l/lake/natural/") if r["place"] == "1" else ("/b/bamboo_forest/", "/f/forest/broadleaf/")
        assert r["place_filename"].startswith(prefix)
        assert int(r["group"]) == 2 * int(r["y"]) + int(r["place"])


def test_metadata_columns_and_webdataset_readback(tmp_path, cub_root, places_root):
    run("waterbirds-95", cub_root, places_root, tmp_path / "o", shard_size=10)
    header = (tmp_path / "o" / "metadata.csv").read_text().splitlines()[0]
    assert header == "img_id,img_filename,y,split,place,place_filename,group,shard,key"
    rows = {r["key"]: r for r in csv.DictReader(open(tmp_path / "o" / "metadata.csv"))}
    urls = sorted(str(p) for p in (tmp_path / "o" / "shards").glob("*.tar"))
    assert len(urls) > 3  # shard_size honoured
    seen = 0
    for sample in wds.WebDataset(urls, shardshuffle=False).decode("rgb"):
        meta = sample["json"]
        row = rows[sample["__key__"]]
        assert str(meta["y"]) == row["y"] == str(sample["cls"])  # webdataset decodes .cls to int
        assert {"y", "place", "group", "split", "img_id", "img_filename", "place_filename", "recipe", "seed"} <= set(meta)
        assert sample["jpg"].shape == (meta["height"], meta["width"], 3)
        seen += 1
    assert seen == len(rows)


def test_png_output_matches_reference_construction_pixel_for_pixel(tmp_path, cub_root, places_root):
    run("waterbirds-95", cub_root, places_root, tmp_path / "o", "image_format=png", layout="both")
    rows = list(csv.DictReader(open(tmp_path / "o" / "metadata.csv")))
    places = places_root / "data_large"
    for r in rows[:: max(1, len(rows) // 12)]:
        rel = r["img_filename"].replace(".png", ".jpg")
        ref = reference_composite(cub_root / "images" / rel, cub_root / "segmentations" / rel.replace(".jpg", ".png"),
                                  places / r["place_filename"].lstrip("/"))
        ours = np.asarray(Image.open(tmp_path / "o" / r["img_filename"]))
        assert np.array_equal(ours, ref), r["img_filename"]
    assert (tmp_path / "o" / "RELEASE_v1.0.txt").exists()


def test_too_few_backgrounds_is_an_error_before_work(tmp_path, cub_root):
    small = synthetic.make_places(tmp_path / "places", per_category=5, size=(64, 48))
    with pytest.raises(BgforgeError, match=r"too few backgrounds for place 0 .*: 10 images for \d+ birds"):
        run("waterbirds-95", cub_root, small, tmp_path / "o")
    assert not (tmp_path / "o" / "shards").exists()


def test_missing_roots_and_bad_recipe_give_one_line_errors(tmp_path, cub_root, places_root):
    with pytest.raises(BgforgeError, match="--cub-root DIR or set BGFORGE_CUB_ROOT"):
        run("waterbirds-95", None, places_root, tmp_path / "o")
    with pytest.raises(BgforgeError, match=r"CUB-200-2011 root .*nope does not exist"):
        run("waterbirds-95", tmp_path / "nope", places_root, tmp_path / "o")
    with pytest.raises(BgforgeError, match=r"none of data_large/"):
        run("waterbirds-95", cub_root, tmp_path, tmp_path / "o")
    with pytest.raises(BgforgeError, match="available: .*waterbirds-100"):
        recipemod.load("waterbirds-1000")
    with pytest.raises(BgforgeError, match="no parameter 'strength'"):
        recipemod.apply_overrides(recipemod.load("waterbirds-95"), ["strength=1"])


def test_corrupt_image_and_wrong_size_mask_are_logged_and_counted(tmp_path, cub_root, places_root):
    import shutil

    bad = tmp_path / "CUB"
    shutil.copytree(cub_root, bad)
    imgs = CubSource(bad).images()
    corrupt, wrong = imgs[2], imgs[5]
    (bad / "images" / corrupt.rel_path).write_bytes(b"not a jpeg")
    mask_path = bad / "segmentations" / wrong.rel_path.replace(".jpg", ".png")
    Image.open(mask_path).resize((20, 20)).save(mask_path)
    res = run("waterbirds-95", bad, places_root, tmp_path / "o")
    assert res.errors == 2
    errors = [json.loads(line) for line in (tmp_path / "o" / "errors.jsonl").read_text().splitlines()]
    by_key = {e["key"]: e for e in errors}
    assert by_key[f"cub_{corrupt.img_id:06d}"]["stage"] == "read_image"
    assert "cannot decode" in by_key[f"cub_{corrupt.img_id:06d}"]["message"]
    assert by_key[f"cub_{wrong.img_id:06d}"]["stage"] == "read_mask"
    assert "20x20" in by_key[f"cub_{wrong.img_id:06d}"]["message"]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["errors"] == 2 and manifest["samples"] == len(imgs) - 2
