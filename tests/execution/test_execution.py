"""Determinism, slices, resume and the commit protocol."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import read_tree, shard_bytes
from helpers import build

from bgforge import recipe as recipemod
from bgforge.building import finalize
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext


def run(cub_root, places_root, out, *sets, **kw):
    r = recipemod.apply_overrides(recipemod.load("waterbirds-95"), list(sets))
    kw.setdefault("progress", False)
    kw.setdefault("shard_size", 7)
    return build(r, BuildContext(roots={"cub": cub_root, "places": places_root}), out, **kw)


def test_byte_identical_across_worker_counts_and_slices(tmp_path, cub_root, places_root):
    run(cub_root, places_root, tmp_path / "w1", workers=1)
    run(cub_root, places_root, tmp_path / "w2", workers=2)
    for i in range(3):  # three array-job slices, each its own invocation
        res = run(cub_root, places_root, tmp_path / "sl", slice_index=i, slice_count=3)
        assert res.finalized == (i == 2)
    one = read_tree(tmp_path / "w1")
    assert len(shard_bytes(tmp_path / "w1")) >= 6
    assert one == read_tree(tmp_path / "w2")
    assert one == read_tree(tmp_path / "sl")


def test_different_seed_changes_output(tmp_path, cub_root, places_root):
    run(cub_root, places_root, tmp_path / "a", seed=1)
    run(cub_root, places_root, tmp_path / "b", seed=2)
    assert shard_bytes(tmp_path / "a") != shard_bytes(tmp_path / "b")


def test_resume_redoes_only_uncommitted_shards(tmp_path, cub_root, places_root):
    out = tmp_path / "o"
    first = run(cub_root, places_root, out)
    clean = read_tree(out)
    names = sorted(p.name for p in (out / "shards").glob("*.tar"))
    # Simulate a kill: one shard lost its commit marker, another only has a temporary file.
    (out / ".bgforge" / "shards" / names[1].replace(".tar", ".stats.json")).unlink()
    (out / "shards" / names[2]).rename(out / "shards" / f".{names[2]}.tmp999")
    (out / ".bgforge" / "shards" / names[2].replace(".tar", ".stats.json")).unlink()
    again = run(cub_root, places_root, out)
    assert again.ran_shards == 2 and first.ran_shards == len(names)
    assert read_tree(out) == clean
    assert not list(out.rglob(".*.tmp*"))
    assert run(cub_root, places_root, out).ran_shards == 0


def test_changed_recipe_or_seed_against_existing_plan_is_refused(tmp_path, cub_root, places_root):
    out = tmp_path / "o"
    run(cub_root, places_root, out)
    with pytest.raises(BgforgeError, match="different seed"):
        run(cub_root, places_root, out, seed=5)
    with pytest.raises(BgforgeError, match="different recipe"):
        run(cub_root, places_root, out, "train_strength=0.9")
    res = run(cub_root, places_root, out, "train_strength=0.9", overwrite=True)
    assert res.ran_shards > 0


def test_finalize_refuses_while_slices_are_pending(tmp_path, cub_root, places_root):
    run(cub_root, places_root, tmp_path / "o", slice_index=0, slice_count=2)
    with pytest.raises(BgforgeError, match="not committed yet"):
        finalize(tmp_path / "o")
    run(cub_root, places_root, tmp_path / "o", slice_index=1, slice_count=2)
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["errors"] == 0


def test_sigkill_mid_run_then_resume_is_byte_identical(tmp_path, cub_root, places_root):
    cmd = [sys.executable, "-m", "bgforge", "build", "waterbirds-95", "--cub-root", str(cub_root),
           "--places-root", str(places_root), "--shard-size", "2", "--quiet"]
    subprocess.run(cmd + ["--out", str(tmp_path / "clean")], check=True, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / ".bgforge" / "shards").glob("*.stats.json"))) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = len(list((out / ".bgforge" / "shards").glob("*.stats.json")))
    total = len(list((tmp_path / "clean" / "shards").glob("*.tar")))
    assert 3 <= committed < total, "the kill should land mid-run"
    assert not (out / "metadata.csv").exists()
    subprocess.run(cmd + ["--out", str(out)], check=True, capture_output=True)
    assert read_tree(out) == read_tree(tmp_path / "clean")


def test_device_pool_spawns_one_worker_per_entry_and_matches(tmp_path, cub_root, places_root):
    # The GPU pool (spawned workers taking a device each from a queue) driven with CPU entries:
    # everything but the CUDA pinning runs, and the bytes match the in-process run.
    run(cub_root, places_root, tmp_path / "w1", workers=1)
    run(cub_root, places_root, tmp_path / "dev", devices=["cpu", "cpu"])
    assert read_tree(tmp_path / "w1") == read_tree(tmp_path / "dev")
