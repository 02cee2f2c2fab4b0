"""The end of a build reads each commit marker's rows once; a phased build holds no sample it no longer needs."""

import json
import weakref

import pytest
from conftest import read_tree
from helpers import build

import bgforge.building as buildmod
from bgforge import planners
from bgforge import recipe as recipemod
from bgforge.cli.common import summary_line
from bgforge.errors import BgforgeError
from bgforge.execution import commit as commitmod
from bgforge.execution import plan as planmod
from bgforge.finalize import finalize
from bgforge.io.shards import json_bytes
from bgforge.planners import BuildContext
from bgforge.report.status import output_status
from bgforge.sources.synthetic import make_imagenet

HSI_CLASSES = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus"}
HSI_SMALL = ["quota.train.easy=2", "quota.train.medium=1", "quota.train.hard=1", "quota.val=1",
             "val_images_per_class=2", "classes=[n01440764, n01443537]"]


def wb95(cub_root, places_root, out, **kw):
    kw.setdefault("shard_size", 5)
    return build(recipemod.load("waterbirds-95"), BuildContext(roots={"cub": cub_root, "places": places_root}), out, **kw)


@pytest.fixture
def marker_parses(monkeypatch):
    """How many times a JSON document holding a marker's rows is parsed (any module, any caller)."""
    count = [0]
    real = json.loads

    def counting(s, *args, **kwargs):
        if (b'"rows":' if isinstance(s, (bytes, bytearray)) else '"rows":') in s:
            count[0] += 1
        return real(s, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    return count


def test_build_end_parses_each_marker_once(tmp_path, cub_root, places_root, marker_parses):
    out = tmp_path / "o"
    res = wb95(cub_root, places_root, out)
    summary_line("waterbirds-95", res)  # the CLI's last line reads the status too
    shards = len(planmod.load_plan(out).shards)
    assert res.finalized and shards >= 8
    assert marker_parses[0] == shards
    marker_parses[0] = 0
    again = wb95(cub_root, places_root, out)  # a re-run of a finished build: checks all, finalises again
    summary_line("waterbirds-95", again)
    assert again.ran_shards == 0 and marker_parses[0] == shards


def test_status_reads_counts_from_the_head_line(tmp_path, cub_root, places_root, marker_parses):
    out = tmp_path / "o"
    wb95(cub_root, places_root, out)
    marker_parses[0] = 0
    status = output_status(out, verify=True)  # --verify hashes the tars, still without parsing rows
    assert marker_parses[0] == 0
    total = sum(len(json.loads(commitmod.shard_stats(out, s.name).read_bytes())["rows"])
                for s in planmod.load_plan(out).shards)
    assert status["shards_committed"] == status["shards_total"] and status["samples_written"] == total


def test_damaged_markers(tmp_path, cub_root, places_root):
    out = tmp_path / "o"
    wb95(cub_root, places_root, out)
    name = planmod.load_plan(out).shards[0].name
    marker = commitmod.shard_stats(out, name)
    good = marker.read_bytes()
    assert json.loads(good)["rows"] and good.count(b"\n") == 2  # head line, then rows and error records
    marker.write_bytes(good[:-10])  # cut short: the head line alone does not make a commit
    assert not commitmod.is_committed(out, name)
    marker.write_bytes(good.replace(b'"rows":[{', b'"rows":[{{'))  # head and end intact, rows not
    assert commitmod.is_committed(out, name)
    with pytest.raises(BgforgeError, match=f"commit marker .*{name}.* is damaged"):
        finalize(out)
    # a marker as earlier versions wrote it (one line) still counts, and finalize reads its rows
    marker.write_bytes(json_bytes(json.loads(good)))
    assert commitmod.committed_stats(out, name)["samples"] == len(json.loads(good)["rows"])
    before = (out / "metadata.csv").read_bytes()
    finalize(out)
    assert (out / "metadata.csv").read_bytes() == before


# ---------------------------------------------------------------- phases (Hard-Spurious-ImageNet)
@pytest.fixture(scope="module")
def inet(tmp_path_factory):
    return make_imagenet(tmp_path_factory.mktemp("inet"), classes=HSI_CLASSES, n_train=132, n_val=5,
                         size=(96, 72), seed=3)


@pytest.fixture(scope="module")
def hsi_reference(inet, tmp_path_factory):
    """The same recipe built in one run, no slices, no planned samples handed in."""
    out = tmp_path_factory.mktemp("hsi") / "ref"
    assert hsi(inet, out).finalized
    return outputs(out)


def outputs(out):
    """read_tree without the phase's key index, which records its tars' mtimes."""
    return {name: data for name, data in read_tree(out).items() if not name.endswith("key-index.npz")}


def hsi(inet, out, planned=None, **kw):
    recipe = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), HSI_SMALL)
    return build(recipe, BuildContext(roots={"imagenet": inet}), out, shard_size=4, planned=planned, **kw)


class Tracked(list):
    """A list a weak reference can watch."""


@pytest.mark.slow
def test_phases_run_with_the_main_samples_dropped(tmp_path, inet, hsi_reference, monkeypatch):
    recipe = recipemod.apply_overrides(recipemod.load("hard-spurious-imagenet"), HSI_SMALL)
    planned = planners.get(recipe.planner).plan(recipe, BuildContext(roots={"imagenet": inet}))
    planned.samples = Tracked(planned.samples)
    planned.prerequisites[0].samples = Tracked(planned.prerequisites[0].samples)
    main_alive = weakref.ref(planned.samples)
    phase_alive = weakref.ref(planned.prerequisites[0].samples)
    out = tmp_path / "o"
    seen = []
    real_execute = buildmod.execute

    def spy(where, pending, *args, **kwargs):
        seen.append((where.name, planmod.plan_path(out).exists(), main_alive() is None, phase_alive() is None))
        return real_execute(where, pending, *args, **kwargs)

    monkeypatch.setattr(buildmod, "execute", spy)
    assert hsi(inet, out, planned=planned).finalized
    # the main plan is on disk before the backgrounds run; no sample list outlives its plan.json
    assert seen == [("backgrounds", True, True, True), ("o", True, True, True)]
    assert outputs(out) == hsi_reference


@pytest.mark.slow
def test_sliced_phased_build(tmp_path, inet, hsi_reference):
    out = tmp_path / "sl"
    first = hsi(inet, out, slice_index=0, slice_count=2)
    assert not first.finalized and first.notes == ["waiting for phase backgrounds"]
    assert first.total_samples == planmod.load_plan(out).num_samples  # the main plan is written up front
    status = output_status(out)
    assert status["state"] == "backgrounds phase stopped" and not status["finalized"]
    assert [p["phase"] for p in status["phases"]] == ["backgrounds", "main"]
    second = hsi(inet, out, slice_index=1, slice_count=2)  # finishes the backgrounds, then its main shards
    assert not second.finalized and second.ran_shards > 0
    assert hsi(inet, out, slice_index=0, slice_count=2).finalized
    assert output_status(out)["state"] == "done"
    assert outputs(out) == hsi_reference
