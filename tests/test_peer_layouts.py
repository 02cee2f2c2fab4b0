"""The peer layouts read the way each peer's own evaluation code reads them (docs/format.md, "Peer layouts").

Each reader below re-implements, from the cited lines, what the peer's code does with a folder:
  - Mishalfatima/Corner_Cases: timm's validate.py / inference.py on `--data-dir <split>/<size>/Group_<g>`
    (pytorch-image-models/timm/data/dataset_factory.py lines 43-61 `_search_split`,
    timm/data/readers/reader_image_folder.py lines 18-56 `find_images_and_targets`, class_map.py lines 5-21,
    img_extensions.py line 6, timm/utils/misc.py line 10 `natural_key`; validate.py's top-1 = correct / n);
    file names as create_dataset.py `save_img` (lines 133-142) writes them, groups as lines 181-193 number them.
  - MadryLab/backgrounds_challenge: in9_eval.py line 37 (`{data_path}/{variation}`), tools/datasets.py line 14
    (`val`), tools/folder.py lines 38-53 (make_dataset), 107-127 (_find_classes), 160 (IMG_EXTENSIONS),
    tools/model_utils.py lines 104-116 (eval_model: correct / len(dataset)); in9_classes.txt's class order.
A stand-in "model" predicts from the pixels of the file it is given, so the peer's view (folders, names,
class indices) and `bgforge eval`'s (metadata.csv rows) must agree sample by sample for the scores to match.
"""

import csv
import json
import os
import re

import numpy as np
import pytest
from helpers import build
from PIL import Image
from typer.testing import CliRunner

import bgforge
from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.eval import across_splits, score
from bgforge.planners import BuildContext
from bgforge.sources.synthetic import make_imagenet

CLASSES = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
           "n01484850": "great white shark, white shark"}
# backgrounds_challenge in9_classes.txt, in class index order
IN9 = ["dog", "bird", "vehicle", "reptile", "carnivore", "insect", "instrument", "primate", "fish"]


def rows(out):
    with open(out / "metadata.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def model(path, n_classes):
    """A deterministic stand-in classifier: a class from the decoded pixels (the peers load with PIL, RGB)."""
    with open(path, "rb") as f:
        pixels = np.asarray(Image.open(f).convert("RGB"), dtype=np.int64)
    return int(pixels.sum() * 7 + pixels[::3, ::5].sum()) % n_classes


# ------------------------------------------------------------------ timm, as Corner Cases runs it
def natural_key(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.lower())]


def timm_search_split(root, split="validation"):
    """dataset_factory._search_split: `root/validation`, else an eval synonym folder, else root."""
    try_root = os.path.join(root, split)
    if os.path.exists(try_root):
        return try_root
    for s in ("val", "valid", "validation", "eval", "evaluation"):
        if os.path.exists(os.path.join(root, s)):
            return os.path.join(root, s)
    return root


def timm_find_images_and_targets(folder, class_to_idx=None):
    labels, filenames = [], []
    for root, _subdirs, files in os.walk(folder, topdown=False, followlinks=True):
        rel_path = os.path.relpath(root, folder) if root != folder else ""
        label = os.path.basename(rel_path)
        for f in files:
            if os.path.splitext(f)[1].lower() in {".png", ".jpg", ".jpeg"}:
                filenames.append(os.path.join(root, f))
                labels.append(label)
    if class_to_idx is None:
        class_to_idx = {c: i for i, c in enumerate(sorted(set(labels), key=natural_key))}
    samples = [(f, class_to_idx[lbl]) for f, lbl in zip(filenames, labels) if lbl in class_to_idx]
    return sorted(samples, key=lambda k: natural_key(k[0])), class_to_idx


def timm_class_map(path, root):
    if not os.path.exists(path):
        path = os.path.join(root, path)
    with open(path) as f:
        return {v.strip(): k for k, v in enumerate(f)}


@pytest.fixture(scope="module")
def hsi(tmp_path_factory):
    inet = make_imagenet(tmp_path_factory.mktemp("inet"), classes=CLASSES, n_train=6, n_val=4, size=(96, 72), seed=5)
    out = tmp_path_factory.mktemp("hsi") / "Hard-Spurious-ImageNet"
    r = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"),
                                  ["self_pairing=false", "splits=[val,test]", "quota.val=2", "val_images_per_class=2"])
    build(r, BuildContext(roots={"imagenet": inet}), out, layout="hsi", workers=2)
    return out


