"""UrbanCars against facebookresearch/Whac-A-Mole (commit c91b097), re-implemented here from the
cited lines (no reference code in the project):

- the pools and every `random.Random(0)` draw: `create_datasets/urbancars/gen_urbancars.py:60-152,
  172-205, 232-245, 277-296, 352-361`, `src_dataset/stanford_cars.py:89-121`, `src_dataset/places.py:24-39`,
  `src_dataset/lvis.py:39-69` with lvis-api's `ann_to_rle` (pycocotools frPyObjects + merge) and
  skimage's 8-connected `measure.label` (here scipy.ndimage.label with a 3x3 structure);
- `--layout whac-a-mole` read as `dataset/urbancars.py:57-115` and `dataset/urbancars_aug.py:67-105,
  186-205` read it, scored as `urbancars_trainers/base_trainer.py:295-393` scores, against `bgforge eval`;
- the per-image files: `gen_urbancars.py:324-350` and `urbancars_aug_gen_bg_only.py:34-61`.
"""

import csv
import glob
import json
import os
import random
import warnings

import numpy as np
import pytest
from helpers import build
from PIL import Image

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.eval import score
from bgforge.planners import BuildContext
from bgforge.sources.synthetic_urbancars import CAR_CLASSES, make_urbancars_sources

SIZES = ["num_train=60", "num_val=12", "num_test=12"]
# the test's own pycocotools calls (reference_lvis): its numpy-2 notice, nothing to act on
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
URBAN_SCENES = ["alley", "street", "downtown", "crosswalk", "gas_station", "garage-outdoor", "driveway"]
COUNTRY_SCENES = ["desert_road", "field_road", "forest_road"]
URBAN_OBJECTS = ["fireplug", "stop_sign", "street_sign", "parking_meter", "traffic_light"]
COUNTRY_OBJECTS = ["cow", "horse", "sheep"]
BODY_TYPES = [0, 0, 1, 1, 1, 1]   # the Hatchback labelled country: the name heuristic says urban


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic sources in the reference's layouts (Places easyformat train + val, car masks) and a
    reference metadata folder with name lists that leave some files out."""
    base = tmp_path_factory.mktemp("uc-ref")
    roots = make_urbancars_sources(base / "src", seed=7, places_layout="easyformat")
    meta = base / "metadata"
    (meta / "stanford_cars").mkdir(parents=True)
    (meta / "stanford_cars" / "body_type.json").write_text(json.dumps(BODY_TYPES))
    for split in ("train", "test"):
        names = sorted(os.listdir(roots["cars"] / f"cars_{split}"))
        (meta / "stanford_cars" / f"{split}.txt").write_text("".join(f"{n}\n" for i, n in enumerate(names) if i % 7 != 3))
    for split in ("train", "val"):
        (meta / "places" / "filter_objs" / split).mkdir(parents=True)
        for name in URBAN_SCENES + COUNTRY_SCENES:
            files = sorted(os.listdir(roots["places"] / split / name), reverse=True)  # the reference sorts them
            (meta / "places" / "filter_objs" / split / f"{name}.txt").write_text(
                "".join(f"{f}\n" for i, f in enumerate(files) if i % 5 != 1))
    return roots, meta


def recipe_with(*sets):
    return recipemod.apply_overrides(recipemod.load("urbancars"), [*SIZES, *sets])


# ---- the reference's pools and draws, re-implemented from the cited lines ----

def reference_cars(cars_root, meta, t):
    """stanford_cars.py:89-121 per split (the .mat order, kept names, body type), train then test
    (gen_urbancars.py:90-106)."""
    import scipy.io as sio

    body = json.loads((meta / "stanford_cars" / "body_type.json").read_text())
    out = []
    for split, mat in (("train", cars_root / "devkit" / "cars_train_annos.mat"),
                       ("test", cars_root / "cars_test_annos_withlabels.mat")):
        kept = set((meta / "stanford_cars" / f"{split}.txt").read_text().splitlines())
        out += [f"cars_{split}/{a['fname']}" for a in sio.loadmat(str(mat), squeeze_me=True)["annotations"]
                if a["fname"] in kept and body[a["class"] - 1] == t]
    return out


def reference_places(places_root, meta, names):
    """places.py:24-39 per class (train then val, the filter list sorted), classes in meta_data.json order."""
    out = []
    for name in names:
        for split in ("train", "val"):
            listed = [f.strip() for f in open(meta / "places" / "filter_objs" / split / f"{name}.txt").readlines()]
            out += [os.path.join(split, name, f) for f in sorted(listed)]
    return out


def reference_lvis(lvis_root, names, standard, thresh):
    """lvis.py:39-69 per category: train json then val json, area filter, one 8-connected component
    of lvis-api's ann_to_mask (pycocotools frPyObjects + merge + decode)."""
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    docs = {s: json.loads((lvis_root / f"lvis_v1_{s}.json").read_text()) for s in ("train", "val")}
    out = []
    for name in names:
        for split in ("train", "val"):
            doc = docs[split]
            cat = next(c["id"] for c in doc["categories"] if c["name"] == name)
            imgs = {im["id"]: im for im in doc["images"]}
            for ann in doc["annotations"]:
                if ann["category_id"] != cat:
                    continue
                area = ann["bbox"][2] * ann["bbox"][3] if standard == "bbox" else ann["area"]
                if area < thresh:
                    continue
                im = imgs[ann["image_id"]]
                rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], im["height"], im["width"]))
                if ndimage.label(mask_utils.decode(rle), structure=np.ones((3, 3)))[1] > 1:
                    continue
                out.append(ann["id"])
    return out


