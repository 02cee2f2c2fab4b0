"""SI-Score: full-scale counts from generator_script.py / dataset_generator.py's rules, pixels against PIL."""

import io
import itertools
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
from bgforge.planners.si_score import background_draws, grid, placements
from bgforge.sources import si_score as src
from bgforge.sources.synthetic_si_score import make_si_score_folders
from bgforge.stages.placement import rotated_size

# The released pools' sizes as the paper's appendix D gives them (614 objects, 62 classes, 867
# backgrounds; not checked here): the counts below follow from the rules for any sizes.
N_CLASSES, N_FOREGROUNDS, N_BACKGROUNDS = 62, 614, 867
SHAPES = [(300, 200), (180, 420), (256, 256), (500, 160), (210, 240)]   # the objects' bounding rectangles


@pytest.fixture(scope="module")
def full_scale(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    for i in range(N_FOREGROUNDS):
        w, h = SHAPES[i % len(SHAPES)]
        path = root / "fg" / f"class{i % N_CLASSES:02d}" / f"obj{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (w, h)).save(path)
    (root / "bg").mkdir()
    for b in range(N_BACKGROUNDS):
        (root / "bg" / f"bg{b:04d}.jpg").touch()
    return root


def reference_counts(fgs, coords, areas, rotations, bg, min_pct):
    """dataset_generator.py's loop, written out: product order (:308-315), resize_fg (:106-117),
    rotate with expand (PIL itself, :226-229), top-left (:162-182), pct inside (:185-212), the drop (:483)."""
    counts, rot = Counter(), {}
    for coord, area, angle in itertools.product(coords, areas, rotations):
        for fg in fgs:
            factor = np.sqrt(area / (fg.width * fg.height / (bg[0] * bg[1])))
            w, h = int(fg.width * factor), int(fg.height * factor)
            if (w, h, angle) not in rot:
                rot[w, h, angle] = Image.new("1", (w, h)).rotate(angle, expand=True).size
            rw, rh = rot[w, h, angle]
            x0, y0 = int(int(coord[0] * bg[0]) - rw * 0.5), int(int(coord[1] * bg[1]) - rh * 0.5)
            inside = (min(x0 + rw, bg[0]) - max(x0, 0)) * (min(y0 + rh, bg[1]) - max(y0, 0))
            if inside / (rw * rh) >= min_pct:
                counts[fg.class_name, coord, area, angle] += 2     # num_bgs_per_fg_instance = 2 (script:111)
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name,n_cells", [("si-score-size", 100), ("si-score-rotation", 72), ("si-score-location", 441)])
def test_full_scale_counts_follow_the_reference(full_scale, name, n_cells):
    p = recipemod.load(name).params
    fgs = src.foregrounds(full_scale / "fg")
    coords, areas, rotations = grid(p)
    # generator_script.py:31 (areas), :37 (angles), :49-51 (location steps)
    ref_coords = ([(0.5, 0.5)] if name != "si-score-location"
                  else list(itertools.product(np.arange(0, 1 + 0.05, 0.05), np.arange(0, 1 + 0.05, 0.05))))
    ref_areas = {"si-score-size": list(np.arange(0.01, 1.01, 0.01)), "si-score-rotation": [0.2, 0.5, 0.8, 1.0],
                 "si-score-location": [0.2]}[name]
    ref_rot = list(np.arange(1, 361, 20)) if name == "si-score-rotation" else [0]
    assert (coords, areas, rotations) == (ref_coords, ref_areas, ref_rot)
    assert len(coords) * len(areas) * len(rotations) == n_cells
    bg = tuple(p["bg_resolution"])
    expected = reference_counts(fgs, coords, areas, rotations, bg, p["min_pct_inside_image"])
    draws = background_draws(len(fgs), N_BACKGROUNDS, 2, 0)
    got, ids = Counter(), []
    for pl in placements(fgs, draws, coords, areas, rotations, bg, p["min_pct_inside_image"]):
        if pl is not None:
            got[pl[1].class_name, pl[3], pl[4], pl[5]] += 1
            ids.append(pl[0])
    assert got == expected
    assert len(got) == len(expected)
    assert ids == sorted(ids) and ids[-1] < n_cells * 2 * N_FOREGROUNDS
    if name == "si-score-location":   # min_pct 0: every placement is generated
        assert sum(got.values()) == 441 * 2 * N_FOREGROUNDS and len({k[0] for k in got}) == N_CLASSES


def test_background_draws_are_numpy_seed_zero(full_scale):
    np.random.seed(0)                 # generator_script.py:73, dataset_generator.py:448-449
    expected = [np.random.choice(N_BACKGROUNDS, 2, replace=False).tolist() for _ in range(N_FOREGROUNDS)]
    assert background_draws(N_FOREGROUNDS, N_BACKGROUNDS, 2, 0) == expected


@pytest.mark.slow
def test_full_scale_plan_groups(full_scale):
    r = recipemod.apply_overrides(recipemod.load("si-score-rotation"),
                                  [f"foregrounds={full_scale / 'fg'}", f"backgrounds={full_scale / 'bg'}"])
    samples = planners.get("si_score").plan(r, BuildContext()).samples
    groups = Counter(s.meta["group_name"] for s in samples)
    fgs = src.foregrounds(full_scale / "fg")
    expected = reference_counts(fgs, [(0.5, 0.5)], [0.2, 0.5, 0.8, 1.0], list(np.arange(1, 361, 20)), (512, 512), 0.95)
    assert groups == Counter({f"{c}/area={a:.2f},rotation={r:g}": n for (c, _, a, r), n in expected.items()})


def test_rotated_size_is_pils():
    rng = np.random.default_rng(0)
    for _ in range(400):
        w, h = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        a = float(rng.choice([0, 1, 21, 90, 161, 180, 341, 270, 77.5]))
        assert rotated_size(w, h, a) == Image.new("1", (w, h)).rotate(a, expand=True).size


def reference_image(fg_path, bg_path, bg_res, area, angle, coord):
    """dataset_generator.py's steps with PIL: square crop + bilinear (:147-159, :343-348), resize_fg,
    rotate, top-left, paste through the alpha (:137-139), JPEG at PIL's default quality."""
    bg = Image.open(bg_path)
    side = min(bg.size)
    bg = bg.crop((0, 0, side, side)).resize(bg_res, Image.BILINEAR)
    fg = Image.open(fg_path)
    f = np.sqrt(area / (fg.width * fg.height / (bg.width * bg.height)))
    fg = fg.resize((int(fg.width * f), int(fg.height * f)), Image.BILINEAR).rotate(angle, resample=Image.BICUBIC, expand=True)
    x0, y0 = int(int(coord[0] * bg.width) - fg.width * 0.5), int(int(coord[1] * bg.height) - fg.height * 0.5)
    out = bg.copy()
    out.paste(fg, box=(x0, y0), mask=fg)
    buf = io.BytesIO()
    out.save(buf, format="JPEG")
    return buf.getvalue()


def test_build_matches_the_reference_bytes(tmp_path):
    roots = make_si_score_folders(tmp_path / "src", per_class=2, n_backgrounds=4, seed=1)
    r = recipemod.apply_overrides(recipemod.load("si-score-rotation"),
                                  [f"foregrounds={roots['foregrounds']}", f"backgrounds={roots['backgrounds']}",
                                   "bg_resolution=[160, 160]", "rotation_range=[1, 361, 80]"])
    res = build(r, BuildContext(), tmp_path / "o")
    assert res.finalized and res.errors == 0
    fgs = src.foregrounds(roots["foregrounds"])
    bgs = src.backgrounds(roots["backgrounds"])
    jpgs, metas = {}, {}
    for tar in (tmp_path / "o" / "shards").glob("*.tar"):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, ext = m.name.rsplit(".", 1)
                if ext == "jpg":
                    jpgs[key] = t.extractfile(m).read()
                elif ext == "json":
                    metas[key] = json.loads(t.extractfile(m).read())
    assert len(jpgs) == len(metas) > 10
    for key in sorted(jpgs)[::3]:
        m = metas[key]
        fg = next(f for f in fgs if f.class_index == m["foreground_class"] and f.instance == m["foreground_instance"])
        ref = reference_image(fg.path, bgs[m["background"]], (160, 160), m["area"], m["rotation"],
                              (m["x_coord"], m["y_coord"]))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(jpgs[key]))), np.asarray(Image.open(io.BytesIO(ref)))), key


