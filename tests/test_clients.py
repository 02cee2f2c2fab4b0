"""The output loads in the clients trainers use, with their defaults and nothing but the path:
Hugging Face `datasets`, WebDataset + DataLoader workers, torchvision ImageFolder, the WILDS /
group_DRO read path, bgforge.data; and an installed wheel knows its recipes."""

import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import webdataset as wds
from helpers import build
from typer.testing import CliRunner

from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.data import group_names, group_weights, load
from bgforge.execution.plan import shard_sizes
from bgforge.planners import BuildContext

ROOT = Path(__file__).resolve().parent.parent
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def _build(cub_root, places_root, out, **kw):
    r = recipemod.load("waterbirds-95")
    build(r, BuildContext(roots={"cub": cub_root, "places": places_root}), out, progress=False, **kw)
    return out


@pytest.fixture(scope="module")
def shards_out(cub_root, places_root, tmp_path_factory):
    return _build(cub_root, places_root, tmp_path_factory.mktemp("clients") / "wb")


@pytest.fixture(scope="module")
def imagefolder_out(cub_root, places_root, tmp_path_factory):
    return _build(cub_root, places_root, tmp_path_factory.mktemp("clients") / "wb-if", layout="imagefolder")


@pytest.fixture(scope="module")
def folder_out(cub_root, places_root, tmp_path_factory):
    # group_DRO reads root/data/waterbird_complete95_forest2water2; WILDS root_dir/waterbirds_v1.0
    return _build(cub_root, places_root, tmp_path_factory.mktemp("clients") / "waterbirds_v1.0", layout="folder")


@pytest.fixture()
def hf_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf"


def metadata(out: Path) -> list[dict]:
    with open(out / "metadata.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_shard_sizing_gives_every_split_eight_shards():
    assert shard_sizes(16, 1000) == [2] * 8
    assert shard_sizes(2500, 1000) == [313] * 4 + [312] * 4        # --min-shards 8 wins
    assert shard_sizes(2500, 1000, min_shards=1) == [834, 833, 833]  # --shard-size stays the upper bound
    assert shard_sizes(20000, 1000, min_shards=1) == [1000] * 20
    assert shard_sizes(5, 1000) == [1] * 5                           # fewer samples than shards
    assert shard_sizes(15, 7, min_shards=1, multiple=3) == [6, 6, 3]  # whole runs of 3


def test_manifest_lists_each_split_and_shards_hold_only_tars(shards_out):
    m = json.loads((shards_out / "manifest.json").read_text())
    rows = metadata(shards_out)
    assert {p.suffix for p in (shards_out / "shards").iterdir()} == {".tar"}
    assert not list(shards_out.glob("preview"))   # previews live in .bgforge/, away from every client
    for split, entry in m["splits"].items():
        assert entry["samples"] == sum(entry["shard_samples"]) == m["counts"][split]
        assert len(entry["shards"]) == min(8, entry["samples"])  # >= 8 shards, fewer only for fewer samples
        assert list(wds.shardlists.expand_urls(entry["pattern"])) == entry["shards"]
    assert sum(e["samples"] for e in m["splits"].values()) == len(rows)


def test_hugging_face_load_dataset_returns_the_splits(shards_out, hf_offline):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(shards_out))
    counts = json.loads((shards_out / "manifest.json").read_text())["counts"]
    assert {HF_SPLITS[s]: n for s, n in counts.items()} == {s: ds[s].num_rows for s in ds}
    features = ds["train"].features
    assert isinstance(features["jpg"], datasets.Image)
    assert {"y", "place", "group", "img_filename"} <= set(features["json"])
    first = ds["train"][0]
    assert first["cls"] == first["json"]["y"] and first["jpg"].size == (first["json"]["width"], first["json"]["height"])
    card = (shards_out / "README.md").read_text()
    assert "waterbirds-95" in card and "seed: 0" in card and "CUB-200-2011" in card and "landbird_land" in card


def test_webdataset_dataloader_with_two_workers_reads_every_sample_once(shards_out):
    pattern = json.loads((shards_out / "manifest.json").read_text())["splits"]["train"]["pattern"]
    ds = wds.WebDataset(str(shards_out / pattern), shardshuffle=False).decode("torchrgb").to_tuple("jpg", "cls", "__key__")
    keys = collections.Counter()
    for _image, _label, key in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
        keys[key] += 1
    train = [r["key"] for r in metadata(shards_out) if r["split"] == "0"]
    assert sorted(keys) == sorted(train) and set(keys.values()) == {1}