def reference_draws(pools, sizes, train_ratios=(0.95, 0.95), eval_ratio=0.5):
    """gen_urbancars.py: per split, each pool's indices shuffled by random.Random(0) (:111-113, :142-146,
    :191-197), the split's range taken (:60-80, :114, :147, :198), compositions in loop order (:352-361)
    taking int(r_bg * r_co * N) images, at least 1 (:232-245), each one next() of its three loaders (:277-296)."""
    n_train, n_val, n_test = sizes
    ranges = {"train": range(n_train), "val": range(n_train, n_train + n_val),
              "test": range(n_train + n_val, n_train + n_val + n_test)}
    draws = []
    for split, split_indices in ranges.items():
        r_bg, r_co = train_ratios if split == "train" else (eval_ratio, eval_ratio)
        loaders = {}
        for kind, by_type in pools.items():
            for t, pool in by_type.items():
                subsample = list(range(len(pool)))
                random.Random(0).shuffle(subsample)
                loaders[(kind, t)] = iter([pool[subsample[k]] for k in split_indices])
        for o in (0, 1):
            for b in (0, 1):
                for c in (0, 1):
                    ratio = (r_bg if o == b else 1 - r_bg) * (r_co if o == c else 1 - r_co)
                    num = int(ratio * len(split_indices)) or 1
                    for i in range(num):
                        draws.append((split, o, b, c, i, next(loaders[("car", o)]), next(loaders[("bg", b)]),
                                      next(loaders[("co", c)])))
    return draws


def bgforge_draws(planned):
    return [(s.split, s.meta["y"], s.meta["bg"], s.meta["co_obj"], s.meta["composition_index"], s.meta["car_file"],
             s.meta["bg_file"], s.meta["co_obj_ann_id"]) for s in planned.samples if s.meta["cue"] == "all"]


@pytest.mark.slow
def test_every_random0_draw_is_the_references(world):
    roots, meta = world
    recipe = recipe_with(f"reference_metadata={meta}")
    planned = planners.get("urbancars").plan(recipe, BuildContext(roots={k: str(v) for k, v in roots.items()}))
    pools = {"car": {t: reference_cars(roots["cars"], meta, t) for t in (0, 1)},
             "bg": {0: reference_places(roots["places"], meta, URBAN_SCENES),
                    1: reference_places(roots["places"], meta, COUNTRY_SCENES)},
             "co": {0: reference_lvis(roots["lvis"], URBAN_OBJECTS, "bbox", 4500),
                    1: reference_lvis(roots["lvis"], COUNTRY_OBJECTS, "mask", 3500)}}
    expected = reference_draws(pools, (60, 12, 12))
    got = bgforge_draws(planned)
    assert len(expected) == len(got) == 166
    assert got == expected   # 166 composites x 3 draws (car, background, co-object), in order
    assert any(s.inputs.get("car_mask") for s in planned.samples)   # the reference's mask files are used
    notes = " ".join(planned.notes)
    assert "easyformat" in notes and "166 from the reference's mask files" in notes


