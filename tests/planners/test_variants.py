"""ImageNet-9 background variants: every variant checked pixel by pixel on hand-made 8x8 images."""

import json

import numpy as np
import pytest
from helpers import build
from PIL import Image
from typer.testing import CliRunner

from bgforge.choices import VARIANTS
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.planners.variants import class_order, parse_variants
from bgforge.recipe import Recipe
from bgforge.stages.variants import tile_fill, tile_strip

BOX = [2, 1, 6, 5]          # x0, y0, x1, y1: columns 2..5, rows 1..4
FG = (slice(2, 4), slice(3, 5))  # a 2x2 foreground inside the box: rows 2..3, columns 3..4


def scene(seed: int) -> np.ndarray:
    """8x8 RGB whose pixels all differ, so every copied pixel can be traced to its source."""
    yy, xx = np.mgrid[0:8, 0:8]
    return np.stack([yy * 8 + xx + 1, (seed * 37 + yy * 3 + xx * 5) % 200 + 20, np.full((8, 8), seed * 20 + 7)],
                    axis=-1).astype(np.uint8)


def fg_mask() -> np.ndarray:
    m = np.zeros((8, 8), bool)
    m[FG] = True
    return m


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Six 8x8 images, labels 2, 9 and 10 (numeric order: 2 < 9 < 10), two per class; all with the same
    box and 2x2 mask except `nomask` (label 9), which only has the box."""
    root = tmp_path_factory.mktemp("in9")
    rows = []
    for j, label in enumerate([2, 2, 9, 9, 10, 10]):
        name = f"im{j}"
        Image.fromarray(scene(j)).save(root / f"{name}.png")
        row = {"key": name, "path": f"{name}.png", "label": label, "boxes": [BOX]}
        if j != 3:
            Image.fromarray(fg_mask().astype(np.uint8) * 255).save(root / f"{name}_mask.png")
            row["mask"] = f"{name}_mask.png"
        else:
            row["key"] = "nomask"
        rows.append(row)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def run(tiny, out, variants="all", seed=0, workers=1):
    # bgforge's own rules (masks as given, docs/variants.md); the reference construction is
    # tests/stages/test_variants_reference.py's
    params = {"input": str(tiny), "manifest": str(tiny / "manifest.jsonl"), "variants": variants, "seed": seed,
              "image_format": "png", "construction": "bgforge"}
    build(Recipe(name="variants", planner="variants", params=params), BuildContext(), out, progress=False,
          workers=workers)
    got = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        for key, files in iter_shard(tar):
            got[key] = (decode(files["png"]), json.loads(files["json"]), files["cls"])
    return got


@pytest.fixture(scope="module")
def all_variants(tiny, tmp_path_factory):
    return run(tiny, tmp_path_factory.mktemp("v") / "o")


def expected_only_bg_t(img: np.ndarray) -> np.ndarray:
    # Box rectangle R = rows 1..4, columns 2..5 of an 8x8 image. Strips without box pixels: above R 1x8 = 8 px,
    # below R rows 5..7 x 8 columns = 24 px, left 8x2 = 16, right 8x2 = 16. The largest is the one below, a 3x8
    # tile laid from R's top-left corner: pixel (y, x) of the box <- image[5 + (y - 1) % 3, (x - 2) % 8].
    out = img.copy()
    for y in range(1, 5):
        for x in range(2, 6):
            out[y, x] = img[5 + (y - 1) % 3, (x - 2) % 8]
    return out


def test_tiling_rule_by_hand():
    img = scene(1)
    box = np.zeros((8, 8), bool)
    box[1:5, 2:6] = True
    assert tile_strip(box) == (5, 8, 0, 8)
    got = tile_fill(img, box)
    assert np.array_equal(got, expected_only_bg_t(img))
    # literal spot checks: (row 1, col 2) <- (5, 0); (row 4, col 5) <- (5 + 3 % 3, 3) = (5, 3); (row 3, col 4) <- (7, 2)
    assert tuple(got[1, 2]) == tuple(img[5, 0]) and tuple(got[4, 5]) == tuple(img[5, 3])
    assert tuple(got[3, 4]) == tuple(img[7, 2])
    # A box touching the bottom: the strip above it wins (5x8 = 40 px > left 8x3 = 24)
    box2 = np.zeros((8, 8), bool)
    box2[5:8, 3:6] = True
    assert tile_strip(box2) == (0, 5, 0, 8)
    whole = np.ones((8, 8), bool)
    assert tile_strip(whole) is None


def test_each_variant_pixelwise(all_variants):
    img = scene(0)
    fg = fg_mask()
    box = np.zeros((8, 8), bool)
    box[1:5, 2:6] = True
    got = {v: all_variants[f"im0-{v}"][0] for v in VARIANTS}
    assert np.array_equal(got["original"], img)
    assert np.array_equal(got["only_bg_b"], np.where(box[..., None], 0, img))
    assert np.array_equal(got["only_bg_t"], expected_only_bg_t(img))
    assert np.array_equal(got["no_fg"], np.where(fg[..., None], 0, img))
    assert np.array_equal(got["only_fg"], np.where(fg[..., None], img, 0))
    for v in ("mixed_same", "mixed_rand", "mixed_next"):
        meta = all_variants[f"im0-{v}"][1]
        bg_img = scene(int(meta["bg_key"][2:])) if meta["bg_key"] != "nomask" else scene(3)
        expect = np.where(fg[..., None], img, expected_only_bg_t(bg_img))
        assert np.array_equal(got[v], expect), v


def test_mixed_backgrounds_follow_the_class_rules(all_variants):
    order = ["2", "9", "10"]  # numeric, not text, order
    for key, (_, meta, cls) in all_variants.items():
        label, bg_label = str(meta["label"]), str(meta["bg_label"])
        assert int(cls) == order.index(label) == meta["class_index"]
        assert meta["split_name"] == meta["variant"] and key == f"{meta['source_key']}-{meta['variant']}"
        if meta["variant"] == "mixed_same":
            # each class has two images: the background is always the other one
            assert bg_label == label and meta["bg_key"] != meta["source_key"]
        elif meta["variant"] == "mixed_next":
            assert bg_label == order[(order.index(label) + 1) % 3]   # 2 -> 9, 9 -> 10, 10 -> 2 (wraps)
        elif meta["variant"] == "mixed_rand":
            assert meta["bg_key"] != meta["source_key"]
        else:
            assert meta["bg_key"] == meta["source_key"]
    assert {all_variants[f"im{j}-mixed_next"][1]["bg_label"] for j in (4, 5)} == {2}


def test_box_only_image_uses_the_box_as_foreground(all_variants):
    img = scene(3)
    box = np.zeros((8, 8), bool)
    box[1:5, 2:6] = True
    assert np.array_equal(all_variants["nomask-no_fg"][0], np.where(box[..., None], 0, img))
    assert np.array_equal(all_variants["nomask-only_fg"][0], np.where(box[..., None], img, 0))


def test_subset_seed_and_determinism(tiny, tmp_path, all_variants):
    a = run(tiny, tmp_path / "a", variants="only_fg,mixed_rand", seed=0, workers=2)
    assert {m["variant"] for _, m, _ in a.values()} == {"only_fg", "mixed_rand"}
    assert len(a) == 12
    run(tiny, tmp_path / "b", variants="mixed_rand,only_fg", seed=0)  # other order, one worker: same bytes
    def shards(d):
        return {p.name: p.read_bytes() for p in sorted((d / "shards").glob("*.tar"))}
    assert shards(tmp_path / "a") == shards(tmp_path / "b")
    for key in a:  # the same picks as in the full run with the same seed
        assert a[key][1]["bg_key"] == all_variants[key][1]["bg_key"]

    def picks(seed):
        got = run(tiny, tmp_path / f"s{seed}", variants="mixed_rand", seed=seed)
        return [got[k][1]["bg_key"] for k in sorted(got)]

    assert any(picks(0) != picks(s) for s in (1, 2, 3))


def test_class_order_and_variant_parsing():
    assert class_order([10, 2, 9, 2]) == ["2", "9", "10"]
    assert class_order(["dog", "cat", "10"]) == ["10", "cat", "dog"]
    assert parse_variants("all") == list(VARIANTS)
    assert parse_variants("mixed_next,original") == ["original", "mixed_next"]
    with pytest.raises(BgforgeError, match="unknown variant"):
        parse_variants("only_bg,original")


def test_cli_writes_one_split_per_variant(tiny, tmp_path):
    res = CliRunner().invoke(app, ["variants", "--input", str(tiny), "--manifest", str(tiny / "manifest.jsonl"),
                                   "--out", str(tmp_path / "o"), "--variants", "original,only_bg_t", "-q",
                                   "--construction", "bgforge"])
    assert res.exit_code == 0, res.output
    groups = json.loads((tmp_path / "o" / "groups.json").read_text())
    assert set(groups) == {"original", "only_bg_t"}
    assert groups["only_bg_t"]["groups"] == {"10": 2, "2": 2, "9": 2}
    res = CliRunner().invoke(app, ["variants", "--input", str(tiny), "--out", str(tmp_path / "p"), "--variants", "bogus"])
    assert res.exit_code == 2 and "unknown variant" in res.output


def test_in9_class_order_accepts_the_reference_spellings():
    """in9_classes.txt spells the classes Dog, Bird, Vehicle, Reptile, Carnivore, Insect, Instrument,
    Primate, Fish: the IN-9 index order, not alphabetical (mixed_next depends on it)."""
    from bgforge.planners.variants import class_order

    reference = ["Dog", "Bird", "Vehicle", "Reptile", "Carnivore", "Insect", "Instrument", "Primate", "Fish"]
    assert class_order(sorted(reference)) == reference
    long = ["dog", "bird", "wheeled vehicle", "reptile", "carnivore", "insect", "musical instrument", "primate", "fish"]
    assert class_order(sorted(long)) == long
    folders = [f"{i:02d}_{n.replace(' ', '_')}" for i, n in enumerate(long)]
    assert class_order(folders[::-1]) == folders
