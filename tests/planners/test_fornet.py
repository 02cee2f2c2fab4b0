"""ForNet (tobna/ForAug): full-scale group counts from the reference's rules, the WordNet prompts,
the recombination arithmetic against fornet.py's formulas, and the demo builds."""

import csv
import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import build
from PIL import Image

from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext
from bgforge.planners.fornet import Grid, fornet_cells
from bgforge.recipe_params import FornetParams
from bgforge.sources import wordnet
from bgforge.stages.fornet import bates, merge_masks, recombine

N_CLASSES = 1000
VAL_PER_CLASS = 50            # ILSVRC-2012 val: 50,000 images, 50 per class
TRAIN_TOTAL = 1_281_167       # ILSVRC-2012 train


@pytest.fixture(scope="module")
def full_val(tmp_path_factory):
    """An ImageNet tree of the real val size: 50,000 empty JPEG files, their boxes in LOC_val_solution.csv,
    and a WordNet is_a file for the 1,000 classes (planning reads no pixels)."""
    root = tmp_path_factory.mktemp("inet")
    (root / "train").mkdir()
    (root / "val").mkdir()
    wnids = [f"n{10_000_000 + i:08d}" for i in range(N_CLASSES)]
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{w} class {i}\n" for i, w in enumerate(wnids)))
    rows = ["ImageId,PredictionString"]
    for j in range(N_CLASSES * VAL_PER_CLASS):
        key = f"ILSVRC2012_val_{j + 1:08d}"
        (root / "val" / f"{key}.JPEG").touch()
        rows.append(f"{key},{wnids[j % N_CLASSES]} 1 1 9 9 ")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    wn = wordnet.write_synthetic(root / "wordnet", {w: f"class {i}" for i, w in enumerate(wnids)})
    return root, wn


@pytest.mark.slow
def test_fornet_eval_full_scale_groups(full_val):
    """ForAug's ForNet(train=False, fg_in_nonant=n, size_fact=f, background_combination=b) has one sample per
    foreground (fornet.py:269-276), so each (n, f, b) cell of the grid holds every val foreground once."""
    root, wn = full_val
    r = recipemod.apply_overrides(recipemod.load("fornet-eval"),
                                  [f"wordnet={wn}", "segmenter=grounded-sam", "inpainter=lama"])
    planned = planners.get("fornet_eval").plan(r, BuildContext(roots={"imagenet": str(root)}))
    nonants, sizes, sources = range(9), [0.5, 0.75, 1.0, 1.25, 1.5], ["orig", "same", "all"]
    expected = {f"n{n}-s{round(f * 100):03d}-{b}": N_CLASSES * VAL_PER_CLASS
                for n in nonants for f in sizes for b in sources}
    samples = planned.samples
    assert len(samples) == 9 * 5 * 3 * 50_000 == 6_750_000
    assert {samples[i].meta["group"] for i in range(0, len(samples), 9973)} <= set(expected)
    assert Counter(samples.split_of(r) for r in samples.rows) == {"val": 6_750_000}
    # every group exactly once per foreground: sample i is foreground i // 135 in cell i % 135
    per_group = Counter()
    first = samples[0].meta["fg_key"]
    for i in range(135):
        s = samples[i]
        assert s.meta["fg_key"] == first
        per_group[s.meta["group"]] += 1
    assert set(per_group) == set(expected) and set(per_group.values()) == {1}
    assert len({samples[i * 135].meta["fg_key"] for i in range(0, 50_000, 997)}) == len(range(0, 50_000, 997))
    assert len(planned.prerequisites[0].samples) == 50_000      # one pieces sample per val image
    piece = planned.prerequisites[0].samples[0]
    assert piece.meta["text"].startswith("a class ") and ", a type of " in piece.meta["text"]


