"""Each recipe's default is the reference generator's rule (shared PAPERS.md §1, §3-§6; docs/fidelity.md)."""

import csv
import inspect
import io
import json
from collections import defaultdict

import numpy as np
import pytest
from helpers import build
from PIL import Image, JpegImagePlugin

import bgforge
from bgforge import recipe as recipemod
from bgforge.backends.classical import BoxSegmenter, CvInpainter
from bgforge.errors import BgforgeError
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.planners.balance import class_quotas, seeded_subset
from bgforge.planners.bap import BapPlanner, derived_leakage_split
from bgforge.planners.hsi_backgrounds import object_box
from bgforge.planners.variants import class_order, read_class_order
from bgforge.records import Sample
from bgforge.report.spurious import build_report
from bgforge.rng import rng_for
from bgforge.sources.imagenet import ImageNetSource
from bgforge.sources.synthetic import make_imagenet
from bgforge.stages.inpaint import inpaint_batch

CLASSES = {"n01440764": "tench", "n01443537": "goldfish", "n01484850": "great white shark", "n01491361": "tiger shark"}
# self_pairing off: with three classes the reference's self-pairing (about 1 in 100 at ImageNet
# scale) would be 1 in 3; the pairing rule itself is pinned on 250 classes below
SMALL_HSI = ["quota.train.easy=3", "quota.train.medium=2", "quota.train.hard=2", "quota.val=2", "val_images_per_class=4",
             "self_pairing=false"]


# ---------------------------------------------------------------- Hard-Spurious-ImageNet (PAPERS §4)
@pytest.fixture(scope="module")
def inet(tmp_path_factory):
    return make_imagenet(tmp_path_factory.mktemp("inet"), classes=CLASSES, n_train=14, n_val=3, size=(64, 48), seed=5)


def build_hsi(inet, out, *sets):
    r = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), SMALL_HSI + list(sets))
    res = build(r, BuildContext(roots={"imagenet": inet}), out, progress=False)
    assert res.finalized and res.errors == 0
    return list(csv.DictReader(open(out / "metadata.csv")))


@pytest.fixture(scope="module")
def hsi(inet, tmp_path_factory):
    out = tmp_path_factory.mktemp("hsi") / "o"
    return out, build_hsi(inet, out)


@pytest.mark.slow
def test_r_groups_pair_each_class_with_one_background_class_in_every_split(hsi):
    out, rows = hsi
    pairs = defaultdict(set)
    for r in rows:
        if r["background"] == "random":
            pairs[(r["split"], r["wnid"])].add(r["bg_class"])
    assert {len(v) for v in pairs.values()} == {1}
    by_split = defaultdict(dict)
    for (split, wnid), bg in pairs.items():
        assert bg != {wnid}
        by_split[split][wnid] = next(iter(bg))
    assert set(by_split) == {"train", "val", "test"}
    # train and val are one run of the reference, test another: each run draws its own pairing
    assert by_split["train"] == by_split["val"] and len(by_split["train"]) == len(by_split["test"]) == len(CLASSES)
    # recorded where a user looks: groups.json per split, manifest.json, `bgforge inspect`
    groups = json.loads((out / "groups.json").read_text())
    assert all(groups[s]["background_pairing"] == by_split[s] for s in by_split)
    construction = json.loads((out / "manifest.json").read_text())["construction"]
    assert construction["random_background"] == "per_class" and construction["background_pairing"]["test"] == by_split["test"]
    from bgforge.report.inspect import inspect_output, render_html, render_text

    report = inspect_output(out)
    text = render_text(report)
    assert "background pairing of the R groups (per_class; " in text
    # every wnid of the pairing carries its class name, the background classes' included
    names = {r["wnid"]: r["class_name"] for r in rows} | {r["bg_class"]: r["bg_class_name"] for r in rows}
    for fg, bg in by_split["test"].items():
        assert f"{fg} ({names[fg]}) -> {bg} ({names[bg]})" in text
    # what HSI varies is the group: no label x bg_class association (1.0 by construction), but groups
    # per class in the recipe's order, and O / R, difficulty, size and position counts
    train = report["splits"]["train"]
    assert report["attribute"] is None and "matrix" not in train and "Cramér" not in text
    (table,) = train["tables"]
    assert (table["rows_field"], table["columns_field"]) == ("class_name", "group")
    assert table["columns"] == [g for g in ("CeO-56", "CeO-84", "CeO-112", "CeR-56", "CeR-84", "CeR-112", "CoO-56",
                                            "CoO-84", "CoO-112", "CoR-56", "CoR-84", "CoR-112") if g in table["columns"]]
    assert sorted(table["rows"]) == sorted({r["class_name"] for r in rows})
    cell = table["cells"][0][0]
    assert cell == sum(r["split"] == "train" and r["class_name"] == table["rows"][0] and r["group"] == table["columns"][0]
                       for r in rows)
    assert set(train["counts"]) == {"background", "difficulty", "size", "position"}
    assert sum(train["counts"]["background"].values()) == train["samples"]
    assert list(train["groups"]) == table["columns"]  # the recipe's group order, not the text order
    assert list(report["splits"]) == ["train", "val", "test"]
    # the page keeps wide tables inside a scrolling box
    page = render_html(report, out)
    assert page.count("<div class='scroll'>") >= 3 * len(report["splits"]) and "overflow:auto" in page