def test_hsi_folders_names_and_class_indices_are_what_corner_cases_reads(hsi):
    table = rows(hsi)
    assert not (hsi / "shards").exists() and len(table) == 12 * 3 * (2 + 4)
    by_file = {r["file_name"]: r for r in table}
    assert len(by_file) == len(table)
    seen = 0
    for split in ("val", "test"):
        class_map = timm_class_map("class_map.txt", hsi / split)  # --class-map OUT/<split>/class_map.txt
        assert list(class_map) == sorted(CLASSES)                   # the labels' order: bgforge label = line
        for size in (56, 84, 112):
            for g in (1, 2, 3, 4):
                data_dir = timm_search_split(str(hsi / split / str(size) / f"Group_{g}"))
                assert data_dir.endswith(f"Group_{g}")               # no split sub-folder is picked up instead
                samples, class_to_idx = timm_find_images_and_targets(data_dir)
                assert list(class_to_idx) == sorted(CLASSES)         # every class present: the default map is it
                assert timm_find_images_and_targets(data_dir, class_map)[0] == samples
                position, background = ("center" if g in (1, 3) else "corner"), ("own" if g in (1, 2) else "random")
                for path, target in samples:
                    r = by_file[os.path.relpath(path, hsi)]
                    assert target == int(r["label"]) and os.path.basename(os.path.dirname(path)) == r["wnid"]
                    assert (r["split"], int(r["size"]), r["position"], r["background"]) == (split, size, position,
                                                                                              background)
                    # create_dataset.py line 138: <source image stem>_<group>_<size>.JPEG
                    assert os.path.basename(path) == f"{r['fg_key']}_{g}_{size}.jpg"
                seen += len(samples)
    assert seen == len(table)


def test_hsi_group_accuracy_as_validate_py_computes_it_equals_bgforge_eval(hsi):
    table = rows(hsi)
    preds = {r["key"]: model(hsi / r["file_name"], len(CLASSES)) for r in table}
    for split in ("val", "test"):
        ours = score(preds, hsi, split)["groups"]
        for size in (56, 84, 112):
            for g, name in zip((1, 2, 3, 4), ("CeO", "CoO", "CeR", "CoR")):
                samples, _ = timm_find_images_and_targets(str(hsi / split / str(size) / f"Group_{g}"))
                correct = sum(model(path, len(CLASSES)) == target for path, target in samples)
                top1 = 100.0 * correct / len(samples)                 # validate.py's Acc@1, in percent
                theirs = ours[f"{name}-{size}"]
                assert len(samples) == theirs["n"]
                assert abs(top1 / 100 - theirs["accuracy"]) < 1e-6
    assert 0 < sum(p == int(r["label"]) for p, r in zip(preds.values(), table)) < len(table)  # not all one way


def test_hsi_folders_read_by_timms_own_create_dataset(hsi):
    """timm is on the package registry: its own folder reader (the one Corner Cases vendors, 1.0.16.dev0)
    reads each Group folder, with and without --class-map."""
    timm_data = pytest.importorskip("timm.data")
    by_file = {r["file_name"]: r for r in rows(hsi)}
    seen = 0
    for size in (56, 84, 112):
        for g in (1, 2, 3, 4):
            root = str(hsi / "test" / str(size) / f"Group_{g}")
            for class_map in ("", str(hsi / "test" / "class_map.txt")):
                ds = timm_data.create_dataset("", root=root, split="validation", class_map=class_map)
                samples = ds.reader.samples
                assert samples == timm_find_images_and_targets(root)[0]
                assert all(target == int(by_file[os.path.relpath(path, hsi)]["label"]) for path, target in samples)
            seen += len(samples)
    assert seen == sum(r["split"] == "test" for r in by_file.values())


def test_hsi_layout_is_refused_for_another_recipe(tmp_path, cub_root, places_root):
    with pytest.raises(BgforgeError, match="--layout hsi"):
        bgforge.build("waterbirds-95", tmp_path / "o", roots={"cub": cub_root, "places": places_root},
                      output=bgforge.OutputOptions(layout="hsi"))
    assert not (tmp_path / "o" / "plan.json").exists()


# ------------------------------------------------------------------ backgrounds_challenge's in9_eval.py
def in9_find_classes(folder):
    classes = sorted(d.name for d in os.scandir(folder) if d.is_dir())
    return classes, {c: i for i, c in enumerate(classes)}


