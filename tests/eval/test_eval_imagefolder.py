"""--layout imagefolder and eval, through torchvision's own `ImageFolder` (issues 30.8 and 33.2):
OUT/classes.json holds the class order ImageFolder assigns and each folder's label, eval reads index
predictions through it, folder names are class names, and ImageNet's colliding names ("crane" x 2)
get unique, stable folders (the wnid)."""

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers import build
from torchvision.datasets import ImageFolder
from typer.testing import CliRunner

from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.planners import BuildContext
from bgforge.sources.synthetic import make_imagenet

runner = CliRunner()


@pytest.fixture(scope="module")
def urbancars_if(tmp_path_factory):
    out = tmp_path_factory.mktemp("uc-if") / "o"
    res = runner.invoke(app, ["build", "urbancars", "--demo", "--layout", "imagefolder", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def imagefolder_predictions(out: Path, split: str, path: Path, as_names: bool = False) -> ImageFolder:
    """A perfect classifier trained with torchvision's ImageFolder: each image's own ImageFolder target."""
    ds = ImageFolder(str(out / split))
    with open(path, "w") as fh:
        fh.write("key,pred\n")
        for file, target in ds.samples:
            fh.write(f"{Path(file).stem},{ds.classes[target] if as_names else target}\n")
    return ds


def scored(out, path, *extra):
    res = runner.invoke(app, ["eval", str(out), "-p", str(path), "--json", *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


@pytest.mark.slow
def test_a_perfect_imagefolder_classifier_scores_1_on_urbancars(urbancars_if, tmp_path):
    out = urbancars_if
    classes = json.loads((out / "classes.json").read_text())
    ds = imagefolder_predictions(out, "test", tmp_path / "idx.csv")
    assert classes["splits"]["test"] == ds.classes == ["country_car", "urban_car"]
    # ImageFolder's order is not the label column's here (y = 0 is urban): the case that scored 0.000
    rows = {r["key"]: r for r in csv.DictReader(open(out / "metadata.csv"))}
    for file, target in ds.samples:
        assert classes["folders"][ds.classes[target]]["label"] == int(rows[Path(file).stem]["y"])
    assert {int(rows[Path(f).stem]["y"]) for f, t in ds.samples if t == 0} == {1}
    result = scored(out, tmp_path / "idx.csv")
    assert result["accuracy"] == 1.0 and result["index_order"] == "imagefolder" and result["n"] == len(ds)
    assert result["i_avg"] == 1.0
    # the same indices read as the label column's: every one wrong, which is what the flag says it does
    assert scored(out, tmp_path / "idx.csv", "--index-order", "label")["accuracy"] == 0.0
    # folder names are class names
    imagefolder_predictions(out, "test", tmp_path / "names.csv", as_names=True)
    assert scored(out, tmp_path / "names.csv")["accuracy"] == 1.0


@pytest.mark.slow
def test_imagefolder_index_outside_its_classes_is_one_line(urbancars_if, tmp_path):
    key = next(r["key"] for r in csv.DictReader(open(urbancars_if / "metadata.csv")) if r["split"] == "test")
    path = tmp_path / "p.csv"
    path.write_text(f"key,pred\n{key},2\n")
    res = runner.invoke(app, ["eval", str(urbancars_if), "-p", str(path), "--allow-missing"])
    assert res.exit_code == 2 and "outside ImageFolder's 2 classes" in res.output


# ---------------------------------------------------------------- ImageNet's colliding names
CRANES = {"n02012849": "crane", "n03126707": "crane"}   # the bird and the machine: one name in ImageNet-1k


@pytest.fixture(scope="module")
def cranes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cranes")
    inet = make_imagenet(tmp / "inet", classes=CRANES, n_train=12, n_val=2, size=(96, 72), seed=4)
    (inet / "LOC_synset_mapping.txt").write_text("".join(f"{w} {n}\n" for w, n in CRANES.items()))
    recipe = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), [
        "quota.train.easy=2", "quota.train.medium=1", "quota.train.hard=1", "quota.val=1", "val_images_per_class=2",
        f"classes=[{', '.join(CRANES)}]"])
    build(recipe, BuildContext(roots={"imagenet": inet}), tmp / "hsi", shard_size=4, layout="imagefolder")
    return tmp / "hsi"


def test_colliding_names_get_unique_stable_folders_and_score_through_imagefolder(cranes, tmp_path):
    out = cranes
    rows = list(csv.DictReader(open(out / "metadata.csv")))
    assert {r["class_name"] for r in rows} == {"crane"} and {r["wnid"] for r in rows} == set(CRANES)
    split = "train"
    folders = sorted(p.name for p in (out / split).iterdir() if p.is_dir())
    assert folders == sorted(CRANES)                       # two folders for two classes, named by wnid
    for r in rows:
        assert Path(r["file_name"]).parts[1] == r["wnid"]
    classes = json.loads((out / "classes.json").read_text())
    assert classes["folders"]["n02012849"]["name"] == classes["folders"]["n03126707"]["name"] == "crane"
    ds = imagefolder_predictions(out, split, tmp_path / "idx.csv")
    assert classes["splits"][split] == ds.classes
    assert scored(out, tmp_path / "idx.csv", "--split", split)["accuracy"] == 1.0
    # by wnid (the folder name) too; the shared name is refused, in one line, naming both wnids
    imagefolder_predictions(out, split, tmp_path / "names.csv", as_names=True)
    assert scored(out, tmp_path / "names.csv", "--split", split)["accuracy"] == 1.0
    key = next(r["key"] for r in rows if r["split"] == split)
    (tmp_path / "crane.csv").write_text(f"key,pred\n{key},crane\n")
    res = runner.invoke(app, ["eval", str(out), "-p", str(tmp_path / "crane.csv"), "--split", split, "--allow-missing"])
    assert res.exit_code == 2 and "'crane' names 2 classes (n02012849, n03126707)" in res.output, res.output


# ---------------------------------------------------------------- recipe headlines, printed by name (30.7)
@pytest.mark.slow
def test_urbancars_headlines_on_the_console_and_in_scores_md(urbancars_if, tmp_path):
    """A background-only classifier (metadata.csv's `bg`, read as the label column's indices): Whac-A-Mole's
    I-Avg and gaps recomputed here from y / bg / co_obj, printed by name, and 0/1 codes named."""
    out = urbancars_if
    test = [r for r in csv.DictReader(open(out / "metadata.csv")) if r["split"] == "test"]
    cells = {}
    for r in test:
        y, bg, co = int(r["y"]), int(r["bg"]), int(r["co_obj"])
        cell = {(True, True): "both_aligned", (False, True): "bg_misaligned", (True, False): "co_obj_misaligned",
                (False, False): "both_misaligned"}[(bg == y, co == y)]
        cells.setdefault(cell, []).append(bg == y)
    acc = {c: sum(v) / len(v) for c, v in cells.items()}
    weights = {"both_aligned": 0.9025, "bg_misaligned": 0.0475, "co_obj_misaligned": 0.0475, "both_misaligned": 0.0025}
    i_avg = sum(acc[c] * w for c, w in weights.items()) / sum(weights.values())
    res = runner.invoke(app, ["eval", str(out), "-p", str(out / "metadata.csv"), "--pred-column", "bg", "--index-order",
                              "label", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert f"I-Avg {100 * i_avg:.1f}%" in line
    assert f"BG gap {100 * (acc['bg_misaligned'] - i_avg):+.1f} points" in line
    assert f"CoObj gap {100 * (acc['co_obj_misaligned'] - i_avg):+.1f} points" in line
    assert f"BG+CoObj gap {100 * (acc['both_misaligned'] - i_avg):+.1f} points" in line
    scores = (tmp_path / "r" / "scores.md").read_text()
    assert f"| I-Avg (Whac-A-Mole) | {100 * i_avg:.1f} |" in scores
    assert f"| BG gap (Whac-A-Mole) | {100 * (acc['bg_misaligned'] - i_avg):+.1f} points |" in scores
    assert "| 0 (urban) |" in scores and "| 1 (country) |" in scores


def test_hsi_difficulty_breakdown_by_name(cranes, tmp_path):
    rows = [r for r in csv.DictReader(open(cranes / "metadata.csv")) if r["split"] == "train"]
    always = "n02012849"   # one class whatever the image
    path = tmp_path / "p.csv"
    path.write_text("key,pred\n" + "".join(f"{r['key']},{always}\n" for r in rows))
    res = runner.invoke(app, ["eval", str(cranes), "-p", str(path), "--split", "train", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    by = {}
    for r in rows:
        by.setdefault(r["difficulty"], []).append(r["wnid"] == always)
    assert len(by) >= 2
    for level, hits in by.items():
        assert f"{level} {100 * sum(hits) / len(hits):.1f}%" in line.split("difficulty ", 1)[1]
    assert "| difficulty | n | predicted | accuracy % |" in (tmp_path / "r" / "scores.md").read_text()


def test_bg_gap_across_imagenet9_variants_is_printed_by_name():
    from bgforge.eval.report import across_markdown
    from bgforge.eval.score import across_splits

    doc = across_splits({"original": {"accuracy": 0.9}, "mixed_same": {"accuracy": 0.8}, "mixed_rand": {"accuracy": 0.65}})
    assert doc["bg_gap"] == pytest.approx(0.15)
    assert "BG-gap (mixed_same - mixed_rand) +15.0 points (backgrounds_challenge)" in across_markdown(doc)


class AlwaysFirstFolder(torch.nn.Module):
    """Two logits, ImageFolder's class 0 always ahead: a model trained on ImageFolder(OUT/train)."""

    def forward(self, x):
        return torch.stack([x.mean(dim=(1, 2, 3)) * 0 + 1, x.mean(dim=(1, 2, 3)) * 0], dim=1)


@pytest.mark.slow
def test_a_models_logits_are_read_in_imagefolder_order_and_its_predictions_rescore(urbancars_if, tmp_path):
    out = urbancars_if
    torch.jit.script(AlwaysFirstFolder()).save(str(tmp_path / "m.pt"))
    res = runner.invoke(app, ["eval", str(out), "--model", str(tmp_path / "m.pt"), "--transform", "resize:16",
                              "--json", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    made = json.loads(res.output)
    test = [r for r in csv.DictReader(open(out / "metadata.csv")) if r["split"] == "test"]
    first = ImageFolder(str(out / "test")).classes[0]          # country_car: y = 1
    label = json.loads((out / "classes.json").read_text())["folders"][first]["label"]
    assert made["accuracy"] == pytest.approx(sum(int(r["y"]) == label for r in test) / len(test))
    again = scored(out, tmp_path / "r" / "predictions.csv")
    made.pop("transform")
    assert again == made