@pytest.mark.slow
def test_one_background_image_per_source_image_across_its_r_groups(hsi):
    _, rows = hsi
    bg_of = defaultdict(set)
    for r in rows:
        if r["background"] == "random":
            bg_of[(r["split"], r["wnid"], r["fg_key"])].add(r["bg_key"])
    assert {len(v) for v in bg_of.values()} == {1}
    shared = [k for k in bg_of if sum(1 for r in rows if (r["split"], r["wnid"], r["fg_key"]) == k
                                      and r["background"] == "random") > 1]
    assert shared, "some image should sit in several R groups"
    per_class = defaultdict(list)   # drawn without replacement: no two images of a class share one
    for (split, wnid, _), bgs in bg_of.items():
        per_class[(split, wnid)] += list(bgs)
    assert all(len(v) == len(set(v)) for v in per_class.values())


@pytest.mark.slow
def test_only_background_images_are_inpainted(hsi):
    out, rows = hsi
    inpainted = {key for p in sorted((out / "backgrounds" / "shards").glob("*.tar")) for key, _ in iter_shard(p)}
    assert inpainted == {r["bg_key"] for r in rows}
    assert {r["fg_key"] for r in rows} - inpainted, "an R-only foreground image needs no background"


@pytest.mark.slow
def test_last_box_is_pasted_and_bicubic_is_the_filter(hsi, inet):
    out, rows = hsi
    boxes = {img.key: img.boxes for split in ("train", "val") for img in ImageNetSource(inet).images(split)}
    plan_boxes = {}
    for p in sorted((out / "shards").glob("*.tar")):
        for _, files in iter_shard(p):
            meta = json.loads(files["json"])
            plan_boxes[meta["fg_key"]] = meta["fg_box"]
    multi = [k for k in plan_boxes if len(boxes.get(k, ())) > 1]
    assert multi, "the synthetic tree should have images with several boxes"
    for k in multi:
        assert plan_boxes[k] == [round(float(v), 2) for v in boxes[k][-1]]
    recipe = json.loads((out / "manifest.json").read_text())["recipe"]["params"]
    assert (recipe["resampling"], recipe["object_box"], recipe["remove_objects"]) == ("bicubic", "last", "sequential")
    assert object_box([[0, 0, 50, 50], [0, 0, 5, 5]]) == [0, 0, 5, 5]
    assert object_box([[0, 0, 50, 50], [0, 0, 5, 5]], "largest") == [0, 0, 50, 50]


def test_per_sample_backgrounds_stay_one_set_away(inet, tmp_path):
    rows = build_hsi(inet, tmp_path / "o", "random_background=per_sample", "classes=[n01440764, n01443537, n01484850]")
    classes = defaultdict(set)
    for r in rows:
        if r["background"] == "random":
            classes[r["wnid"]].add(r["bg_class"])
    assert max(len(v) for v in classes.values()) > 1
    with pytest.raises(BgforgeError, match="random_background must be"):
        build_hsi(inet, tmp_path / "bad", "random_background=per_image")