def test_bgforge_data_yields_image_label_group_meta_and_weights(shards_out):
    names = group_names(shards_out)
    stream = load(shards_out, "train", transform=lambda im: torch.zeros(3, 8, 8))
    seen = 0
    for image, label, group, meta in torch.utils.data.DataLoader(stream, batch_size=8, num_workers=2):
        assert image.shape[1:] == (3, 8, 8) and torch.equal(label, meta["y"])
        assert [names[g] for g in group.tolist()] == list(meta["group_name"])
        seen += len(label)
    table = load(shards_out, "train", kind="map")
    assert seen == len(table) == json.loads((shards_out / "groups.json").read_text())["train"]["total"]
    weights = table.sample_weights(group_weights(shards_out, "train"))
    assert abs(sum(weights) / len(weights) - 1) < 1e-9
    by_group = collections.defaultdict(float)
    for i, w in enumerate(weights):
        by_group[table[i][3]["group_name"]] += w
    assert max(by_group.values()) - min(by_group.values()) < 1e-6  # every group weighs the same in total


def test_imagefolder_layout_loads_in_torchvision_and_hugging_face(imagefolder_out, hf_offline):
    from torchvision.datasets import ImageFolder

    assert not (imagefolder_out / "shards").exists()
    rows = metadata(imagefolder_out)
    train = ImageFolder(str(imagefolder_out / "train"))
    assert train.classes == ["landbird", "waterbird"]
    assert len(train) == sum(r["split"] == "0" for r in rows)
    for path, target in train.samples:
        row = next(r for r in rows if r["file_name"] == str(Path(path).relative_to(imagefolder_out)))
        assert target == int(row["y"])
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(imagefolder_out))
    assert sorted(ds) == ["test", "train", "validation"] and ds["train"].num_rows == len(train)
    assert {"image", "y", "place", "group"} <= set(ds["train"].features)


def test_folder_layout_reads_like_wilds_and_group_dro(folder_out, tmp_path):
    # WILDS WaterbirdsDataset(root_dir, download=False): <root_dir>/waterbirds_v1.0 holds RELEASE_v1.0.txt
    # and metadata.csv; y, place, split (0/1/2), img_filename -> <data_dir>/<img_filename>.
    # group_DRO's CUBDataset reads the same columns from <root>/data/waterbird_complete95_forest2water2.
    assert (folder_out / "RELEASE_v1.0.txt").exists()
    assert not (folder_out / "shards").exists() and not (folder_out / "preview").exists()
    rows = metadata(folder_out)
    assert {r["split"] for r in rows} == {"0", "1", "2"}
    for r in rows:
        assert (folder_out / r["img_filename"]).is_file()
        assert int(r["group"]) == 2 * int(r["y"]) + int(r["place"])
    dro_root = tmp_path / "data"
    dro_root.mkdir()
    (dro_root / "waterbird_complete95_forest2water2").symlink_to(folder_out)
    assert (dro_root / "waterbird_complete95_forest2water2" / rows[0]["img_filename"]).is_file()


def test_layout_folder_without_reference_paths_is_refused_before_planning(tmp_path):
    res = CliRunner().invoke(app, ["build", "hard-spurious-imagenet-10", "--demo", "--layout", "folder",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--layout folder" in res.output and "imagefolder" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_an_installed_wheel_knows_its_recipes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("bgforge", "recipes"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, cwd=src)
    wheel = next((tmp_path / "dist").glob("bgforge-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("bgforge/recipes/")}
    assert {f"bgforge/recipes/{p.name}" for p in (ROOT / "recipes").glob("*.yaml")} == shipped
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("BGFORGE_RECIPES_DIR", "PYTHONPATH")}
    code = ("import sys, bgforge; from bgforge import recipe; print(bgforge.__file__); "
            "print(recipe.load('waterbirds-95').planner); sys.argv = ['bgforge', 'recipes']; "
            "from bgforge.cli import run; run()")
    res = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(site)}, cwd=tmp_path,
                         capture_output=True, text=True)
    lines = res.stdout.splitlines()
    assert lines[0].startswith(str(site)) and lines[1] == "waterbirds", res.stdout + res.stderr
    assert any(line.startswith("hard-spurious-imagenet ") for line in lines[2:]), res.stdout