def in9_make_dataset(folder, class_to_idx):
    images = []
    for target in sorted(class_to_idx):
        d = os.path.join(folder, target)
        if not os.path.isdir(d):
            continue
        for root, _, fnames in sorted(os.walk(d)):
            for fname in sorted(fnames):
                if any(fname.lower().endswith(e) for e in (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif")):
                    images.append((os.path.join(root, fname), class_to_idx[target]))
    return images


def in9_dataset(data_path, variation):
    test_path = os.path.join(f"{data_path}/{variation}", "val")
    if not os.path.exists(test_path):
        raise ValueError(f"Test data must be stored in {test_path}")
    classes, class_to_idx = in9_find_classes(test_path)
    return classes, in9_make_dataset(test_path, class_to_idx)


@pytest.fixture(scope="module")
def in9(tmp_path_factory):
    """Two 24x20 photos per ImageNet-9 class (labels spelled as in9_classes.txt), each with a box and a mask."""
    src = tmp_path_factory.mktemp("in9src")
    rng = np.random.default_rng(4)
    lines = []
    for label in reversed(IN9):   # listed out of order: the class order must come from the names
        for j in range(2):
            name = f"{label}_{j}"
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(src / f"{name}.png")
            mask = np.zeros((20, 24), np.uint8)
            mask[5:14, 6:17] = 255
            Image.fromarray(mask).save(src / f"{name}_mask.png")
            lines.append({"key": name, "path": f"{name}.png", "label": label.capitalize(), "boxes": [[4, 3, 19, 16]],
                          "mask": f"{name}_mask.png", "split": "val"})
    (src / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path_factory.mktemp("in9") / "bg_challenge"
    res = CliRunner().invoke(app, ["variants", "--input", str(src), "--manifest", str(src / "manifest.jsonl"),
                                   "--out", str(out), "--layout", "in9", "-q", "--construction", "bgforge"])
    assert res.exit_code == 0, res.output
    return out


def test_in9_folders_and_class_order_are_what_in9_eval_reads(in9):
    table = rows(in9)
    variants = sorted({r["variant"] for r in table})
    assert len(variants) == 8 and not (in9 / "shards").exists()
    by_file = {r["file_name"]: r for r in table}
    for variant in variants:
        classes, samples = in9_dataset(in9, variant)
        # the folders sort into in9_classes.txt's order: index i is IN-9 class i (what in_to_in9.json maps to)
        assert [c.split("_", 1)[1] for c in classes] == [c.capitalize() for c in IN9]
        assert [int(c[:2]) for c in classes] == list(range(9))
        ours = [r for r in table if r["variant"] == variant]
        assert len(samples) == len(ours)
        for path, target in samples:
            r = by_file[os.path.relpath(path, in9)]
            assert target == int(r["class_index"]) == IN9.index(r["label"].lower())
            assert os.path.basename(path) == f"{r['source_key']}.png"


def test_in9_accuracy_as_eval_model_computes_it_equals_bgforge_eval_and_the_bg_gap(in9):
    table = rows(in9)
    per_variant = {}
    for variant in sorted({r["variant"] for r in table}):
        _, samples = in9_dataset(in9, variant)
        correct = sum(model(path, 9) == target for path, target in samples)   # --in9: no IN -> IN-9 mapping
        preds = {r["key"]: model(in9 / r["file_name"], 9) for r in table if r["variant"] == variant}
        per_variant[variant] = ours = score(preds, in9, variant)
        assert ours["n"] == len(samples) and abs(correct / len(samples) - ours["accuracy"]) < 1e-6
    gap = across_splits(per_variant)["bg_gap"]
    assert abs(gap - (per_variant["mixed_same"]["accuracy"] - per_variant["mixed_rand"]["accuracy"])) < 1e-6


def test_in9_layout_refuses_a_class_index_past_99():
    from bgforge.io.peer_layouts import in9_class_folder

    assert in9_class_folder({"class_index": 8, "label": "08_fish"}) == "08_fish"
    with pytest.raises(BgforgeError, match="00_ to 99_"):
        in9_class_folder({"class_index": 100, "label": "x"})


@pytest.mark.parametrize("which", ["hsi", "in9"])
def test_croissant_of_a_peer_layout_loads_every_sample_from_its_file(which, request):
    import logging

    mlc = pytest.importorskip("mlcroissant")
    out = request.getfixturevalue(which)
    table = {r["key"]: r for r in rows(out)}
    logging.disable(logging.WARNING)
    try:
        got = list(mlc.Dataset(jsonld=str(out / "croissant.json")).records("samples"))
    finally:
        logging.disable(logging.NOTSET)
    assert len(got) == len(table)
    for rec in got:
        row = table.pop(rec["samples/key"].decode())
        assert rec["samples/image_path"].decode() == row["file_name"] and rec["samples/split"].decode() == row["split"]
        with open(out / row["file_name"], "rb") as f:
            assert np.array_equal(np.asarray(rec["samples/image"].convert("RGB")), np.asarray(Image.open(f).convert("RGB")))
    assert not table


def test_the_card_loads_a_peer_layout_in_hugging_face_datasets(in9, monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    full = datasets.load_dataset(str(in9), cache_dir=str(tmp_path / "cache"))["full"]   # no earlier run's cache
    table = {r["key"]: r for r in rows(in9)}
    assert sorted(full["key"]) == sorted(table)
    first = full[0]
    assert first["class_index"] == int(table[first["key"]]["class_index"]) and first["image"].size == (24, 20)
