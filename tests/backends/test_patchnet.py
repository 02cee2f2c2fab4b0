"""The AutoBackSwap patch detector learns, round-trips through the segment stage, and reads both label formats."""

import json

import numpy as np
import pytest
import torch
from conftest import PATCHNET_GRID as GRID  # the session fixture's sizes
from conftest import PATCHNET_SIZE as SIZE
from conftest import PATCHNET_STRIDE as STRIDE
from helpers import build
from typer.testing import CliRunner

from bgforge import __version__
from bgforge.backends import get_segmenter
from bgforge.backends.patchnet import (
    PatchNetSegmenter,
    build_patchnet,
    load_init,
    load_training_set,
    patch_grid,
    read_labels,
    resolve_input_size,
    train_patchnet,
)
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.io.images import decode, open_image, open_mask
from bgforge.io.shards import iter_shard
from bgforge.planners import BuildContext
from bgforge.recipe import Recipe
from bgforge.sources.synthetic_blobs import make_blob_folder


def iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def trained(trained_patchnet):
    """The session's one learning run (conftest.trained_patchnet: 240 images, 8 epochs, seeded)."""
    return trained_patchnet


@pytest.mark.slow
def test_detector_learns_masks_of_held_out_images(trained):
    res, held, model, seconds = trained
    assert res.grid == GRID and res.input_size == SIZE  # inferred from the 12x12 label grids
    assert res.history[-1] < res.history[0] / 5
    seg = PatchNetSegmenter.from_options(model, device="cpu")
    ious = []
    for j in range(40):
        image = np.asarray(open_image(held / "images" / f"blob_{j:04d}.png"))
        truth = open_mask(held / "masks" / f"blob_{j:04d}.png") > 127
        ious.append(iou(seg.segment([image], [None])[0].union(), truth))
    print(f"held-out mask IoU {np.mean(ious):.3f} (min {min(ious):.3f}); training {seconds:.1f} s")
    assert np.mean(ious) >= 0.8 and min(ious) >= 0.6


@pytest.mark.slow
def test_checkpoint_is_self_describing(trained):
    _, _, model, _ = trained
    ckpt = torch.load(model, map_location="cpu", weights_only=True)
    assert ckpt["format"] == "bgforge-patchnet" and ckpt["bgforge_version"] == __version__
    assert ckpt["input_size"] == SIZE and ckpt["grid"] == [GRID, GRID] and ckpt["stride"] == STRIDE
    assert ckpt["train"]["images"] == 240 and ckpt["train"]["seed"] == 0
    net = build_patchnet(STRIDE)
    net.load_state_dict(ckpt["state_dict"])
    assert net(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 1, GRID, GRID)


@pytest.mark.slow
def test_round_trip_through_the_segment_stage(trained, tmp_path):
    """What `bgforge segment --backend patchnet --patchnet-model M.pt` builds: the stage over a folder."""
    _, held, model, _ = trained
    params = {"input": str(held), "manifest": str(held / "manifest.jsonl"), "segmenter": "patchnet",
              "prompt": None, "prompt_from_label": False, "dilation": 0,
              "backend_options": {"patchnet_model": str(model), "patchnet_threshold": 0.5}}
    build(Recipe(name="segment", planner="segment", params=params), BuildContext(), tmp_path / "seg", progress=False)
    seg = get_segmenter("patchnet", patchnet_model=str(model), device="cpu")
    got = {k: f for p in sorted((tmp_path / "seg" / "shards").glob("*.tar")) for k, f in iter_shard(p)}
    assert len(got) == 40
    for j in range(40):
        files = got[f"images_blob_{j:04d}"]
        image = np.asarray(open_image(held / "images" / f"blob_{j:04d}.png"))
        mask = decode(files["mask.png"], "L") > 127
        assert np.array_equal(mask, seg.segment([image], [None])[0].union())
        assert json.loads(files["json"])["backend"] == "patchnet"


