"""Inputs and parameters (issue 29, points 9-12): EXIF orientation applied on read and stored without the
tag, one image extension per output, `--set` values and recipe files the recipe cannot mean refused in
one line, the same image twice in a manifest, dropped boxes counted once, and a run where every sample
fails stopped early."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.io import images
from bgforge.recipe import apply_overrides, load
from bgforge.records import Failure, Output

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_exit_2(res) -> bool:
    lines = [x for x in res.output.splitlines() if x.strip()]
    return res.exit_code == 2 and len(lines) == 1 and "Traceback" not in res.output and (
        res.exception is None or isinstance(res.exception, SystemExit))


def tagged(arr: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, exif=ex.tobytes())
    return buf.getvalue()


PIXELS = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
PIXELS[:30, :40] = 255  # a corner that shows which way the image was turned


# ---------------------------------------------------------------- 9. EXIF orientation
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("o", range(1, 9))
def test_every_decode_applies_the_exif_orientation_as_exif_transpose(tmp_path, fmt, o):
    path = tmp_path / f"img.{fmt.lower()}"
    path.write_bytes(tagged(PIXELS, o, fmt))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.array_equal(images.rgb_pixels(path.read_bytes()), shown)
    assert np.array_equal(np.asarray(images.open_image(path)), shown)
    assert np.array_equal(images.read_rgb(path, exact=True), shown)
    assert images.image_size(path) == (shown.shape[1], shown.shape[0])
    # the DCT-reduced read: still covers the asked size in the shown orientation, and is turned the same way
    fast = images.read_rgb(path, cover=(30, 40))
    assert fast.shape[1] >= 30 and fast.shape[0] >= 40
    assert (fast.shape[0] > fast.shape[1]) == (shown.shape[0] > shown.shape[1])
    small = np.asarray(Image.fromarray(shown).resize(fast.shape[1::-1], Image.BILINEAR), dtype=float)
    assert np.abs(small - fast).mean() < 25  # the same picture, not a turned one
    arr, raw, ext = images.sample_image({"image": str(path)})
    assert np.array_equal(arr, shown) and images.orientation(raw) == 1  # stored as shown, without the tag
    assert Image.open(io.BytesIO(raw)).size == (shown.shape[1], shown.shape[0])
    if o == 1:
        assert raw == path.read_bytes()  # an untagged image keeps its bytes


@pytest.mark.parametrize("endian", ["<", ">"])
def test_the_exif_parser_reads_what_pillow_reads(endian):
    """io.orientation parses a JPEG's Exif block itself (no Pillow per image): the same value as getexif(),
    in both byte orders, for every tag value, and from an XMP packet when there is no Exif tag."""
    from bgforge.io.orientation import orientation

    small = PIXELS[:8, :12]
    for o in range(10):
        ex = Image.Exif()
        ex.endian = endian
        ex[0x0112], ex[0x010F] = o, "camera"
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, "JPEG", exif=ex.tobytes())
        assert orientation(buf.getvalue()) == Image.open(io.BytesIO(buf.getvalue())).getexif().get(0x0112, 1)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, "JPEG", xmp=xmp)
    assert orientation(buf.getvalue()) == 6


def test_masks_are_read_in_their_shown_orientation(tmp_path):
    mask = np.zeros((120, 160), np.uint8)
    mask[:30, :40] = 255
    (tmp_path / "m.png").write_bytes(tagged(mask, 6, "PNG"))
    got = images.open_mask(tmp_path / "m.png")
    assert got.shape == (160, 120) and np.array_equal(got, np.rot90(mask, -1))


def segment_folder(tmp_path, files: dict, boxes=None, split="train"):
    inp = tmp_path / "in"
    inp.mkdir()
    rows = []
    for name, data in files.items():
        (inp / name).write_bytes(data)
        rows.append({"path": name, "split": split, "label": "a", "boxes": boxes or [[2, 2, 100, 110]]})
    (inp / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = invoke("segment", "-i", inp, "-m", inp / "manifest.jsonl", "-b", "box", "-o", tmp_path / "out", "-q")
    return res, tmp_path / "out"


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def hf_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def test_hugging_face_gets_image_and_mask_of_one_size_and_one_image_column(tmp_path, hf_offline):
    """An EXIF-turned JPEG (box drawn on the shown 120 x 160 image) beside PNGs: 10. and 9. together."""
    datasets = pytest.importorskip("datasets")
    res, out = segment_folder(tmp_path, {"turned.jpg": tagged(PIXELS, 6), "plain.png": png(PIXELS),
                                         "other.png": png(PIXELS[::-1].copy())})
    assert res.exit_code == 0, res.output
    errors = (out / "errors.jsonl").read_text()
    assert "BadBox" not in errors  # the box fits the shown 120-wide image
    ds = datasets.load_dataset(str(out))["train"]
    image_columns = [c for c in ds.column_names if c in ("jpg", "png", "jpeg", "webp")]
    assert image_columns == ["png"] and ds.num_rows == 3
    for row in ds:
        assert row["png"].size == row["mask.png"].size
    sizes = {row["__key__"].rsplit("/", 1)[-1]: row["png"].size for row in ds}
    assert sizes["turned"] == (120, 160) and sizes["plain"] == (160, 120)


def test_inputs_of_one_format_keep_their_bytes(tmp_path):
    from bgforge.io.shards import iter_shard

    jpgs = {f"p{i}.jpg": tagged(PIXELS, 1) for i in range(2)}
    res, out = segment_folder(tmp_path, jpgs)
    assert res.exit_code == 0, res.output
    stored = [files for tar in sorted((out / "shards").glob("*.tar")) for _, files in iter_shard(tar)]
    assert [set(f) & {"jpg", "png"} for f in stored] == [{"jpg"}, {"jpg"}]
    assert all(f["jpg"] == jpgs["p0.jpg"] for f in stored)


def test_passed_through_originals_take_the_outputs_format():
    from bgforge.io.encoding import Encoding
    from bgforge.stages.common import stored_image

    raw = tagged(PIXELS, 1)
    assert stored_image(PIXELS, raw, "jpg", "jpg") == ("jpg", raw)
    ext, data = stored_image(PIXELS, raw, "jpg", "png", Encoding("png"))
    assert ext == "png" and np.array_equal(np.asarray(Image.open(io.BytesIO(data))), PIXELS)
    assert stored_image(PIXELS, raw, "png", None) == ("png", raw)


# ---------------------------------------------------------------- 11. --set values and recipe files
HSI_BAD = ["positions=[nowhere]", "positions=[center, nowhere]", "positions=[center, center]", "positions=[]",
           "corner=left", "sizes=[]", "sizes=[56, 56]", "quota.val=-1", "quota.train.easy=-3",
           "quota={train: -1, val: 2}", "splits=[]", "splits=[train, bogus]", "jpeg_quality=0",
           "jpeg_quality=101", "background_jpeg_quality=101", "background_jpeg_quality=-1", "classes=2020-01-01",
           "classes=.nan", "background_class={1: 2}", "classes=!!binary aGk=", "seed=2020-01-01"]


@pytest.mark.parametrize("assignment", HSI_BAD)
def test_set_values_the_recipe_cannot_mean_are_refused(assignment):
    with pytest.raises(BgforgeError):
        apply_overrides(load("hard-spurious-imagenet"), [assignment])


@pytest.mark.parametrize("assignment", ["positions=[nowhere]", "corner=left", "sizes=[]", "quota.val=-1",
                                        "splits=[]", "jpeg_quality=101", "classes=2020-01-01"])
def test_set_refusals_are_one_line_exit_2_on_the_cli(tmp_path, assignment):
    res = invoke("build", "hard-spurious-imagenet", "--demo", "--dry-run", "--out", tmp_path / "o", "--set", assignment)
    assert one_line_exit_2(res), res.output
    assert assignment.split("=")[0].split(".")[0] in res.output


def test_set_values_the_recipe_means_still_pass():
    r = apply_overrides(load("hard-spurious-imagenet"), ["positions=[corner]", "corner=random", "sizes=[56]",
                                                         "quota.val=0", "splits=[test]", "jpeg_quality=100",
                                                         "background_jpeg_quality=0"])
    assert r.params["positions"] == ["corner"] and r.params["quota"]["val"] == 0


JUNK = ["-1", "[]", "{}", "x", "1e9", "null", "[[]]", "true", "[-5]", "0", "{a: 1}", "[x]", "1.5", "''", ".nan",
        "2020-01-01"]


def test_no_set_value_reaches_the_planner_as_a_crash():
    """Every parameter of every shipped recipe, set to junk: a one-line BgforgeError or accepted, never
    another exception from the checks or the planner's own validation."""
    from bgforge import planners
    from bgforge.params import check_params
    from bgforge.recipe import available

    crashes = []
    for name in available():
        recipe = load(name)
        planner = planners.get(recipe.planner)
        for key in recipe.params:
            for value in JUNK:
                try:
                    changed = apply_overrides(recipe, [f"{key}={value}"])
                    check_params(changed.params)
                    planner.validate(changed.params)
                except BgforgeError:
                    pass
                except Exception as exc:  # noqa: BLE001 - what the test looks for
                    crashes.append(f"{name} {key}={value}: {type(exc).__name__}: {exc}")
    assert not crashes, crashes[:10]