@pytest.mark.slow
def test_without_name_lists_the_draws_follow_the_reference_on_all_files(world, tmp_path):
    """data_256 (one split, no lists): the pools are every file, the filter and draws still the reference's."""
    roots = make_urbancars_sources(tmp_path / "src", seed=3)
    planned = planners.get("urbancars").plan(recipe_with(), BuildContext(roots={k: str(v) for k, v in roots.items()}))
    by_type = {t: [] for t in (0, 1)}
    import scipy.io as sio

    for split, mat in (("train", roots["cars"] / "devkit" / "cars_train_annos.mat"),
                       ("test", roots["cars"] / "cars_test_annos_withlabels.mat")):
        for a in sio.loadmat(str(mat), squeeze_me=True)["annotations"]:
            by_type[int(a["class"] >= 4)].append(f"cars_{split}/{a['fname']}")   # SUV, Cab, Van: classes 4-6
    scenes = {0: [f"/{s[0]}/{s.replace('-', '/')}" for s in URBAN_SCENES], 1: [f"/{s[0]}/{s}" for s in COUNTRY_SCENES]}
    bg = {t: [f"{c}/{f}" for c in scenes[t] for f in sorted(os.listdir(roots["places"] / "data_256" / c.strip("/")))]
          for t in (0, 1)}
    pools = {"car": by_type, "bg": bg,
             "co": {0: reference_lvis(roots["lvis"], URBAN_OBJECTS, "bbox", 4500),
                    1: reference_lvis(roots["lvis"], COUNTRY_OBJECTS, "mask", 3500)}}
    assert bgforge_draws(planned) == reference_draws(pools, (60, 12, 12))


@pytest.mark.slow
def test_lvis_filter_is_the_union_rasterisation(world):
    """A second piece 1 px away: two components as pycocotools rasterises the polygons (the reference
    drops the object); OpenCV's fillPoly would join them and keep it."""
    import cv2

    from bgforge.sources.coco import annotation_mask
    from bgforge.sources.lvis import LvisSource, lvis_mask

    roots, _ = world
    kept = {o.ann_id for o in LvisSource(roots["lvis"], roots["coco"]).objects(COUNTRY_OBJECTS, "mask", 3500)}
    assert kept == set(reference_lvis(roots["lvis"], COUNTRY_OBJECTS, "mask", 3500))
    a = [50, 50, 100, 50, 100, 120, 50, 120]
    b = [101, 80, 111, 80, 111, 90, 101, 90]
    assert cv2.connectedComponents(lvis_mask([a, b], 200, 200), connectivity=8)[0] - 1 == 2
    assert cv2.connectedComponents((annotation_mask([a, b], 200, 200) > 0).astype(np.uint8), connectivity=8)[0] - 1 == 1
    doc = json.loads((roots["lvis"] / "lvis_v1_train.json").read_text())
    images = {im["id"]: im for im in doc["images"]}
    near = [ann for ann in doc["annotations"] if len(ann["segmentation"]) == 2   # the synthetic 10 x 10 piece 1 px away
            and np.ptp(ann["segmentation"][1][0::2]) == 10 and ann["category_id"] in (6, 7, 8)]
    assert near and not kept & {ann["id"] for ann in near}
    for ann in near:   # what the OpenCV rasterisation would have kept
        im = images[ann["image_id"]]
        mask = annotation_mask(ann["segmentation"], im["height"], im["width"]) > 0
        assert cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1 == 1


# ---- --layout whac-a-mole, read as Whac-A-Mole's loaders read it ----

