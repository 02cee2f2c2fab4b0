"""UrbanCars from synthetic Stanford Cars (devkit .mat and CSV layouts), LVIS + COCO and Places365
trees: exact counts, disjoint pools, the reference's paste geometry, byte identity across workers
and slices, client loaders, and Whac-A-Mole's I-Avg and gaps in `bgforge eval`."""

import csv
import json
from collections import Counter

import numpy as np
import pytest
from conftest import shard_bytes
from helpers import build
from typer.testing import CliRunner

from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.eval import score
from bgforge.io.images import decode
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.planners.urbancars import composition_counts, group_names
from bgforge.sources.synthetic_urbancars import make_urbancars_sources

SIZES = ["num_train=60", "num_val=12", "num_test=12"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return make_urbancars_sources(tmp_path_factory.mktemp("uc-src"), seed=5)


def urbancars(roots, out, sets=(), **kw):
    recipe = recipemod.apply_overrides(recipemod.load("urbancars"), [*SIZES, *sets])
    return build(recipe, BuildContext(roots={k: str(v) for k, v in roots.items()}), out, **kw)


@pytest.fixture(scope="module")
def built(roots, tmp_path_factory):
    out = tmp_path_factory.mktemp("uc") / "o"
    res = urbancars(roots, out, shard_size=16)
    assert res.finalized and res.errors == 0
    return out


def rows(out):
    return list(csv.DictReader(open(out / "metadata.csv")))


def test_composition_counts_are_the_references():
    train = composition_counts(4000, 0.95, 0.95)
    assert sorted(train.values(), reverse=True) == [3610, 3610, 190, 190, 190, 190, 10, 10]
    assert train[(0, 0, 0)] == 3610 and train[(0, 1, 1)] == 10 and train[(1, 0, 1)] == 190
    assert set(composition_counts(500, 0.5, 0.5).values()) == {125}


@pytest.mark.slow
def test_counts_per_group_are_exact(built):
    table = rows(built)
    by_split = Counter((r["split"], int(r["group"])) for r in table)
    for y in (0, 1):
        for bg in (0, 1):
            for co in (0, 1):
                g = 4 * y + 2 * bg + co
                assert by_split[("train", g)] == composition_counts(60, 0.95, 0.95)[(y, bg, co)]
                assert by_split[("val", g)] == by_split[("test", g)] == 3
    groups = json.loads((built / "groups.json").read_text())
    assert list(groups["test"]["groups"]) == sorted(group_names())
    assert groups["train"]["groups"]["urban_car-urban_bg-urban_obj"] == 54


@pytest.mark.slow
def test_pools_are_disjoint_across_splits_and_compositions(built):
    table = rows(built)
    for column in ("car_file", "bg_file", "co_obj_ann_id"):
        assert len({r[column] for r in table}) == len(table), column
    for r in table:
        assert int(r["group"]) == 4 * int(r["y"]) + 2 * int(r["bg"]) + int(r["co_obj"])


@pytest.mark.slow
def test_paste_geometry_is_the_references(roots, tmp_path):
    out = tmp_path / "cues"
    urbancars(roots, out, ["cue_sets=[car_only, co_obj_only, bg_only]"], shard_size=64)
    table = rows(out)
    assert Counter(r["split"] for r in table)["test_car_only"] == 24
    _, files = next(iter_shard(next((out / "shards").glob("test_car_only-00000.tar"))))
    car = decode(files["jpg"], "RGB").astype(int).max(axis=2) > 40  # the car on black (JPEG noise aside)
    ys, xs = np.nonzero(car)
    assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) in range(126, 131)   # longer side 0.5 x 256
    assert abs((ys.min() + ys.max()) / 2 - 128) <= 3 and abs((xs.min() + xs.max()) / 2 - 128) <= 3
    _, files = next(iter_shard(next((out / "shards").glob("test_co_obj_only-00000.tar"))))
    obj = decode(files["jpg"], "RGB").astype(int).max(axis=2) > 40
    ys, xs = np.nonzero(obj)
    assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) in range(62, 67)    # longer side 64
    assert abs((ys.min() + ys.max()) / 2 - 128) <= 3 and abs((xs.min() + xs.max()) / 2 - 224) <= 3
    _, files = next(iter_shard(next((out / "shards").glob("test_bg_only-00000.tar"))))
    img = decode(files["png"], "RGB")
    assert (img[64:192, 64:128] == img[64:192, 0:64]).all()  # the reference's left-quarter copy
    assert (img[96:160, 192:] == img[96:160, 0:64]).all()


@pytest.mark.slow
def test_byte_identical_across_workers_and_slices(roots, built, tmp_path):
    urbancars(roots, tmp_path / "w2", shard_size=16, workers=2)
    assert shard_bytes(tmp_path / "w2") == shard_bytes(built)
    for i in (0, 1):
        urbancars(roots, tmp_path / "sl", shard_size=16, slice_index=i, slice_count=2)
    assert shard_bytes(tmp_path / "sl") == shard_bytes(built)


@pytest.mark.slow
def test_the_csv_mirror_of_stanford_cars_gives_the_same_dataset(built, tmp_path):
    csv_roots = make_urbancars_sources(tmp_path / "src", seed=5, car_layout="csv")
    urbancars(csv_roots, tmp_path / "o", shard_size=16)
    assert shard_bytes(tmp_path / "o") == shard_bytes(built)


@pytest.mark.slow
def test_imagefolder_and_hugging_face_load_it(roots, built, tmp_path):
    from torchvision.datasets import ImageFolder

    urbancars(roots, tmp_path / "if", shard_size=16, layout="imagefolder")
    train = ImageFolder(str(tmp_path / "if" / "train"))
    assert train.classes == ["country_car", "urban_car"] and len(train) == 118
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(built))
    assert ds["test"].num_rows == 24 and ds["test"][0]["json"]["group_name"] in group_names()


@pytest.mark.slow
def test_eval_reports_whac_a_moles_i_avg_and_gaps(built):
    table = [r for r in rows(built) if r["split"] == "test"]
    perfect = score({r["key"]: int(r["y"]) for r in table}, built, "test")
    assert perfect["i_avg"] == 1.0 and perfect["bg_gap"] == perfect["co_obj_gap"] == perfect["bg_co_obj_gap"] == 0
    by_bg = score({r["key"]: int(r["bg"]) for r in table}, built, "test")  # a background-only classifier
    assert by_bg["breakdowns"]["cell"]["bg_misaligned"]["accuracy"] == 0.0
    assert by_bg["i_avg"] == pytest.approx(0.9025 + 0.0475)   # right where the background agrees with the car
    assert by_bg["bg_gap"] == pytest.approx(-by_bg["i_avg"]) and by_bg["co_obj_gap"] == pytest.approx(1 - by_bg["i_avg"])


@pytest.mark.slow
def test_demo_runs_and_missing_roots_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["build", "urbancars", "--out", str(tmp_path / "x")], env={"BGFORGE_CARS_ROOT": ""})
    assert res.exit_code == 2 and "--cars-root" in res.output
    res = runner.invoke(app, ["build", "urbancars", "--demo", "--out", str(tmp_path / "demo"), "-q"])
    assert res.exit_code == 0, res.output
    assert "166 samples" in res.output