RECIPE_FILES = [b"- a\n- b\n", b"just a string\n", b"42\n", b"", b"name: x\nplanner: waterbirds\nparams: 5\n",
                b"name: x\nplanner: waterbirds\nparams: [1, 2]\n", b"name: [x]\nplanner: waterbirds\nparams: {}\n",
                b"name: x\nplanner: waterbirds\nparams: {1: 2}\n", b"name: x\nplanner: {a: 1}\nparams: {}\n",
                b"name: x\nplanner: waterbirds\nparams: {seed: 2020-01-01}\n", b"name: \xff\xfe\n",
                b"name: x\nplanner: waterbirds\nsources: 5\nparams: {}\n",
                b"a: &a [1, 2]\nb: &b [*a, *a]\nname: x\nplanner: waterbirds\nparams: {x: *b}\n",
                b"name: x\nplanner: waterbirds\nparams: {seed: " + b"[" * 5000 + b"]" * 5000 + b"}\n"]


@pytest.mark.parametrize("i", range(len(RECIPE_FILES)))
def test_recipe_files_that_are_not_recipes_are_one_line_exit_2(tmp_path, i):
    path = tmp_path / "r.yaml"
    path.write_bytes(RECIPE_FILES[i])
    res = invoke("build", path, "--demo", "--dry-run", "--out", tmp_path / "o")
    assert one_line_exit_2(res), (res.output, res.exception)
    assert "r.yaml" in res.output