@pytest.fixture(scope="module")
def wam(world, tmp_path_factory):
    roots, meta = world
    out = tmp_path_factory.mktemp("uc-wam") / "data"
    res = build(recipe_with(f"reference_metadata={meta}", "cue_sets=[bg_only]"),
                BuildContext(roots={k: str(v) for k, v in roots.items()}), out, layout="whac-a-mole", shard_size=32)
    assert res.finalized and res.errors == 0
    return out


def reference_read(root, split):
    """dataset/urbancars.py:46-92: the ratio folder per split, the eight composition folders in
    car -> bg -> co-object order, glob('*.jpg') in each; labels (obj, bg, co_occur_obj)."""
    ratio = 0.95 if split == "train" else 0.5
    img_root = os.path.join(root, "urbancars", f"bg-{ratio}_co_occur_obj-{ratio}", split)
    files, labels = [], []
    names = ["urban", "country"]
    for o, on in enumerate(names):
        for b, bn in enumerate(names):
            for c, cn in enumerate(names):
                dir_path = os.path.join(img_root, f"obj-{on}_bg-{bn}_co_occur_obj-{cn}")
                assert os.path.exists(dir_path)
                found = glob.glob(os.path.join(dir_path, "*.jpg"))
                files += found
                labels += [(o, b, c)] * len(found)
    return files, np.array(labels)


def reference_scores(labels, preds, bg_ratio=0.95, co_ratio=0.95):
    """base_trainer.py:319-384 with utils.MultiDimAverageMeter: per (obj, bg, co) accuracy; a cell's
    accuracy is the mean over its groups; I-Avg weighs the cells by the training ratios."""
    cum, cnt = np.zeros((2, 2, 2)), np.zeros((2, 2, 2))
    for (o, b, c), p in zip(labels, preds):
        cum[o, b, c] += p == o
        cnt[o, b, c] += 1
    acc = cum / cnt
    eye = np.eye(2, dtype=int)
    ratios_bg, ratios_co = [1 - bg_ratio, bg_ratio], [1 - co_ratio, co_ratio]
    cells, weighted = {}, 0.0
    for bs in (0, 1):
        for ss in (0, 1):
            mask = (eye == bs)[:, :, None] & (eye == ss)[:, None, :]
            cells[(bs, ss)] = acc[mask].mean()
            weighted += cells[(bs, ss)] * ratios_bg[bs] * ratios_co[ss]
    return {"i_avg": weighted, "bg_gap": cells[(0, 1)] - weighted, "co_obj_gap": cells[(1, 0)] - weighted,
            "bg_co_obj_gap": cells[(0, 0)] - weighted}


@pytest.mark.slow
@pytest.mark.parametrize("split", ["val", "test", "train"])
def test_whac_a_mole_reads_the_layout_and_scores_equal_bgforge_eval(wam, split):
    files, labels = reference_read(str(wam), split)
    rows = [r for r in csv.DictReader(open(wam / "metadata.csv")) if r["split"] == split]
    assert len(files) == len(rows) == {"train": 118, "val": 24, "test": 24}[split]
    by_file = {os.path.join(str(wam), r["file_name"]): r for r in rows}
    for f, (o, b, c) in zip(files, labels):   # each image's reference labels are bgforge's fields
        r = by_file[f]
        assert (int(r["y"]), int(r["bg"]), int(r["co_obj"])) == (o, b, c)
        assert int(r["group"]) == o * 4 + b * 2 + c     # base_trainer's group_label "both" (urbancars.py:108-115)
    rng = np.random.default_rng({"train": 1, "val": 2, "test": 3}[split])
    # a classifier that follows the background 70 % of the time: the gaps are not zero
    pred_of = {r["key"]: int(r["bg"]) if rng.random() < 0.7 else int(rng.integers(0, 2)) for r in rows}
    preds = [pred_of[by_file[f]["key"]] for f in files]
    expected = reference_scores(labels, preds)
    got = score(pred_of, wam, split)
    assert got["n"] == len(files)
    assert got["accuracy"] == pytest.approx(np.mean(np.array(preds) == labels[:, 0]), abs=1e-6)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    assert abs(expected["bg_gap"]) > 0.05