def test_missing_folders_are_one_line_errors(tmp_path):
    r = recipemod.load("si-score-size")
    with pytest.raises(BgforgeError, match="needs foregrounds: --set foregrounds=DIR"):
        planners.get("si_score").plan(r, BuildContext())
    with pytest.raises(BgforgeError, match=r"min_pct_inside_image must be a fraction"):
        planners.get("si_score").validate({**r.params, "min_pct_inside_image": 2})


def test_coco_foregrounds_are_cut_out_by_their_masks(tmp_path):
    from bgforge.sources.coco import annotation_mask
    from bgforge.sources.synthetic_coco import make_coco

    coco = make_coco(tmp_path / "coco", n_images=30, size=(320, 256), seed=2)
    roots = make_si_score_folders(tmp_path / "src", n_backgrounds=3, seed=1)
    r = recipemod.apply_overrides(recipemod.load("si-score-size"), [
        "foreground_source=coco", "coco_categories=[car, bus]", "coco_split=train2017", "coco_per_class=2",
        "coco_min_box=40", f"backgrounds={roots['backgrounds']}", "bg_resolution=[128, 128]", "area_range=[0.1, 0.5, 0.2]"])
    res = build(r, BuildContext(roots={"coco": coco}), tmp_path / "o")
    assert res.finalized and res.errors == 0
    data = json.loads((coco / "annotations" / "instances_train2017.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    anns = sorted((a for a in data["annotations"] if names[a["category_id"]] in ("bus", "car") and not a["iscrowd"]
                   and min(a["bbox"][2:]) >= 40), key=lambda a: a["id"])
    images = {im["id"]: im for im in data["images"]}
    fgs = {(c, j): a for c, name in enumerate(["bus", "car"])
           for j, a in enumerate([a for a in anns if names[a["category_id"]] == name][:2])}
    bgs = src.backgrounds(roots["backgrounds"])
    seen = 0
    for tar in (tmp_path / "o" / "shards").glob("*.tar"):
        with tarfile.open(tar) as t:
            members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
        for name, raw in members.items():
            if not name.endswith(".json"):
                continue
            m = json.loads(raw)
            a = fgs[m["foreground_class"], m["foreground_instance"]]
            im = images[a["image_id"]]
            rgb = np.asarray(Image.open(coco / "train2017" / im["file_name"]).convert("RGB"))
            mask = annotation_mask(a["segmentation"], im["height"], im["width"])
            x, y, w, h = a["bbox"]
            box = (int(np.floor(x)), int(np.floor(y)), int(np.ceil(x + w)), int(np.ceil(y + h)))
            cut = tmp_path / "cut.png"
            Image.fromarray(np.dstack([rgb, mask])[box[1]:box[3], box[0]:box[2]], "RGBA").save(cut)
            ref = reference_image(cut, bgs[m["background"]], (128, 128), m["area"], 0, (0.5, 0.5))
            ours = members[name[:-5] + ".jpg"]
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(ours))), np.asarray(Image.open(io.BytesIO(ref))))
            seen += 1
    assert seen == len((tmp_path / "o" / "metadata.csv").read_text().splitlines()) - 1 == 2 * 4 * 2
