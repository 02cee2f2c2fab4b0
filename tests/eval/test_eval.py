"""`bgforge eval`: the peers' definitions on the same predictions, a real tiny model showing the
shortcut, --model for TorchScript and torchvision, and one-line errors for bad prediction files."""

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import build
from typer.testing import CliRunner

from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.eval import score
from bgforge.eval.dataset import load_split
from bgforge.planners import BuildContext
from bgforge.sources.synthetic import make_imagenet

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wb(wb95_built):
    return wb95_built   # conftest: one build for every eval test module


def rows(out):
    return list(csv.DictReader(open(out / "metadata.csv")))


def write_preds(path: Path, pairs):
    path.write_text("key,pred\n" + "".join(f"{k},{p}\n" for k, p in pairs))
    return path


# ---------------------------------------------------------------- the peers' own formulas
def own_train_weighted_average(y, g, pred, train_g):
    """WILDS' "adjusted average" formula with this build's own train counts (WILDS itself hard-codes
    the published counts: tests/eval/test_eval_wilds.py runs its code)."""
    counts = np.bincount(train_g, minlength=4)
    accs = [(pred[g == k] == y[g == k]).mean() if (g == k).any() else 0.0 for k in range(4)]
    return float(sum(a * c for a, c in zip(accs, counts)) / counts.sum())


def subpopbench_adjusted_accuracy(y, g, pred):
    """SubpopBench's `adjusted_accuracy`: the unweighted mean of per-group accuracies (its eval_helpers)."""
    return float(np.mean([(pred[g == k] == y[g == k]).mean() for k in np.unique(g)]))


def test_numbers_equal_the_peers_formulas_on_the_same_predictions(wb):
    table = rows(wb)
    test = [r for r in table if r["split"] == "2"]
    rng = random.Random(5)
    preds = {r["key"]: int(r["y"]) if rng.random() < 0.7 else 1 - int(r["y"]) for r in test}
    result = score(preds, wb, "test")
    y = np.array([int(r["y"]) for r in test])
    g = np.array([int(r["group"]) for r in test])
    p = np.array([preds[r["key"]] for r in test])
    train_g = np.array([int(r["group"]) for r in table if r["split"] == "0"])
    assert result["n"] == len(test) and result["missing"] == 0
    assert result["accuracy"] == pytest.approx((p == y).mean())
    if (np.bincount(train_g, minlength=4) > 0).all():
        assert result["adjusted_accuracy"] == pytest.approx(own_train_weighted_average(y, g, p, train_g))
    else:   # a train split without some group gives it weight 0: undefined, and said why
        assert result["adjusted_accuracy"] is None and "train has no" in result["adjusted_accuracy_note"]
    # the formula itself, on this split's group table with a train split that has every group
    from bgforge.eval import metrics

    train = {name: 10 * (k + 1) for k, name in enumerate(result["groups"])}
    adjusted, why = metrics.adjusted_accuracy(result["groups"], train)
    weights = np.repeat(np.arange(4), [10, 20, 30, 40])
    assert why is None and adjusted == pytest.approx(own_train_weighted_average(y, g, p, weights))
    assert result["mean_group_accuracy"] == pytest.approx(subpopbench_adjusted_accuracy(y, g, p))
    per_group = {n: v["accuracy"] for n, v in result["groups"].items()}
    assert result["worst_group"]["accuracy"] == pytest.approx(min(per_group.values()))
    names = {0: "landbird_land", 1: "landbird_water", 2: "waterbird_land", 3: "waterbird_water"}
    for k, name in names.items():
        assert result["groups"][name]["n"] == int((g == k).sum())
        assert result["groups"][name]["accuracy"] == pytest.approx((p[g == k] == y[g == k]).mean())