@pytest.mark.slow
def test_the_augmentation_datasets_find_their_files(wam):
    """urbancars_aug.py:67-105 lists the train split; :186-205 open <stem>_mask.png, <stem>_bg_only.png and
    <stem>_co_occur_obj_mask.png beside each image; the bg-only image is urbancars_aug_gen_bg_only.py:34-61
    applied to the saved JPEG; the masks are the pasted objects (car 128 px at (128, 128), co-object 64 px)."""
    files, _ = reference_read(str(wam), "train")
    for f in files:
        stem = os.path.splitext(f)[0]
        img = np.array(Image.open(f).convert("RGB"))
        h, w = img.shape[:2]
        car = np.array(Image.open(stem + "_mask.png").convert("L")).astype(np.int64)
        obj = np.array(Image.open(stem + "_co_occur_obj_mask.png").convert("L")).astype(np.int64)
        assert car.shape == obj.shape == (256, 256) and set(np.unique(car)) <= {0, 255} and set(np.unique(obj)) <= {0, 255}
        ys, xs = np.nonzero(car)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in range(126, 131)
        ys, xs = np.nonzero(obj)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in range(62, 67)
        assert abs((xs.min() + xs.max()) / 2 - 224) <= 3
        expected = np.copy(img)
        for_obj = img[int(0.25 * h):int(0.75 * h), :int(0.25 * w)]
        for_co = img[int(0.375 * h):int(0.625 * h), :int(0.25 * w)]
        expected[int(0.25 * h):int(0.75 * h), int(0.25 * w):int(0.5 * w)] = for_obj
        expected[int(0.25 * h):int(0.75 * h), int(0.5 * w):int(0.75 * w)] = for_obj
        expected[int(0.375 * h):int(0.625 * h), int(0.75 * w):] = for_co
        assert (np.array(Image.open(stem + "_bg_only.png").convert("RGB")) == expected).all()
    for split in ("val", "test"):   # masks for every split, bg-only for train only (create_urbancars.sh:63)
        for f in reference_read(str(wam), split)[0]:
            assert os.path.exists(os.path.splitext(f)[0] + "_mask.png")
            assert not os.path.exists(os.path.splitext(f)[0] + "_bg_only.png")
    extras = glob.glob(str(wam / "urbancars" / "bg-0.5_co_occur_obj-0.5" / "test_bg_only" / "*" / "*.png"))
    assert len([e for e in extras if not e.endswith("_mask.png")]) == 24   # named extras, beside the splits


def test_the_layout_is_refused_for_other_recipes(tmp_path):
    from bgforge.errors import BgforgeError
    from bgforge.io.layout import check_layout

    with pytest.raises(BgforgeError, match="whac-a-mole"):
        check_layout("whac-a-mole", "waterbirds-95", True, "waterbirds")
    check_layout("whac-a-mole", "urbancars", False, "urbancars")


@pytest.mark.slow
def test_no_non_writable_warning_from_decoded_images(world):
    from bgforge.stages.urbancars import to_float

    roots, _ = world
    path = next(iter(sorted((roots["cars"] / "cars_train").iterdir())))
    arr = np.asarray(Image.open(path).convert("RGB"))
    assert not arr.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_float(arr)


@pytest.mark.slow
def test_body_type_heuristic_and_reference_flags(world):
    from bgforge.planners.urbancars import _body_types

    roots, meta = world
    p = recipe_with().params
    assert _body_types(CAR_CLASSES, p, None) == [0, 0, 0, 1, 1, 1]
    assert _body_types(CAR_CLASSES, p, meta) == BODY_TYPES


@pytest.mark.slow
def test_overwrite_knows_the_files_beside_the_images(wam):
    from bgforge.execution import guard

    listed = set(guard.previous_files(wam))
    beside = {str(p.relative_to(wam)) for p in (wam / "urbancars").rglob("*_*.png")}
    assert beside and beside <= listed