@pytest.mark.slow
def test_fornet_full_scale_one_composite_per_foreground():
    """`fornet`, ForAug's README full dataset: len(ForNet) = number of foregrounds per split (fornet.py:269-276)."""
    img = SimpleNamespace(key="k", path="p", boxes=())
    recs = [("train", f"n{c:08d}", img) for c in range(N_CLASSES) for _ in range(TRAIN_TOTAL // N_CLASSES)]
    recs += [("train", f"n{c:08d}", img) for c in range(TRAIN_TOTAL % N_CLASSES)]
    recs += [("val", f"n{c:08d}", img) for c in range(N_CLASSES) for _ in range(VAL_PER_CLASS)]
    p = recipemod.load("fornet").params
    grid = Grid(recs, fornet_cells(FornetParams.from_params(p)))
    counts = Counter((grid.split_of(i), grid.group_of(i)) for i in grid.rows())
    assert counts == {("train", "all"): 1_281_167, ("val", "all"): 50_000}
    grid2 = Grid(recs[:10], fornet_cells(FornetParams.from_params({**p, "copies": 3})))
    assert len(grid2) == 30 and [grid2.parts(i)[3] for i in range(3)] == ["-c0", "-c1", "-c2"]


def test_recipe_defaults_are_foraugs():
    """fornet.py:39-48 defaults, pruning_ratio 1.1 from the README's full dataset."""
    p = recipemod.load("fornet").params
    assert (p["background_combination"], p["fg_scale_jitter"], p["fg_size_mode"], p["fg_bates_n"],
            p["mask_smoothing_sigma"], p["rel_jut_out"], p["pruning_ratio"]) == ("all", 0.3, "range", 1, 4.0, 0.0, 1.1)
    assert p["parent_labels"] == 2   # segment_imagenet.py:88-90


def test_wordnet_formats_and_prompts(tmp_path):
    (tmp_path / "wordnet.is_a.txt").write_text("n00000001 n00000002\nn00000002 n00000003\nn00000009 n00000003\n")
    (tmp_path / "words.txt").write_text("n00000001\tentity\nn00000002\tanimal, beast\nn00000003\tsea_otter\n")
    wn = wordnet.load(tmp_path / "wordnet.is_a.txt")
    assert wn.parents("n00000003") == ["n00000002", "n00000001"]    # the first hypernym listed
    # segment_imagenet.py:61-66 and 181-186: the class keeps its underscores, parents get spaces
    assert wn.prompts("n00000003") == ["a sea_otter, a type of animal.", "an animal, a type of entity.", "an entity."]
    assert wn.prompts("n00000003", 1, parent_in_prompt=False) == ["a sea_otter.", "an animal."]
    tree = {"root": {}, "nodes": {"3": {"name": "sea_otter.n.01", "parent_id": 2},
                                  "2": {"name": "animal.n.01", "parent_id": None}}, "parentless": []}
    (tmp_path / "tree.json").write_text(json.dumps(tree))
    wt = wordnet.load(tmp_path / "tree.json")
    assert wt.prompts("n00000003") == ["a sea_otter, a type of animal.", "an animal."]
    (tmp_path / "bad.txt").write_text("n1 n2 n3\n")
    with pytest.raises(BgforgeError, match="bad.txt:1: expected"):
        wordnet.load(tmp_path / "bad.txt")
    with pytest.raises(BgforgeError, match="does not exist"):
        wordnet.load(tmp_path / "missing.txt")
    with pytest.raises(BgforgeError, match="no WordNet file"):
        wordnet.load(None)


@pytest.mark.slow
def test_text_prompted_segmenter_needs_wordnet(full_val):
    root, _ = full_val
    r = recipemod.apply_overrides(recipemod.load("fornet-eval"), ["segmenter=grounded-sam", "inpainter=lama"])
    with pytest.raises(BgforgeError, match="set `wordnet`"):
        planners.get("fornet_eval").plan(r, BuildContext(roots={"imagenet": str(root)}))


def test_merge_masks_is_segment_imagenets_rule():
    a = np.zeros((10, 10), bool)
    a[:, :9] = True            # 90 px
    b = np.zeros((10, 10), bool)
    b[:, :10] = True           # 100 px: IoU 0.9, not > 0.9 -> kept apart
    c = np.zeros((10, 10), bool)
    c[:5] = True
    assert len(merge_masks([a, b, c])) == 3
    b2 = b.copy()
    b2[0, 9] = False           # IoU 90/99 > 0.9 -> merged into the first
    out = merge_masks([a, b2, c])
    assert len(out) == 2 and out[0].sum() == 99 and (out[1] == c).all()


def test_bates_draws():
    rng = np.random.default_rng(0)
    assert bates(rng, 0) == 0.5
    zs = [bates(np.random.default_rng(i), 12) for i in range(200)]
    assert abs(np.mean(zs) - 0.5) < 0.03 and np.std(zs) < 0.12   # Bates(12): sd = 1/sqrt(144) ~ 0.083
    zw = [bates(np.random.default_rng(i), -12) for i in range(200)]
    assert np.mean([abs(z - 0.5) for z in zw]) > 0.4             # wrapped to the edges


def test_recombine_follows_fornet_formulas():
    """No jitter, no blur, centre position, nonant 4: size and offset as fornet.py:319-390 compute them."""
    fg = Image.new("RGBA", (40, 20), (255, 0, 0, 255))
    bg = Image.new("RGB", (300, 240), (0, 0, 255))
    p = {"fg_scale_jitter": 0.0, "fg_size_mode": "max", "fg_bates_n": 0, "mask_smoothing_sigma": 0.0}
    out, where = recombine(fg, bg, 0.1, 0.2, FornetParams(**p), np.random.default_rng(0), nonant=4, size_fact=1.5, train=False)
    area = 300 * 240 / 9
    scale = 0.2 / 1.0 * 1.5
    gw, gh = round(np.sqrt(area * scale * 40 / 20)), round(np.sqrt(area * scale * 20 / 40))
    x_min, x_max = 300 / 3, 2 * 300 / 3 - gw
    y_min, y_max = 240 / 3, 2 * 240 / 3 - gh
    ox, oy = round(0.5 * (x_max - x_min) + x_min), round(0.5 * (y_max - y_min) + y_min)
    assert where["paste_box"] == [ox, oy, ox + gw, oy + gh]
    arr = np.asarray(out)
    assert (arr[oy:oy + gh, ox:ox + gw] == [255, 0, 0]).all()
    assert (arr[:oy] == [0, 0, 255]).all() and (arr[oy + gh:] == [0, 0, 255]).all()
    # an object larger than the background is centre-cropped in eval (fornet.py:352-355)
    out2, where2 = recombine(fg, bg, 0.9, 0.9, FornetParams(**{**p, "fg_size_mode": "range"}), np.random.default_rng(0),
                             size_fact=4.0, train=False)
    x0, y0, x1, y1 = where2["paste_box"]
    gw2, gh2 = round(np.sqrt(300 * 240 * 3.6 * 2)), round(np.sqrt(300 * 240 * 3.6 / 2))   # 720 x 360
    assert (x1 - x0, y1 - y0) == (min(gw2, 300), min(gh2, 240)) and (x0, y0) == (0, 0)


@pytest.mark.slow
def test_demo_builds_and_eval_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("BGFORGE_CACHE", str(tmp_path / "cache"))
    from bgforge.api import with_demo_params
    from bgforge.eval import headlines

    r = with_demo_params(recipemod.apply_overrides(recipemod.load("fornet-eval"),
                                                   ["size_factors=[0.5,1.0]", "nonants=[0,4]"]), [])
    out = tmp_path / "eval"
    build(r, BuildContext(demo=True), out)
    rows = list(csv.DictReader((out / "metadata.csv").open()))
    assert Counter(x["group"] for x in rows) == {f"n{n}-s{s}-{b}": 6 for n in (0, 4) for s in ("050", "100")
                                                 for b in ("orig", "same", "all")}
    assert all(x["bg_key"] == x["fg_key"] for x in rows if x["bg_source"] == "orig")
    assert all(x["bg_class"] == x["wnid"] for x in rows if x["bg_source"] == "same")
    # ForAug's metrics from the groups: wrong on every `all` background of nonant 0 only
    data = SimpleNamespace(rows=rows, labels=[int(x["label"]) for x in rows])
    preds = [(y + 1) % 3 if x["bg_source"] == "all" and x["nonant"] == "0" else y
             for x, y in zip(rows, data.labels)]
    res = headlines.COMPUTE["fornet_eval"](data, preds, {})
    assert res["background_robustness"] == pytest.approx(0.5)        # all: 12/24 right, same: 24/24
    assert res["centre_bias"] == pytest.approx(1 - (24 / 36) / 1.0)   # nonant 0: 24 of 36 right, centre all
    assert res["size_bias"] == pytest.approx(0.0)


class _Pieces:
    """A pieces phase's output as the chain reads it: object.png per key (some keys failed)."""

    def __init__(self, masks: dict):
        from bgforge.io.encoding import encode_mask

        self.files = {k: encode_mask(m) for k, m in masks.items()}

    def __contains__(self, key):
        return key in self.files

    def has_member(self, key, ext):
        return key in self.files and ext == "object.png"

    def read(self, key, ext, stage="read_background"):
        return self.files[key]


def test_pruning_keeps_the_first_candidate_below_the_ratio():
    """fornet.py:234-241: backgrounds whose object covered >= pruning_ratio are not drawn (only when <= 1.0);
    fornet.py:163-167: with none left, a fallback; orig is never pruned (:477-478)."""
    from bgforge.records import Sample
    from bgforge.stages.fornet import pick_background

    big, small = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    big[:6] = True      # ratio 0.6
    small[:1] = True    # ratio 0.1
    store = _Pieces({"a": big, "b": small, "c": big})

    def sample(cands, source="all"):
        return Sample(key="x", split="val", inputs={"bg_candidates": cands}, meta={"bg_source": source})

    cands = [["gone", "n1"], ["a", "n1"], ["b", "n2"], ["c", "n3"]]
    assert pick_background(store, sample(cands), 0.5, {}) == ("b", "n2", False)
    assert pick_background(store, sample(cands), 1.1, {}) == ("a", "n1", False)     # no pruning: first produced
    assert pick_background(store, sample(cands), 0.05, {}) == ("c", "n3", True)     # none passes: the last one
    assert pick_background(store, sample([["a", "n1"]], "orig"), 0.5, {}) == ("a", "n1", False)
    with pytest.raises(Exception, match="no candidate background"):
        pick_background(store, sample([["gone", "n1"]]), 0.5, {})
