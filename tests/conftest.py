"""Shared fixtures: small synthetic CUB / Places365 trees in the real on-disk layouts."""

import os
from pathlib import Path

import pytest

from bgforge.sources import synthetic

# A mix of reference water birds, land birds and the three "tern" substring false positives.
SPECIES = ["001.Black_footed_Albatross", "059.California_Gull", "100.Brown_Pelican",
           "009.Brewer_Blackbird", "073.Blue_Jay", "147.Eastern_Towhee"]


@pytest.fixture(scope="session")
def cub_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cub") / "CUB_200_2011"
    counts = {s: n for s, n in zip(SPECIES, [9, 7, 8, 10, 11, 6])}
    return synthetic.make_cub(root, species=SPECIES, per_species=counts, size=(160, 120), seed=7)


@pytest.fixture(scope="session")
def places_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("places") / "places365"
    return synthetic.make_places(root, per_category=30, size=(200, 150), seed=7)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    for var in ("BGFORGE_CUB_ROOT", "BGFORGE_PLACES_ROOT", "BGFORGE_IMAGENET_ROOT", "BGFORGE_COCO_ROOT",
                "BGFORGE_TEXTURES_ROOT", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BGFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "bgforge-cache"))
    yield


PATCHNET_SIZE, PATCHNET_STRIDE, PATCHNET_GRID = 96, 8, 12  # 96 px input, 8 px patches: a 12 x 12 grid


@pytest.fixture(scope="session")
def trained_patchnet(tmp_path_factory):
    """The one patch-detector training of a test session (the slowest fixture: shared by the PatchNet and
    AutoBackSwap tests): 240 patch-labelled images (random colours: texture tells fg from bg), 8 epochs,
    seeded. Returns (TrainResult, held-out folder, M.pt, seconds)."""
    import time

    import torch

    from bgforge.backends.patchnet import train_patchnet
    from bgforge.sources.synthetic_blobs import make_blob_folder

    torch.set_num_threads(2)
    base = tmp_path_factory.mktemp("patchnet")
    size, grid = PATCHNET_SIZE, PATCHNET_GRID
    train = make_blob_folder(base / "train", n=240, size=(size, size), grid=grid, seed=1, classes=())
    held = make_blob_folder(base / "held", n=40, size=(size, size), grid=grid, seed=2, classes=())
    t0 = time.monotonic()
    res = train_patchnet(train / "images", train / "patch_labels.json", base / "M.pt", epochs=8, lr=3e-3, seed=0,
                         device="cpu", input_size=None, stride=PATCHNET_STRIDE, batch_size=8)
    return res, held, base / "M.pt", time.monotonic() - t0


def read_tree(folder: Path) -> dict:
    """Every file under a folder as bytes, for byte-identity checks (manifest timings excluded)."""
    skip = {"manifest.json", "finalized.sha256.json"}  # the latter holds manifest.json's sha256
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip and not p.name.endswith(".stats.json")}


def shard_bytes(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted((folder / "shards").glob("*.tar"))}


os.environ.setdefault("PYTHONHASHSEED", "0")
# Tests read the lines bgforge prints: no ISO time in front of them (a test's output is never a
# terminal). tests/cli/test_logs.py turns the stamps back on, as a cron job sees them.
os.environ["BGFORGE_LOG_TIME"] = "never"

from standins import *  # noqa: E402,F401,F403 - model stand-in fixtures for every test folder