@pytest.mark.slow
def test_segmenter_upsamples_and_thresholds(trained):
    _, held, model, _ = trained
    image = np.asarray(open_image(held / "images" / "blob_0000.png"))
    wide = np.concatenate([image, image], axis=1)  # any image size: 96 x 192
    seg = PatchNetSegmenter.from_options(model, device="cpu", threshold=0.5)
    patches = seg.predict_patches([wide])[0]
    prob = seg.probabilities(patches, *wide.shape[:2])
    assert patches.shape == (GRID, GRID) and prob.shape == wide.shape[:2]
    assert np.array_equal(seg.segment([wide], [None])[0].union(), prob >= 0.5)
    strict = PatchNetSegmenter.from_options(model, device="cpu", threshold=0.9).segment([wide], [None])[0].union()
    assert strict.sum() < (prob >= 0.5).sum() and np.array_equal(strict, prob >= 0.9)


def test_mask_labels_equal_majority_vote_grids(tmp_path):
    grids = make_blob_folder(tmp_path / "g", n=6, size=(50, 40), grid=5, seed=9, classes=())
    masks = make_blob_folder(tmp_path / "m", n=6, size=(50, 40), grid=None, seed=9, classes=())
    a = read_labels(grids / "images", grids / "patch_labels.json")
    b = read_labels(masks / "images", masks / "patch_labels.json")
    assert a[0].grid is not None and b[0].mask is not None
    xa, ya = load_training_set(a, 40, 8)
    xb, yb = load_training_set(b, 40, 8)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb) and ya.any()
    # majority vote by hand on a 4x4 mask, 2x2 grid: cells with >= 2 of 4 foreground pixels are foreground
    m = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], bool)
    assert patch_grid(m, 2, 2) == [[1, 0], [0, 0]]
    m[3, 1] = True
    assert patch_grid(m, 2, 2) == [[1, 0], [1, 0]]


def test_label_errors_are_one_line(tmp_path):
    root = make_blob_folder(tmp_path / "d", n=2, size=(32, 32), grid=4, seed=0, classes=())
    items = read_labels(root / "images", root / "patch_labels.json")
    assert resolve_input_size(items, None, 8) == 32 and resolve_input_size(items, None, 32) == 128
    with pytest.raises(BgforgeError, match="4x4 patch grids but --input-size 64"):
        resolve_input_size(items, 64, 8)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"missing.png": [[0]]}))
    with pytest.raises(BgforgeError, match="not found under --images"):
        read_labels(root / "images", bad)
    bad.write_text(json.dumps({"blob_0000.png": [[0, 2], [1, 1]]}))
    with pytest.raises(BgforgeError, match="grid of 0/1 rows"):
        read_labels(root / "images", bad)
    bad.write_text("{not json")
    with pytest.raises(BgforgeError, match="not valid JSON"):
        read_labels(root / "images", bad)


@pytest.mark.slow
def test_training_is_deterministic_and_seeded(tmp_path):
    torch.set_num_threads(2)
    root = make_blob_folder(tmp_path / "d", n=6, size=(32, 32), grid=4, seed=0, classes=())

    def run(seed, name):
        train_patchnet(root / "images", root / "patch_labels.json", tmp_path / name, epochs=1, seed=seed,
                       device="cpu", stride=8, batch_size=4)

    run(0, "a.pt"), run(0, "b.pt"), run(1, "c.pt")
    sd = {n: torch.load(tmp_path / n, weights_only=True)["state_dict"] for n in ("a.pt", "b.pt", "c.pt")}
    assert all(torch.equal(sd["a.pt"][k], sd["b.pt"][k]) for k in sd["a.pt"])
    assert not all(torch.equal(sd["a.pt"][k], sd["c.pt"][k]) for k in sd["a.pt"])


def test_init_loads_a_torchvision_backbone(tmp_path):
    from torchvision.models import efficientnet_b0

    torch.manual_seed(3)
    full = efficientnet_b0(weights=None)
    torch.save(full.state_dict(), tmp_path / "b0.pth")
    net = build_patchnet(16)
    assert load_init(net, tmp_path / "b0.pth") == len([k for k in net.state_dict() if k.startswith("features.")])
    for k, v in net.state_dict().items():
        if k.startswith("features."):
            assert torch.equal(v, full.state_dict()[k]), k
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(BgforgeError, match="does not hold EfficientNet-B0 backbone weights"):
        load_init(build_patchnet(8), tmp_path / "other.pth")