def test_predictions_by_name_and_missing_samples(wb):
    test = [r for r in rows(wb) if r["split"] == "2"]
    preds = {r["key"]: ("waterbird" if r["y"] == "1" else "landbird") for r in test[:-3]}
    with pytest.raises(BgforgeError, match="3 of .* have no prediction"):
        score(preds, wb, "test")
    result = score(preds, wb, "test", allow_missing=True)
    assert result["accuracy"] == 1.0 and result["missing"] == 3 and result["predicted"] == len(test) - 3
    assert sum(g["n"] for g in result["groups"].values()) == len(test)


@pytest.mark.parametrize("content,expect", [
    ("key,guess\na,1\n", "no column pred"),
    ("key,pred\nnot-a-key,1\n", "not a sample of any split"),
    ("DUP", "given twice"),
    ("key,pred\nFIRST,toucan\n", "neither a class index nor a class name"),
])
def test_bad_prediction_files_are_one_line_exit_2(wb, tmp_path, content, expect):
    first = next(r["key"] for r in rows(wb) if r["split"] == "2")
    if content == "DUP":
        content = f"key,pred\n{first},1\n{first},0\n"
    path = tmp_path / "p.csv"
    path.write_text(content.replace("FIRST", first))
    res = runner.invoke(app, ["eval", str(wb), "--predictions", str(path)])
    assert res.exit_code == 2, res.output
    assert expect in res.output and res.output.count("bgforge: error:") == 1


def test_allow_missing(wb, tmp_path):
    first = next(r for r in rows(wb) if r["split"] == "2")
    path = write_preds(tmp_path / "p.csv", [(first["key"], first["y"])])
    res = runner.invoke(app, ["eval", str(wb), "-p", str(path)])
    assert res.exit_code == 2 and "have no prediction" in res.output and "--allow-missing" in res.output
    assert runner.invoke(app, ["eval", str(wb), "-p", str(path), "--allow-missing"]).exit_code == 0


# ---------------------------------------------------------------- a real model, trained here
class Tiny(torch.nn.Module):
    """Mean colour of a 4x4 grid -> 2 logits: it can only read where colour is (backgrounds are big)."""

    def __init__(self):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(48, 2)

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def _train_tiny(out: Path) -> torch.nn.Module:
    from bgforge.data import load

    torch.manual_seed(0)
    tf = lambda im: torch.from_numpy(np.asarray(im.resize((32, 32)), np.float32) / 255).permute(2, 0, 1)  # noqa: E731
    train = load(out, "train", kind="map", transform=tf)
    x = torch.stack([train[i][0] for i in range(len(train))])
    y = torch.tensor([train[i][1] for i in range(len(train))])
    net = Tiny()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.mark.slow