# ---------------------------------------------------------------- 12. manifests, dropped boxes, failing runs
def test_the_same_image_in_two_splits_is_refused_with_both_keys(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.png").write_bytes(png(PIXELS))
    (inp / "b.png").write_bytes(png(PIXELS[::-1].copy()))
    rows = [{"key": "first", "path": "a.png", "split": "train", "boxes": [[1, 1, 9, 9]]},
            {"key": "other", "path": "b.png", "split": "train", "boxes": [[1, 1, 9, 9]]},
            {"key": "again", "path": "./a.png", "split": "test", "boxes": [[1, 1, 9, 9]]}]
    (inp / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = invoke("segment", "-i", inp, "-m", inp / "m.jsonl", "-b", "box", "-o", tmp_path / "out", "-q")
    assert one_line_exit_2(res) and "'first'" in res.output and "'again'" in res.output and "leak" in res.output
    assert not (tmp_path / "out").exists()


def test_the_same_image_twice_in_one_split_is_warned_with_the_keys(tmp_path, caplog):
    from bgforge.sources.folder import load_folder

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.png").write_bytes(png(PIXELS))
    (inp / "m.jsonl").write_text(json.dumps({"key": "k1", "path": "a.png"}) + "\n"
                                 + json.dumps({"key": "k2", "path": str(inp / "a.png")}) + "\n")
    with caplog.at_level("WARNING"):
        assert len(load_folder(inp, inp / "m.jsonl")) == 2
    assert "k1 = k2" in caplog.text and "twice" in caplog.text


def test_a_sample_with_a_dropped_box_is_written_and_not_counted_as_an_error(tmp_path):
    res, out = segment_folder(tmp_path, {"a.png": png(PIXELS)}, boxes=[[2, 2, 50, 50], [500, 500, 600, 600]])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 1} and manifest["errors"] == 0
    notes = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert [n["error_type"] for n in notes] == ["BadBox"] and notes[0]["sample_kept"] is True
    status = invoke("status", out, "--json")
    assert json.loads(status.output)["errors"] == 0


def test_failure_streak_counts_failures_in_a_row():
    from bgforge.execution.failstreak import FailureStreak, TooManyFailures

    streak = FailureStreak(3)
    fail = [Failure(f"k{i}", "read_image", "SampleError", f"cannot decode k{i}") for i in range(4)]
    ok = Output(key="good", files={}, meta={})
    streak.see([fail[0], fail[1], ok, fail[2], fail[3]])  # the written sample breaks the streak
    with pytest.raises(TooManyFailures, match="last 3 samples all failed.*k2 at read_image.*cannot decode k2"):
        streak.see([fail[0]])
    shards = FailureStreak(5)
    shards.see_shard({"samples": 0, "errors": 4, "error_records": [fail[1].to_dict()]})
    shards.see_shard({"samples": 2, "errors": 9, "error_records": [fail[2].to_dict()]})  # reset
    with pytest.raises(TooManyFailures, match="k3"):
        shards.see_shard({"samples": 0, "errors": 5, "error_records": [fail[3].to_dict()]})


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_where_every_sample_fails_stops_early_with_the_first_cause(tmp_path, workers):
    inp = tmp_path / "in"
    inp.mkdir()
    names = [f"broken{i:02d}.png" for i in range(40)]
    for n in names:
        (inp / n).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # cut short: every decode fails
    (inp / "m.jsonl").write_text("".join(json.dumps({"path": n, "boxes": [[1, 1, 9, 9]]}) + "\n" for n in names))
    res = invoke("segment", "-i", inp, "-m", inp / "m.jsonl", "-b", "box", "-o", tmp_path / "out", "-q",
                 "--workers", workers, env={**os.environ, "BGFORGE_MAX_CONSECUTIVE_FAILURES": "10"})
    assert res.exit_code == 1, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "stopped: the last" in lines[0] and "broken00" in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out" / "manifest.json").exists()