# ---------------------------------------------------------------- sequential removal (PAPERS §4)
class RecordingSegmenter(BoxSegmenter):
    """The box segmenter, keeping a copy of every image it was asked to segment."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def segment(self, images, requests):
        self.seen += [(img.copy(), np.asarray(req.boxes).tolist()) for img, req in zip(images, requests)]
        return super().segment(images, requests)


@pytest.fixture
def two_objects(tmp_path):
    image = np.full((64, 96, 3), 90, np.uint8)
    image[:, :, 1] = np.linspace(40, 200, 96).astype(np.uint8)
    image[10:30, 10:30] = (230, 20, 20)
    image[30:50, 50:80] = (20, 20, 230)
    path = tmp_path / "two.png"
    Image.fromarray(image).save(path)
    boxes = [[10, 10, 30, 30], [50, 30, 80, 50]]
    return image, Sample(key="two", split="all", inputs={"image": str(path)}, meta={"boxes": boxes})


def test_sequential_removal_segments_the_second_box_on_the_inpainted_image(two_objects):
    image, sample = two_objects
    seg = RecordingSegmenter()
    out = inpaint_batch(CvInpainter("telea"), seg, [sample], {"remove_objects": "sequential", "dilation": 5,
                                                             "image_format": "png"})[0]
    assert [boxes for _, boxes in seg.seen] == [[sample.meta["boxes"][0]], [sample.meta["boxes"][1]]]
    first, second = seg.seen[0][0], seg.seen[1][0]
    assert np.array_equal(first, image)
    assert not np.array_equal(second[10:30, 10:30], image[10:30, 10:30])   # object 1 already gone
    assert np.array_equal(second[35:45, 55:75], image[35:45, 55:75])        # object 2 still there
    assert out.meta["one_by_one"] is True and out.meta["num_objects"] == 2

    union = RecordingSegmenter()
    inpaint_batch(CvInpainter("telea"), union, [sample], {"remove_objects": "union", "dilation": 5})
    assert len(union.seen) == 1 and np.array_equal(union.seen[0][0], image)


# ---------------------------------------------------------------- Waterbirds JPEG quality (PAPERS §1)
def test_waterbirds_jpegs_carry_pil_default_q75_tables(cub_root, places_root, tmp_path):
    assert recipemod.load("waterbirds-100").params["jpeg_quality"] == 75
    bgforge.build("waterbirds-95", tmp_path / "o", roots={"cub": cub_root, "places": places_root},
                  run=bgforge.RunConfig(progress=False))
    reference = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 60, 30)).save(reference, format="JPEG")   # PIL's default: what the reference did
    ref = Image.open(reference)
    shard = sorted((tmp_path / "o" / "shards").glob("*.tar"))[0]
    _, files = next(iter_shard(shard))
    out = Image.open(io.BytesIO(files["jpg"]))
    assert out.quantization == ref.quantization
    assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(ref) == 2   # 4:2:0


# ---------------------------------------------------------------- ImageNet-9 class order (PAPERS §5)
def test_in9_class_order(tmp_path):
    names = ["fish", "dog", "primate", "bird", "wheeled_vehicle", "reptile", "carnivore", "insect", "musical instrument"]
    assert class_order(names)[:3] == ["dog", "bird", "wheeled_vehicle"] and class_order(names)[-1] == "fish"
    assert class_order(["08_fish", "00_dog", "01_bird"]) == ["00_dog", "01_bird", "08_fish"]
    assert class_order([3, 10, 1]) == ["1", "3", "10"]
    order_file = tmp_path / "order.txt"
    order_file.write_text("zebra\napple\nmango\n")
    given = read_class_order(str(order_file))
    assert class_order(["apple", "mango", "zebra"], given) == ["zebra", "apple", "mango"]
    with pytest.raises(BgforgeError, match="lacks the label"):
        class_order(["apple", "kiwi"], given)


# ---------------------------------------------------------------- ASPIRE (PAPERS §6)
def test_aspire_ranking_single_mask_and_threshold_defaults():
    rows = [{"edit": "remove", "class_name": "c", "phrase": "grass", "flip": i < 3, "correct_before": True, "key": f"g{i}"}
            for i in range(6)]
    rows += [{"edit": "remove", "class_name": "c", "phrase": "water", "flip": True, "correct_before": True,
              "key": f"w{i}"} for i in range(2)]
    assert [t["phrase"] for t in build_report(rows)["classes"]["c"]["top"]] == ["water", "grass"]   # 2/2 before 3/6
    assert [t["phrase"] for t in build_report(rows, rank="frequency")["classes"]["c"]["top"]] == ["grass", "water"]

    from bgforge.backends.grounding_dino import GroundedSamSegmenter, GroundingDinoDetector
    from bgforge.cli.edit import edit_cmd
    from bgforge.cli.stages import segment_cmd

    assert inspect.signature(GroundingDinoDetector.__init__).parameters["box_threshold"].default == 0.3
    assert inspect.signature(GroundedSamSegmenter.__init__).parameters["box_threshold"].default == 0.3
    assert inspect.signature(segment_cmd).parameters["box_threshold"].default == 0.3
    edit = inspect.signature(edit_cmd).parameters
    assert edit["box_threshold"].default == 0.3 and edit["multimask"].default is False
    assert edit["top_k_rank"].default == "reference"


# ---------------------------------------------------------------- BAP (PAPERS §3)
def test_bap_class_balanced_subset_and_derived_split_note():
    items = [("a", i) for i in range(10)] + [("b", i) for i in range(2)] + [("c", i) for i in range(5)]
    kept = seeded_subset(items, 9, rng_for(0, "foregrounds"), lambda it: it[0])
    counts = {c: sum(1 for k, _ in kept if k == c) for c in "abc"}
    assert sum(counts.values()) == 9 and counts["b"] == 2 and sorted([counts["a"], counts["c"]]) == [3, 4]
    assert kept == sorted(kept, key=items.index)
    assert class_quotas({"a": 30, "b": 30}, 40, rng_for(0, "x")) == {"a": 20, "b": 20}
    assert seeded_subset(items, 50, rng_for(0, "x"), lambda it: it[0]) == items
    params = recipemod.load("bap-waterbirds").params
    assert params["balance_classes"] is True and params["max_foregrounds"] == 5000
    assert derived_leakage_split(params)
    assert "DERIVED" in BapPlanner().on_finalize(None, params)["notes"][0]
    assert BapPlanner().on_finalize(None, {**params, "exclude_metadata": "wb/metadata.csv"}) is None


# ---------------------------------------------------------------- HSI class pairing (Corner_Cases create_dataset.py)
def _wnids(n):
    return [f"n{10000000 + i:08d}" for i in range(n)]


def test_hsi_pairing_stays_in_blocks_of_100_sorted_wnids_and_may_pair_with_itself():
    from bgforge.planners.hsi_backgrounds import pair_classes

    wnids = _wnids(1000)  # ImageNet's 1000 classes in the reference's 10 jobs of 100
    pairing = pair_classes(wnids, {}, seed=1, scope="block", block=100, self_pairing=True)
    order = sorted(wnids)
    for w, other in pairing.items():
        assert order.index(w) // 100 == order.index(other) // 100  # the reference's job slices of 100
    selves = sum(w == o for w, o in pairing.items())
    assert 0 < selves < 25  # P = 9/999 per class: about 9 of 1000
    anywhere = pair_classes(wnids, {}, seed=1, scope="all", self_pairing=False)
    assert all(w != o for w, o in anywhere.items())
    assert any(order.index(w) // 100 != order.index(o) // 100 for w, o in anywhere.items())


def test_hsi_pairing_per_run_gives_test_its_own_pairing_and_shared_keeps_one():
    from bgforge.planners.hsi_backgrounds import RandomBackgrounds

    wnids = _wnids(40)
    pools = {w: {"train": [w], "val": [w], "test": [w]} for w in wnids}
    per_run = RandomBackgrounds("per_class", pools, wnids, {}, 3, {"pairing": "per_run", "pairing_scope": "block",
                                                                    "self_pairing": True})
    assert per_run.pairing("train") == per_run.pairing("val")
    assert per_run.pairing("test") != per_run.pairing("train")
    shared = RandomBackgrounds("per_class", pools, wnids, {}, 3, {"pairing": "shared"})
    assert shared.pairing("test") == shared.pairing("train")


def test_hsi_ar_sizes_truncate_twice_as_the_reference():
    """create_dataset_preserve_AR.py's resize_short_side_safe_pil: int(w * scale), int(h * scale), then
    int() again after the 224 cap. Short sides 55, 71, 83, 97 give s - 1 at s = 56; rounding gives s."""
    from bgforge.stages.paste import fg_size

    for short in (55, 71, 83, 97):
        assert min(fg_size(short, 150, 56, True, 224, "truncate")) == 55
        assert min(fg_size(short, 150, 56, True, 224, "round")) == 56
    assert fg_size(150, 55, 84, True, 224, "truncate") == (224, 82)   # capped: int(int(229.09) * 224/229)
    assert fg_size(60, 150, 56, True, 224, "truncate") == (56, 140)


def test_hsi_crop_truncates_the_float32_normalised_box():
    from PIL import Image

    from bgforge.stages.paste import crop_box

    image = Image.new("RGB", (500, 375))
    # 251 / 500 and 253 / 500 in float32, times 500, fall just under the integer: int() gives 250 and 252
    assert crop_box(image, [251, 10, 400, 200], "truncate").size == (150, 190)
    assert crop_box(image, [251, 10, 400, 200], "round").size == (149, 190)
    assert crop_box(image, [149, 10, 300, 200], "truncate").size == (151, 190)  # most integers survive


def test_hsi_backgrounds_take_a_jpeg_q75_round_trip_before_the_resize():
    from bgforge.io.encoding import Encoding
    from bgforge.io.images import decode, encode
    from bgforge.records import Sample
    from bgforge.stages.inpaint import _encode

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    s = Sample(key="k", split="backgrounds", inputs={}, meta={})
    run = {"inpainter": "telea", "segmenter": "box", "dilation": 15, "one_by_one": True, "encoding": Encoding("png")}
    hole = np.zeros((64, 80), bool)
    params = {"image_format": "png", "resize": 32, "resampling": "bicubic"}
    plain = decode(_encode(s, img, hole, np.zeros((0, 64, 80), bool), params, run).files["png"])
    stored = decode(_encode(s, img, hole, np.zeros((0, 64, 80), bool), {**params, "stored_jpeg_quality": 75},
                            run).files["png"])
    from PIL import Image

    want = np.asarray(Image.fromarray(decode(encode(img, "jpg", quality=75))).resize((32, 32), Image.BICUBIC))
    assert np.array_equal(stored, want) and not np.array_equal(stored, plain)
