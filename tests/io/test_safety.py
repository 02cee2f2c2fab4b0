"""Safety: nothing written or deleted outside --out or inside an input; bad values are one-line exit-2 errors."""

import json
import os
import random
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.execution import commit as commitmod
from bgforge.execution import guard
from bgforge.io import paths
from bgforge.io.images import open_image
from bgforge.params import check_params
from bgforge.recipe import apply_overrides, load
from bgforge.sources.cub import CubSource
from bgforge.sources.folder import load_folder

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_usage_error(res) -> bool:
    return res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit)


def make_folder(root, names=("a.png", "b.png"), manifest=None):
    root.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(root / n)
    if manifest is None:  # the box segmenter needs boxes
        manifest = [{"path": n, "boxes": [[2, 2, 20, 16]]} for n in names]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    return root


def segment(inp, out, *extra):
    manifest = ["-m", inp / "manifest.jsonl"] if (inp / "manifest.jsonl").exists() else []
    return invoke("segment", "-i", inp, *manifest, "-b", "box", "-o", out, "-q", *extra)


def snapshot(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


# ---------------------------------------------------------------- the path rule
@pytest.mark.parametrize("split", ["../../other/shards/train", "/abs/train", "a/b", "{x}", "x" * 33])
def test_split_used_as_path_is_refused_at_planning(tmp_path, split):
    inp = make_folder(tmp_path / "in", manifest=[{"path": "a.png", "split": split, "boxes": [[1, 1, 9, 9]]}])
    res = segment(inp, tmp_path / "out")
    assert res.exit_code == 2 and "split name" in res.output
    assert not (tmp_path / "other").exists() and not (tmp_path / "out").exists()


def test_readable_unique_unicode_keys():
    taken = set()
    keys = [paths.unique_key(n, taken) for n in ("日本.jpg", "中国.jpg", "a b.jpg", "a_b.jpg")]
    assert keys[:3] == ["日本", "中国", "a_b"] and keys[3].startswith("a_b_") and len(set(keys)) == 4
    assert len(paths.readable_key("x" * 300).encode()) <= paths.KEY_MAX_BYTES


@pytest.mark.parametrize("rel", ["../X/bird.jpg", "/etc/passwd", "a/../../b.jpg", "a\\..\\b.jpg"])
def test_output_paths_stay_inside_out(tmp_path, rel):
    with pytest.raises(BgforgeError):
        paths.inside(tmp_path, rel)
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(BgforgeError):
        paths.inside(tmp_path, "link/escape.jpg")


def test_cub_images_txt_escape_duplicate_and_unknown_split(cub_root, tmp_path):
    root = tmp_path / "cub"
    shutil.copytree(cub_root, root)
    lines = (root / "images.txt").read_text().splitlines()
    for bad, what in ((f"{lines[0]}\n1 ../../X/bird.jpg\n", "appears twice"),
                      ("1 ../../X/bird.jpg\n", "not a plain relative path"),
                      ("1 /abs/bird.jpg\n", "not a plain relative path")):
        (root / "images.txt").write_text(bad + "\n".join(lines[1:]) + "\n")
        with pytest.raises(BgforgeError, match=what):
            CubSource(root).images()
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    split = (root / "train_test_split.txt").read_text().splitlines()
    (root / "train_test_split.txt").write_text("\n".join([split[0].split()[0] + " 2"] + split[1:]) + "\n")
    with pytest.raises(BgforgeError, match="expected 1 .train. or 0"):
        CubSource(root).images()


# ---------------------------------------------------------------- --out and --overwrite
def test_out_overlapping_an_input_is_refused(tmp_path):
    inp = make_folder(tmp_path / "in")
    before = snapshot(inp)
    for out in (inp, inp / "sub", tmp_path):
        res = segment(inp, out)
        assert res.exit_code == 2 and "input" in res.output, res.output
    assert snapshot(inp) == before


def test_foreign_folder_refused_and_overwrite_removes_only_what_bgforge_wrote(tmp_path):
    inp = make_folder(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert segment(inp, out).exit_code == 2  # not a bgforge output
    (out / "keep.txt").unlink()
    assert segment(inp, out).exit_code == 0
    (out / "keep.txt").write_text("mine")
    (out / "notes").mkdir()
    (out / "notes" / "n.md").write_text("x")
    # a bad new run (missing input) deletes nothing
    assert segment(tmp_path / "missing", out, "--overwrite").exit_code == 2
    assert (out / "plan.json").exists()
    assert segment(inp, out, "--overwrite").exit_code == 0
    assert (out / "keep.txt").read_text() == "mine" and (out / "notes" / "n.md").exists()
    guard.clear_previous(out)
    assert sorted(p.name for p in out.iterdir()) == [".bgforge", "keep.txt", "notes"]


def test_lock_refuses_a_second_non_sliced_run(tmp_path):
    out = tmp_path / "out"
    with guard.locked(out, sliced=False):
        with pytest.raises(BgforgeError, match="another bgforge run"):
            with guard.locked(out, sliced=True):
                pass
    with guard.locked(out, sliced=True), guard.locked(out, sliced=True):
        pass  # array slices run side by side


# ---------------------------------------------------------------- resume and damaged shards
def test_damaged_shard_is_rebuilt_byte_identical(tmp_path):
    inp = make_folder(tmp_path / "in", names=[f"{i}.png" for i in range(4)])
    out = tmp_path / "out"
    assert segment(inp, out, "--shard-size", "2").exit_code == 0
    tar = sorted((out / "shards").glob("*.tar"))[0]
    good = tar.read_bytes()
    name = tar.name[:-4]
    assert commitmod.is_committed(out, name, verify=True)
    tar.write_bytes(good[:100])
    assert not commitmod.is_committed(out, name)
    assert segment(inp, out, "--shard-size", "2").exit_code == 0
    assert tar.read_bytes() == good
    commitmod.shard_stats(out, name).write_text("garbage")
    assert invoke("status", out).exit_code == 0
    assert segment(inp, out, "--shard-size", "2").exit_code == 0
    assert tar.read_bytes() == good and commitmod.is_committed(out, name, verify=True)
    # the same bytes, flipped: size check passes, sha256 does not
    tar.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert commitmod.is_committed(out, name) and not commitmod.is_committed(out, name, verify=True)


def test_relative_and_absolute_input_resume(tmp_path, monkeypatch):
    inp = make_folder(tmp_path / "in")
    assert segment(inp, tmp_path / "out").exit_code == 0
    monkeypatch.chdir(tmp_path)
    res = invoke("segment", "-i", "in", "-m", "in/manifest.jsonl", "-b", "box", "-o", "out", "-q")
    assert res.exit_code == 0, res.output


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("assignment", ["seed=abc", "train_strength=abc", "land_places=5", "jpeg_quality=500",
                                        "val_frac=2", "seed=[1", "seed.x=1", "output_size=100000"])
def test_bad_set_values_are_one_line_errors(assignment):
    with pytest.raises(BgforgeError, match=assignment.split("=")[0].split(".")[0]):
        apply_overrides(load("waterbirds-95"), [assignment])


@pytest.mark.parametrize("params", [{"canvas": 0}, {"size": 100000}, {"image_format": "gif"}, {"jpeg_quality": 0}])
def test_schema_bounds(params):
    with pytest.raises(BgforgeError, match=next(iter(params))):
        check_params(params)


def test_cli_usage_errors_exit_2(tmp_path):
    inp = make_folder(tmp_path / "in")
    res = invoke("build", "waterbirds-100", "--demo", "--out", tmp_path / "o", "--set", "seed=abc", "-q")
    assert res.exit_code == 2 and "seed" in res.output
    res = invoke("build", "waterbirds-100", "--demo", "--out", tmp_path / "o", "-q", env={"SLURM_ARRAY_TASK_ID": "x"})
    assert res.exit_code == 2 and "SLURM_ARRAY_TASK_ID" in res.output
    res = invoke("build", "waterbirds-100", "--demo", "--out", tmp_path / "o", "--num-shards", "0", "-q")
    assert res.exit_code == 2
    res = invoke("composite", "--fg", inp, "--bg", inp, "--size", "0", "--out", tmp_path / "c", "-q")
    assert res.exit_code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_out_is_one_line(tmp_path):
    inp = make_folder(tmp_path / "in")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = segment(inp, ro / "out")
    assert res.exit_code == 2 and "ermission" in res.output


# ---------------------------------------------------------------- manifests, images, boxes
@pytest.mark.parametrize("content,suffix", [(b'path,boxes\na.png,"[1,2"\n', ".csv"), (b"[1, 2]\n", ".jsonl"),
                                            (b"\x00\xff\xfe\x00binary", ".jsonl"), (b"\x89PNG\x00\x00", ".csv")])
def test_bad_manifests_exit_2(tmp_path, content, suffix):
    inp = make_folder(tmp_path / "in")
    (inp / f"m{suffix}").write_bytes(content)
    res = invoke("segment", "-i", inp, "-m", inp / f"m{suffix}", "-b", "box", "-o", tmp_path / "out", "-q")
    assert res.exit_code == 2, res.output


def test_bad_boxes_are_skipped_and_logged(tmp_path):
    rows = [{"path": "a.png", "boxes": [[float("nan"), 0, 5, 5], [9, 9, 1, 1], [2, 2, 2, 8], "x", [1, 1, 8, 8]]}]
    inp = make_folder(tmp_path / "in", names=("a.png",))
    (inp / "manifest.jsonl").write_text(json.dumps(rows[0]) + "\n")  # NaN as the JSON token json.dumps writes
    skipped = []
    samples = load_folder(inp, inp / "manifest.jsonl", skipped=skipped)
    assert samples[0].meta["boxes"] == [[1.0, 1.0, 8.0, 8.0]] and len(skipped) == 4
    res = segment(inp, tmp_path / "out")
    assert res.exit_code == 0  # the sample is written: its dropped boxes are notes, not a failed sample (issue 29)
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert sum(e["error_type"] == "BadBox" and e["sample_kept"] for e in errors) == 4
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["errors"] == 0


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    arr = (np.arange(64 * 4).reshape(4, 64) * 257).astype(np.uint16)  # 0..65535
    Image.fromarray(arr).save(tmp_path / "deep.png")
    rgb = np.asarray(open_image(tmp_path / "deep.png"))
    assert rgb[..., 0].min() == 0 and 0 < rgb[0, 32, 0] < 255 and rgb.max() == 255
    assert np.all(np.diff(rgb[0, :, 0].astype(int)) >= 0)


# ---------------------------------------------------------------- fuzz
def test_fuzz_random_inputs_never_escape_or_crash(tmp_path):
    rnd = random.Random(0)
    fields = ["path", "split", "boxes", "key", "mask", "label", "text"]
    values = ["a.png", "../x", "/etc", "", None, 1, -1e308, [1, 2, 3, 4], [[0, 0, 5, 5]], [["a"]], {"a": 1},
              "train", "../../other", "日本", "b.png", "\x00"]
    for trial in range(12):
        case = tmp_path / f"t{trial}"
        inp = make_folder(case / "in")
        if trial % 3 == 0:
            (inp / "manifest.jsonl").write_bytes(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))))
        else:
            rows = [{f: rnd.choice(values) for f in rnd.sample(fields, rnd.randrange(1, 5))} for _ in range(3)]
            (inp / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        before = snapshot(case)
        res = segment(inp, case / "out")
        assert res.exit_code in (0, 2, 3), (res.output, res.exception)
        assert "Traceback" not in res.output
        changed = {p for p, m in snapshot(case).items() if before.get(p) != m}
        assert all(case / "out" in p.parents or p == case / "out" for p in changed), changed


def test_os_errors_are_one_line_exit_2(capsys):
    import errno

    import typer

    from bgforge.cli.common import reports_user_errors

    @reports_user_errors
    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "/out/shards/x.tar")

    with pytest.raises(typer.Exit) as exc:
        full()
    assert exc.value.exit_code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "free some disk space" in err
