"""Spurious-OOD Waterbirds: full-scale group counts from the reference's rules, the OOD set, bytes."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
from helpers import build, reference_composite
from PIL import Image

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext

NAME = "spurious-ood-waterbirds"
# generate_waterbird.py:35-53, the water bird list; :55-60 the substring rule
REFERENCE_WATER = ["Albatross", "Auklet", "Cormorant", "Frigatebird", "Fulmar", "Gull", "Jaeger", "Kittiwake",
                   "Pelican", "Puffin", "Tern", "Gadwall", "Grebe", "Mallard", "Merganser", "Guillemot",
                   "Pacific_Loon"]
# CUB-200-2011's sizes under that rule (the released Waterbirds' group table): train 4615 land / 1379
# water birds, test 4510 / 1284 (5994 + 5794 = 11788 images)
CUB_SIZES = {("train", 0): 4615, ("train", 1): 1379, ("test", 0): 4510, ("test", 1): 1284}
PLACES_PER_CATEGORY = 5000   # Places365-Standard's training images per category


def reference_y(species_dir: str) -> int:
    name = species_dir.split(".")[1].lower()
    return int(any(w.lower() in name for w in REFERENCE_WATER))


@pytest.fixture(scope="module")
def full_scale(tmp_path_factory):
    """Index files of a CUB tree of the real sizes and Places365 folders of empty files: planning reads
    no pixels, so a dry plan at full scale takes a second."""
    root = tmp_path_factory.mktemp("full")
    cub = root / "CUB_200_2011"
    (cub / "images").mkdir(parents=True)
    (cub / "segmentations").mkdir()
    species = {0: ["009.Brewer_Blackbird", "073.Blue_Jay", "029.American_Crow"],
               1: ["001.Black_footed_Albatross", "059.California_Gull", "050.Eared_Grebe"]}
    lines, splits, i = [], [], 0
    for (split, y), n in CUB_SIZES.items():
        for k in range(n):
            i += 1
            sp = species[y][k % 3]
            lines.append(f"{i} {sp}/{sp.split('.')[1]}_{i:05d}.jpg")
            splits.append(f"{i} {int(split == 'train')}")
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(splits) + "\n")
    places = root / "places365"
    for cat in ("b/bamboo_forest", "f/forest/broadleaf", "o/ocean", "l/lake/natural"):
        folder = places / "data_large" / cat
        folder.mkdir(parents=True)
        for j in range(PLACES_PER_CATEGORY):
            (folder / f"{j + 1:08d}.jpg").touch()
    return cub, places


def plan(cub, places, *sets):
    r = recipemod.apply_overrides(recipemod.load(NAME), list(sets))
    planner = planners.get(r.planner)
    planner.validate(r.params)
    return planner.plan(r, BuildContext(roots={"cub": cub, "places": places})).samples


def group_table(samples) -> dict:
    out = {}
    for s in samples:
        out.setdefault(s.split, Counter())[s.meta["group_name"]] += 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("r", [0.5, 0.7, 0.9])
def test_full_scale_group_counts_follow_the_reference_rules(full_scale, r):
    cub, places = full_scale
    samples = plan(cub, places, f"confounder_strength={r}")
    table = group_table(samples)
    lines = (cub / "images.txt").read_text().split("\n")[:-1]
    y = {int(line.split()[0]): reference_y(line.split()[1].split("/")[0]) for line in lines}
    assert sum(y.values()) == CUB_SIZES["train", 1] + CUB_SIZES["test", 1]
    n_train = CUB_SIZES["train", 0] + CUB_SIZES["train", 1]
    n_val = int(np.round(0.2 * n_train))                      # generate_waterbird.py:81-84
    assert n_val == 1199
    assert sum(table["val"].values()) == n_val and sum(table["train"].values()) == n_train - n_val
    # test: the CUB test split is fixed, so every count is known: :110, :113-116
    assert dict(table["test"]) == {"landbird_land": 2255, "landbird_water": 2255,
                                   "waterbird_land": 642, "waterbird_water": 642}
    # train / val: the val draw is random (unseeded in the reference); within each split and class the
    # number on water is int(np.round(pos_fraction * n)), pos_fraction as :104-110 writes it
    for split in ("train", "val"):
        ids = [s.meta["img_id"] for s in samples if s.split == split]
        for label, name in ((0, "landbird"), (1, "waterbird")):
            n = sum(y[i] == label for i in ids)
            pos = (r if label else 1 - r) if split == "train" else 0.5
            water = int(np.round(pos * n))
            assert table[split][f"{name}_water"] == water, (split, label)
            assert table[split][f"{name}_land"] == n - water, (split, label)
    # the OOD set: every image of the four places, land and water
    assert dict(table["ood"]) == {"ood_land": 2 * PLACES_PER_CATEGORY, "ood_water": 2 * PLACES_PER_CATEGORY}


@pytest.mark.slow
def test_released_ood_set_is_the_ocean_only_under_land(full_scale):
    cub, places = full_scale
    samples = plan(cub, places, "ood_set=released")
    ood = [s for s in samples if s.split == "ood"]
    # generate_placebg.py:32-43 keeps the water list only; :52-58 files /o/ocean under land/
    assert len(ood) == PLACES_PER_CATEGORY
    assert {s.meta["place"] for s in ood} == {0}
    assert all(s.meta["place_filename"].startswith("/o/ocean/") for s in ood)
    assert not [s for s in plan(cub, places, "ood_set=none") if s.split == "ood"]
    kept = [s for s in plan(cub, places, "ood_exclude_id_backgrounds=true") if s.split == "ood"]
    assert len(kept) == 4 * PLACES_PER_CATEGORY - 11788


def run(cub_root, places_root, out, *sets, **kw):
    r = recipemod.apply_overrides(recipemod.load(NAME), list(sets))
    return build(r, BuildContext(roots={"cub": cub_root, "places": places_root}), out, **kw)


def test_build_copies_ood_files_and_composites_like_the_reference(tmp_path, cub_root, places_root):
    res = run(cub_root, places_root, tmp_path / "o", "confounder_strength=0.7", layout="both")
    assert res.finalized and res.errors == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "metadata.csv")))
    ood = [r for r in rows if r["split"] == "3"]
    assert len(ood) == 4 * 30
    for r in ood:   # shutil.copyfile: the bytes of the Places365 file
        src = places_root / "data_large" / r["place_filename"].lstrip("/")
        assert (tmp_path / "o" / r["img_filename"]).read_bytes() == src.read_bytes()
        assert r["img_filename"].startswith("placesbg/" + ("water/" if r["place"] == "1" else "land/"))
    groups = json.loads((tmp_path / "o" / "groups.json").read_text())
    assert groups["ood"]["groups"] == {"ood_land": 60, "ood_water": 60}


def test_png_composites_match_the_reference(tmp_path, cub_root, places_root):
    run(cub_root, places_root, tmp_path / "o", "image_format=png", "ood_set=none", layout="both")
    rows = list(csv.DictReader(open(tmp_path / "o" / "metadata.csv")))
    assert {r["split"] for r in rows} == {"0", "1", "2"}
    for r in rows[::7]:
        rel = r["img_filename"].replace(".png", ".jpg")
        ref = reference_composite(cub_root / "images" / rel, cub_root / "segmentations" / rel.replace(".jpg", ".png"),
                                  places_root / "data_large" / r["place_filename"].lstrip("/"))
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / r["img_filename"])), ref)


def test_bad_parameters_are_one_line_errors():
    planner = planners.get("spurious_ood")
    params = dict(recipemod.load(NAME).params)
    with pytest.raises(BgforgeError, match="ood_set must be one of correct, released, none"):
        planner.validate({**params, "ood_set": "buggy"})
    with pytest.raises(BgforgeError, match=r"confounder_strength must be a fraction in \[0, 1\]"):
        planner.validate({**params, "confounder_strength": 1.5})
