"""`--fail-fast`: the run stops at the first failed sample with its traceback (exit 1); committed shards
stay, the shard that held the sample is not committed, the failure is in errors.jsonl, and a re-run
without it resumes to the bytes of a run that never stopped."""

import json
import shutil

from conftest import read_tree
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.execution import commit as commitmod
from bgforge.execution import plan as planmod

runner = CliRunner()


def _build(cub, places_root, out, *more):
    return runner.invoke(app, ["build", "waterbirds-95", "--cub-root", str(cub), "--places-root", str(places_root),
                               "--out", str(out), "--shard-size", "5", "--batch-size", "2", *more])


def _shard_of(out, image) -> tuple[str, str]:
    """(shard, key) of the sample that reads `image`."""
    for entry in planmod.iter_entries(out):
        for s in entry.samples:
            if s.inputs.get("image") == str(image):
                return entry.name, s.key
    raise AssertionError(f"{image} is in no shard")


def test_fail_fast_stops_at_the_first_failure_then_a_rerun_resumes(tmp_path, cub_root, places_root):
    cub = tmp_path / "CUB"
    shutil.copytree(cub_root, cub)
    images = sorted((cub / "images").rglob("*.jpg"))
    broken = images[len(images) // 2]
    broken.write_bytes(b"garbage")
    clean = tmp_path / "clean"   # the same input, built without stopping: one failed sample recorded
    assert _build(cub, places_root, clean, "--quiet").exit_code == 3

    for workers in ("1", "2"):   # in this process, and a pool whose worker formats the traceback
        out = tmp_path / f"w{workers}"
        res = _build(cub, places_root, out, "--fail-fast", "--workers", workers)
        assert res.exit_code == 1, res.output
        shard, key = _shard_of(out, broken)
        assert f"stopped at the first failed sample (--fail-fast): {key} in shard {shard}, step read_image" \
            in res.output
        # the worker's traceback, down to the frame that raised
        assert "Traceback (most recent call last)" in res.output
        assert "bgforge/io/images.py" in res.output and "in read_rgb" in res.output
        assert "bgforge.errors.SampleError: cannot decode" in res.output
        records = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
        assert [(r["key"], r["stage"], r["error_type"]) for r in records] == [(key, "read_image", "SampleError")]
        assert records[0]["where"].startswith("bgforge/io/images.py:") and "traceback" not in records[0]
        # committed: exactly the shards before the failed one in plan order; it is neither committed nor left behind
        names = [e.name for e in planmod.load_plan(out).shards]
        committed = [n for n in names if commitmod.is_committed(out, n)]
        assert committed == names[:names.index(shard)] and committed
        assert not commitmod.shard_tar(out, shard).exists() and not list(out.rglob(".*.tmp*"))
        assert not (out / "manifest.json").exists()
        status = runner.invoke(app, ["status", str(out)]).output
        assert "state: stopped" in status and "stopped at a failed sample: 1 in errors.jsonl" in status, status
        kept = {n: commitmod.shard_stats(out, n).stat().st_mtime_ns for n in committed}

        res = _build(cub, places_root, out, "--quiet", "--workers", workers)   # without --fail-fast: resumes
        assert res.exit_code == 3, res.output
        assert f"{len(committed)} shards from earlier runs" in res.output
        assert {n: commitmod.shard_stats(out, n).stat().st_mtime_ns for n in committed} == kept
        assert read_tree(out) == read_tree(clean)


def test_fail_fast_with_no_failure_changes_nothing(tmp_path, cub_root, places_root):
    assert _build(cub_root, places_root, tmp_path / "a", "--quiet").exit_code == 0
    assert _build(cub_root, places_root, tmp_path / "b", "--quiet", "--fail-fast", "--workers", "2").exit_code == 0
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")   # plan.json too: it is a run option