@pytest.mark.slow
def test_cli_train_and_missing_model(tmp_path):
    root = make_blob_folder(tmp_path / "d", n=4, size=(32, 32), grid=None, seed=0, classes=())
    res = CliRunner().invoke(app, ["patchnet", "train", "--images", str(root / "images"), "--labels",
                                   str(root / "patch_labels.json"), "--out", str(tmp_path / "M.pt"), "--epochs", "1",
                                   "--stride", "8", "--input-size", "32", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    assert "4 images, 1 epochs, input 32, 4x4 patches: train loss" in res.output and (tmp_path / "M.pt").is_file()
    res = CliRunner().invoke(app, ["patchnet", "train", "--images", str(root / "images"), "--labels",
                                   str(root / "patch_labels.json"), "--out", str(tmp_path / "N.pt"),
                                   "--input-size", "30", "--stride", "8"])
    assert res.exit_code == 2 and "multiple of the stride 8" in res.output
    with pytest.raises(BgforgeError, match="not found; train one"):
        get_segmenter("patchnet", patchnet_model=str(tmp_path / "nope.pt"))
    with pytest.raises(BgforgeError, match="needs a model"):
        get_segmenter("patchnet")


@pytest.mark.slow
def test_batchnorm_statistics_are_recalibrated_so_eval_mode_finds_the_foreground(tmp_path):
    """12 labelled images, 30 steps: eval mode used to find nothing (patch IoU 0.000) because BatchNorm's
    running averages lagged the weights; after the recalibration pass it finds what train mode finds."""
    torch.set_num_threads(2)
    root = make_blob_folder(tmp_path / "d", n=12, size=(32, 32), grid=4, seed=3, classes=())
    res = train_patchnet(root / "images", root / "patch_labels.json", tmp_path / "M.pt", epochs=30, seed=0,
                         device="cpu", stride=8, batch_size=16)
    assert res.iou > 0.3, res.iou


@pytest.mark.slow
def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    """A checkpoint every epoch (M.pt.resume): stopped after epoch 2 of 3 and run again, training ends with
    the weights of an uninterrupted run; other settings are refused, not mixed in."""
    torch.set_num_threads(2)
    root = make_blob_folder(tmp_path / "d", n=6, size=(32, 32), grid=4, seed=0, classes=())
    args = dict(epochs=3, seed=0, device="cpu", stride=8, batch_size=4)
    whole = train_patchnet(root / "images", root / "patch_labels.json", tmp_path / "a.pt", **args)

    def stop_after_two(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_patchnet(root / "images", root / "patch_labels.json", tmp_path / "b.pt", on_epoch=stop_after_two, **args)
    assert (tmp_path / "b.pt.resume").is_file() and not (tmp_path / "b.pt").exists()
    with pytest.raises(BgforgeError, match="other settings \\(lr\\)"):
        train_patchnet(root / "images", root / "patch_labels.json", tmp_path / "b.pt", lr=1e-3, **args)
    seen = []
    resumed = train_patchnet(root / "images", root / "patch_labels.json", tmp_path / "b.pt",
                             on_epoch=lambda e, t, loss: seen.append(e), **args)
    assert seen == [3] and resumed.history == whole.history and not (tmp_path / "b.pt.resume").exists()
    a, b = (torch.load(tmp_path / n, weights_only=True)["state_dict"] for n in ("a.pt", "b.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_cli_logs_loss_and_seconds_per_epoch(tmp_path):
    root = make_blob_folder(tmp_path / "d", n=4, size=(32, 32), grid=None, seed=0, classes=())
    res = CliRunner().invoke(app, ["patchnet", "train", "--images", str(root / "images"), "--labels",
                                   str(root / "patch_labels.json"), "--out", str(tmp_path / "M.pt"), "--epochs", "2",
                                   "--stride", "8", "--input-size", "32", "--device", "cpu"])
    assert res.exit_code in (0, 3), res.output
    import re

    assert re.search(r"patchnet epoch 1/2: loss \d+\.\d{4}, \d+\.\d s, ~\d+ s left", res.output), res.output
    assert re.search(r"patchnet epoch 2/2: loss \d+\.\d{4}, \d+\.\d s\n", res.output), res.output