def test_a_model_trained_on_the_demo_shows_the_shortcut_and_rescores_the_same(tmp_path):
    out = tmp_path / "wb100"
    assert runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(out), "-q"]).exit_code == 0
    net = _train_tiny(out)
    torch.jit.script(net).save(str(tmp_path / "tiny.pt"))
    report = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "bgforge", "eval", str(out), "--model", str(tmp_path / "tiny.pt"),
                           "--transform", "none", "--out", str(report), "--json"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2 and "different sizes" in proc.stderr  # the demo's birds are not one size
    proc = subprocess.run([sys.executable, "-m", "bgforge", "eval", str(out), "--model", str(tmp_path / "tiny.pt"),
                           "--transform", "resize:32", "--out", str(report), "--json"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    # Waterbirds-100 trains with bird and background fully aligned: the minority groups are where it fails
    assert made["worst_group"]["accuracy"] < made["accuracy"] - 0.2, made["groups"]
    assert made["worst_group"]["name"] in ("landbird_water", "waterbird_land")
    assert (report / "groups.png").stat().st_size > 0 and (report / "metrics.json").exists()
    rescored = runner.invoke(app, ["eval", str(out), "--predictions", str(report / "predictions.csv"), "--json"])
    assert rescored.exit_code == 0, rescored.output
    again = json.loads(rescored.output)
    made.pop("transform")
    assert again == made


def test_torchvision_architecture_with_a_saved_random_state_dict(wb, tmp_path):
    import torchvision

    torch.manual_seed(1)
    net = torchvision.models.resnet18(num_classes=2)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    res = runner.invoke(app, ["eval", str(wb), "--arch", "resnet18", "--checkpoint", str(tmp_path / "r18.pth"),
                              "--transform", "resize:64", "--json", "--batch-size", "16"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["predicted"] == result["n"] > 0 and result["transform"] == "resize:64"
    # the same weights in this process give the same predictions
    from bgforge.eval.model import Transform, predict

    data = load_split(wb, "test")
    preds = predict(net.eval(), data, Transform.parse("resize:64"), batch_size=16)
    assert score(preds, wb, "test") == {k: v for k, v in result.items() if k != "transform"}


# ---------------------------------------------------------------- the recipe's own numbers
HSI_CLASSES = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus"}
WNIDS = sorted({*HSI_CLASSES, *(f"n{9000000 + i:08d}" for i in range(998))})  # the two in their sorted places


@pytest.fixture(scope="module")
def hsi(tmp_path_factory):
    """A two-class HSI build whose ImageNet root has a 1000-class LOC_synset_mapping.txt."""
    tmp = tmp_path_factory.mktemp("hsi-eval")
    inet = make_imagenet(tmp / "inet", classes=HSI_CLASSES, n_train=12, n_val=2, size=(96, 72), seed=3)
    (inet / "LOC_synset_mapping.txt").write_text("".join(f"{w} {HSI_CLASSES.get(w, 'other')}\n" for w in WNIDS))
    recipe = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), [
        "quota.train.easy=2", "quota.train.medium=1", "quota.train.hard=1", "quota.val=1", "val_images_per_class=2",
        "classes=[n01440764, n01443537]"])
    build(recipe, BuildContext(roots={"imagenet": inet}), tmp / "hsi", shard_size=4)
    return tmp / "hsi"


def test_hsi_breakdowns_and_an_imagenet_classifier_scored_by_wnid(hsi):
    out, wnids = hsi, WNIDS
    data = load_split(out, "train")
    result = score({k: y for k, y in zip(data.keys, data.labels)}, out, "train")
    assert result["accuracy"] == 1.0
    assert set(result["breakdowns"]) == {"difficulty", "size", "position", "background"}
    assert set(result["class_groups"]) == {"tench", "goldfish"}
    # a 1000-way classifier that always answers goldfish, scored through the synset order
    from bgforge.eval.model import logits_to_classes

    logits = np.zeros((len(data), 1000), np.float32)
    logits[:, wnids.index("n01443537")] = 1
    preds = dict(zip(data.keys, logits_to_classes(logits, data, None)))
    result = score(preds, out, "train")
    assert result["classes"]["goldfish"]["accuracy"] == 1.0 and result["classes"]["tench"]["accuracy"] == 0.0


def test_corner_cases_spuriousness_on_the_inpainted_backgrounds(hsi):
    """`bgforge eval OUT/backgrounds`: per-class accuracy with the object removed (Corner Cases chose
    HSI-10's classes by it). The phase's label is the wnid; a 1000-way classifier reaches it by wnid."""
    from bgforge.eval.model import logits_to_classes

    out, wnids = hsi, WNIDS
    data = load_split(out / "backgrounds", "backgrounds")
    assert set(data.label_names.values()) == set(HSI_CLASSES)
    logits = np.zeros((len(data), 1000), np.float32)
    logits[:, wnids.index("n01440764")] = 1   # "tench" whatever the image: spurious for tench only
    result = score(dict(zip(data.keys, logits_to_classes(logits, data, None))), out / "backgrounds", "backgrounds")
    assert result["classes"]["n01440764"]["accuracy"] == 1.0 and result["classes"]["n01443537"]["accuracy"] == 0.0
