"""COCO-on-Places: full-scale counts and place indices from coco_places.py's rules, pixels against skimage."""

import csv
import io
import json
import tarfile
from collections import Counter

import numpy as np
import pytest
from helpers import build
from PIL import Image

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext
from bgforge.sources.coco import annotation_mask
from bgforge.sources.synthetic_coco_places import CLASSES, PLACES, make_coco_places_sources

# Places365-Standard has up to 5,000 images per category; the counts do not depend on it as long as every
# list index exists: train's unbiased index runs to 7,199 (coco_places.py:297), so 4 x 1,800 of those
PER_PLACE = {"/k/kasbah": 1800, "/l/lighthouse": 1800, "/p/pagoda": 1800, "/r/rock_arch": 1800}
IMAGES_PER_CLASS = 1200


@pytest.fixture(scope="module")
def full_scale(tmp_path_factory):
    """An instances_train2017.json with 1,200 images per class (every 7th too small, every 3rd with a
    second, smaller instance) and data_256 folders of empty files: planning reads no pixels."""
    root = tmp_path_factory.mktemp("full")
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "train2017").mkdir()
    images, anns = [], []
    for c, (cat_id, _, _) in enumerate(CLASSES):
        for j in range(IMAGES_PER_CLASS):
            image_id = 100000 * (c + 1) + (j * 7919) % IMAGES_PER_CLASS   # ids not in listing order
            images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 640, "height": 480})
            area = 9999.0 if j % 7 == 3 else 10000.0 + j
            for a in ([5000.0, area] if j % 3 == 0 else [area]):
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id, "area": a,
                             "bbox": [0, 0, 100, 100], "segmentation": [[0, 0, 100, 0, 100, 100]], "iscrowd": 0})
    data = {"images": images, "annotations": anns, "categories": [{"id": i, "name": n} for i, n, _ in CLASSES]}
    (root / "coco" / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    for cat in PLACES:
        folder = root / "places" / "data_256" / cat.strip("/")
        folder.mkdir(parents=True)
        for j in range(PER_PLACE.get(cat, 1300)):
            (folder / f"{j + 1:08d}.jpg").touch()
    return root, data


def plan(root, *sets):
    r = recipemod.apply_overrides(recipemod.load("coco-places"), list(sets))
    planner = planners.get(r.planner)
    planner.validate(r.params)
    return planner.plan(r, BuildContext(roots={"coco": root / "coco", "places": root / "places"})).samples


def ref_index(split, unbiased, c, k, s=0.8):
    """coco_places.py's list indices, written out from its lines (800 / 100 / 100 per class)."""
    tr_s, val_s = 800 * (c + 1), 100 * (c + 1)
    return {("train", True): 800 * c + k, ("train", False): k,                               # :297, :300
            ("val_id", True): k + int((1.0 - s) * tr_s), ("val_id", False): k + int(s * 800),  # :357, :360
            ("val_ood", True): 100 * c + k, ("val_sg", False): k + int(s * 800),            # :371, :383
            ("test_id", True): 100 * c + k + int((1.0 - s) * (tr_s + val_s)),                # :429
            ("test_id", False): k + int(s * 900), ("test_ood", True): k,                     # :432, :444
            ("test_sg", False): k + int(s * 900)}[split, unbiased]                           # :455


@pytest.mark.slow
def test_full_scale_groups_objects_and_place_indices(full_scale):
    root, data = full_scale
    samples = plan(root)
    table = {}
    for s in samples:
        table.setdefault(s.split, Counter())[s.meta["group_name"]] += 1
    names = [n for _, n, _ in CLASSES]
    # :135-137 800 / 100 / 100 per class; :296 the unbiased share 1 - 0.8 (here exactly its expectation)
    expected = {"train": {"biased": 640, "unbiased": 160}, "val_id": {"biased": 80, "unbiased": 20},
                "test_id": {"biased": 80, "unbiased": 20}, "val_ood": {"ood": 100}, "test_ood": {"ood": 100},
                "val_sg": {"sg": 100}, "test_sg": {"sg": 100}}
    for split, kinds in expected.items():
        assert dict(table[split]) == {f"{n}/{kind}": v for n in names for kind, v in kinds.items()}, split
    assert len(samples) == 9 * (800 + 3 * 100 + 3 * 100)
    # :286-293: per image the largest instance of the class; images with it below 10,000 skipped
    by_class = {}
    for a in data["annotations"]:
        best = by_class.setdefault(a["category_id"], {})
        if a["area"] > best.get(a["image_id"], {"area": -1})["area"]:
            best[a["image_id"]] = a
    for c, (cat_id, name, _) in enumerate(CLASSES):
        kept = [best for i, best in sorted(by_class[cat_id].items()) if best["area"] >= 10000]
        for split, objs in (("train", kept[:800]), ("val_id", kept[800:900]), ("val_sg", kept[800:900]),
                            ("test_id", kept[900:1000]), ("test_ood", kept[900:1000])):
            got = [s.meta["ann_id"] for s in samples if s.split == split and s.meta["label"] == c]
            assert got == [a["id"] for a in objs], (name, split)
    # every background index is the reference's formula, from the list the reference reads
    biased_places = recipemod.load("coco-places").params["biased_places"]
    lists = {"unbiased": ("/k/", "/l/", "/p/", "/r/"), "val_ood": ("/o/", "/v/"), "test_ood": ("/w/", "/z/")}
    for s in samples:
        c, k = s.meta["label"], int(s.key.rsplit("_", 1)[1])
        unbiased = s.meta["place_kind"] in ("unbiased", "ood")
        assert s.meta["place_index"] == ref_index(s.split, unbiased, c, k), s.key
        if s.meta["place_kind"] == "biased":
            assert s.meta["place_category"] == biased_places[c]
        elif s.meta["place_kind"] == "sg":
            assert s.meta["place_class"] not in (c, -1)
        else:
            pool = "unbiased" if s.meta["place_kind"] == "unbiased" else s.split
            assert s.meta["place_filename"].startswith(lists[pool]), s.key


@pytest.mark.slow
def test_disjoint_backgrounds_and_bernoulli_draws(full_scale):
    root, _ = full_scale
    samples = plan(root, "backgrounds=disjoint")
    assert len({s.meta["place_filename"] for s in samples}) == len(samples)
    reference = plan(root)
    assert len({s.meta["place_filename"] for s in reference}) < len(reference)   # the reference reuses places
    coin = plan(root, "place_draw=bernoulli")
    unbiased = sum(s.meta["place_kind"] == "unbiased" for s in coin if s.split == "train")
    assert unbiased != 9 * 160 and abs(unbiased - 9 * 160) < 120   # Binomial(7200, 0.2): sd 34


def reference_composite(image, mask, place):
    """coco_places.py:305-311 with skimage itself: resize each to 64 x 64, blend in float."""
    from skimage.transform import resize

    m = resize(np.tile(mask[:, :, None], [1, 1, 3]), (64, 64))
    return resize(place, (64, 64)) * (1 - m) + resize(image, (64, 64)) * m


@pytest.mark.slow
def test_build_pixels_match_skimage_and_pycocotools(tmp_path):
    pytest.importorskip("skimage")
    mask_utils = pytest.importorskip("pycocotools.mask")
    roots = make_coco_places_sources(tmp_path / "src", per_class=30, per_place=40, seed=3)
    r = recipemod.apply_overrides(recipemod.load("coco-places"), ["num_train=16", "num_val=4", "num_test=4"])
    res = build(r, BuildContext(roots=roots), tmp_path / "o")
    assert res.finalized and res.errors == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "metadata.csv")))
    assert len(rows) == 9 * (16 + 6 * 4)
    pngs = {}
    for tar in (tmp_path / "o" / "shards").glob("*.tar"):
        with tarfile.open(tar) as t:
            pngs.update({m.name[:-4]: t.extractfile(m).read() for m in t.getmembers() if m.name.endswith(".png")})
    data = json.loads((roots["coco"] / "annotations" / "instances_train2017.json").read_text())
    anns = {a["id"]: a for a in data["annotations"]}
    for row in rows[::23]:
        image = np.asarray(Image.open(roots["coco"] / "train2017" / row["coco_file"]).convert("RGB"))
        h, w = image.shape[:2]
        mask = 255 * mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(anns[int(row["ann_id"])]["segmentation"], h, w)))
        place = np.asarray(Image.open(roots["places"] / "data_256" / row["place_filename"].lstrip("/")).convert("RGB"))
        ours = np.asarray(Image.open(io.BytesIO(pngs[row["key"]]))).astype(float)
        # the resizes and the blend are skimage's: equal up to the final rounding, on the same mask
        cv_mask = annotation_mask(anns[int(row["ann_id"])]["segmentation"], h, w)
        assert np.abs(ours - np.round(reference_composite(image, cv_mask, place) * 255)).max() <= 1, row["key"]
        # pycocotools' rasteriser (the reference's annToMask) differs at the polygon's edge only
        ref = np.round(reference_composite(image, mask.astype(np.uint8), place) * 255)
        assert np.abs(ours - ref).mean() < 1.0, row["key"]


def test_too_few_objects_and_bad_params_are_one_line_errors(full_scale):
    root, _ = full_scale
    with pytest.raises(BgforgeError, match=r"COCO class 'boat' has \d+ images whose largest instance .* 2000 needed"):
        plan(root, "num_train=1800")
    planner = planners.get("coco_places")
    params = dict(recipemod.load("coco-places").params)
    with pytest.raises(BgforgeError, match="one place per class"):
        planner.validate({**params, "biased_places": ["/b/beach"]})
    with pytest.raises(BgforgeError, match="backgrounds must be reference or disjoint"):
        planner.validate({**params, "backgrounds": "fresh"})
