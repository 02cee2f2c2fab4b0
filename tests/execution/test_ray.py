"""The Ray executor: same bytes as the local executor, retries, one-line errors."""

import functools
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import read_tree
from helpers import build

from bgforge import recipe as recipemod
from bgforge.errors import BgforgeError
from bgforge.planners import BuildContext
from bgforge.planners.waterbirds import WaterbirdsPlanner

TESTS = str(Path(__file__).resolve().parents[1])  # tests/: Ray workers import execution.test_ray and helpers
real_make_chain = WaterbirdsPlanner().make_chain


def run(cub_root, places_root, out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("shard_size", 7)
    kw.setdefault("min_shards", 1)  # shards of exactly 7: the crash tests pick a sample by position
    kw.setdefault("batch_size", 3)  # several chunks per shard, so a crash can land mid-shard
    return build(recipemod.load("waterbirds-95"), BuildContext(roots={"cub": cub_root, "places": places_root}), out, **kw)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # Workers inherit the environment at start: they import this module (the chains below) from tests/.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, old]))
    # "local": a fresh instance even where a cluster runs on this machine (num_cpus is refused there).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, cub_root, places_root):
    out = tmp_path_factory.mktemp("local") / "o"
    run(cub_root, places_root, out)
    return out


def key_in_shard(out, shard: int, position: int) -> str:
    plan = json.loads((out / "plan.json").read_text())
    return plan["shards"][shard]["samples"][position]["key"]


# Stand-ins for WaterbirdsPlanner.make_chain: a partial set on the class is not bound, so these
# take (params, ctx) as the real method does after `self`.
def crash_once_chain(params, ctx, key, marker):
    """The real chain, whose worker process dies (as on a lost node) the first time it meets `key`."""
    chain = real_make_chain(params, ctx)

    def run_batch(batch):
        if any(s.key == key for s in batch) and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        return chain(batch)
    return run_batch


def always_failing_chain(params, ctx, key, attempts):
    chain = real_make_chain(params, ctx)

    def run_batch(batch):
        if any(s.key == key for s in batch):
            with open(attempts, "a") as fh:
                fh.write("attempt\n")
            raise RuntimeError(f"this node cannot process {key}")
        return chain(batch)
    return run_batch


def counting_chain(params, ctx, builds):
    """The real chain; each build (a model load, for a model recipe) appends its process id to `builds`."""
    with open(builds, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return real_make_chain(params, ctx)


def misconfigured_chain(params, ctx, attempts):
    with open(attempts, "a") as fh:
        fh.write("attempt\n")
    raise BgforgeError("sam checkpoint /models/sam.pth not found; pass --sam-checkpoint")


@pytest.mark.slow
def test_ray_output_is_byte_identical_to_local(ray_cluster, local_build, tmp_path, cub_root, places_root):
    res = run(cub_root, places_root, tmp_path / "ray", executor="ray")
    assert res.finalized and res.ran_shards == len(list((local_build / "shards").glob("*.tar"))) >= 6
    assert res.ran_samples == json.loads((local_build / "manifest.json").read_text())["samples"]
    assert read_tree(tmp_path / "ray") == read_tree(local_build)


@pytest.mark.slow
def test_each_actor_builds_the_chain_once(ray_cluster, local_build, tmp_path, cub_root, places_root, monkeypatch):
    builds = tmp_path / "builds"
    monkeypatch.setattr(WaterbirdsPlanner, "make_chain", functools.partial(counting_chain, builds=str(builds)))
    res = run(cub_root, places_root, tmp_path / "ray", executor="ray")
    pids = builds.read_text().split()
    assert res.ran_shards >= 6 and len(pids) == len(set(pids)) <= 2  # one build per actor, 2 CPUs: 2 actors
    assert read_tree(tmp_path / "ray") == read_tree(local_build)


@pytest.mark.slow
def test_actor_builds_its_chain_on_the_first_shard_only(local_build, tmp_path, cub_root, places_root):
    """The actor body without Ray: one chain build for every shard it runs; same bytes."""
    from bgforge.execution.context import RunConfig
    from bgforge.execution.ray import ChainHolder

    out = tmp_path / "o"
    run(cub_root, places_root, out)
    builds = tmp_path / "builds"
    chain_factory = functools.partial(counting_chain, builds=str(builds))
    holder = ChainHolder(str(out), chain_factory, json.loads((out / "plan.json").read_text())["recipe"]["params"],
                         "shards", RunConfig(batch_size=3))
    names = [s["name"] for s in json.loads((out / "plan.json").read_text())["shards"][:3]]
    assert not builds.exists()  # nothing loads before the first shard
    assert all(holder.run(name)["samples"] == 7 for name in names)
    assert len(builds.read_text().split()) == 1
    assert read_tree(out) == read_tree(local_build)


@pytest.mark.slow
def test_crashed_worker_is_retried_and_leaves_no_debris(ray_cluster, local_build, tmp_path, cub_root, places_root,
                                                        monkeypatch):
    marker = tmp_path / "crashed"
    monkeypatch.setattr(WaterbirdsPlanner, "make_chain", functools.partial(
        crash_once_chain, key=key_in_shard(local_build, 1, 4), marker=str(marker)))
    res = run(cub_root, places_root, tmp_path / "ray", executor="ray")
    assert marker.exists(), "the worker should have died once"
    assert res.finalized and res.errors == 0
    assert not list((tmp_path / "ray").rglob(".*.tmp*"))
    assert read_tree(tmp_path / "ray") == read_tree(local_build)


@pytest.mark.slow
def test_shard_failing_after_retries_is_one_error_naming_it(ray_cluster, local_build, tmp_path, cub_root,
                                                            places_root, monkeypatch):
    out = tmp_path / "ray"
    monkeypatch.setattr(WaterbirdsPlanner, "make_chain", functools.partial(
        always_failing_chain, key=key_in_shard(local_build, 2, 0), attempts=str(tmp_path / "attempts")))
    with pytest.raises(BgforgeError) as info:
        run(cub_root, places_root, out, executor="ray")
    shard = json.loads((local_build / "plan.json").read_text())["shards"][2]["name"]
    message = str(info.value)
    assert "\n" not in message and f"first: {shard}: RuntimeError: this node cannot process" in message
    assert message.startswith("1 of ") and "3 times" in message
    assert (tmp_path / "attempts").read_text().count("attempt") == 3  # max_retries=2: a raising task is retried
    # The other shards finished and committed; the failed one left nothing behind.
    committed = {p.name.removesuffix(".stats.json") for p in (out / ".bgforge" / "shards").glob("*.stats.json")}
    assert shard not in committed and len(committed) == len(list((local_build / "shards").glob("*.tar"))) - 1
    assert not list(out.rglob(".*.tmp*")) and not (out / "metadata.csv").exists()
    monkeypatch.undo()
    assert run(cub_root, places_root, out).ran_shards == 1  # resume redoes only that shard
    assert read_tree(out) == read_tree(local_build)


@pytest.mark.slow
def test_configuration_error_in_a_task_is_not_retried(ray_cluster, local_build, tmp_path, cub_root, places_root,
                                                       monkeypatch):
    attempts = tmp_path / "attempts"
    monkeypatch.setattr(WaterbirdsPlanner, "make_chain", functools.partial(misconfigured_chain, attempts=str(attempts)))
    failed = r"^(\d+) of \1 shard\(s\) failed on Ray, .*: sam checkpoint /models/sam.pth not found"
    with pytest.raises(BgforgeError, match=failed):
        run(cub_root, places_root, tmp_path / "ray", executor="ray")
    assert attempts.read_text().count("attempt") == len(list((local_build / "shards").glob("*.tar")))


def test_ray_missing_is_one_line_error(monkeypatch, tmp_path, cub_root, places_root):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(BgforgeError) as info:
        run(cub_root, places_root, tmp_path / "o", executor="ray")
    assert str(info.value) == "--executor ray needs Ray: pip install 'bgforge[ray]'"
    assert not list((tmp_path / "o" / "shards").glob("*.tar"))


def _broken_cub(tmp_path, cub_root):
    """A copy of the CUB tree with one image in the middle of the plan made undecodable."""
    import shutil

    cub = tmp_path / "CUB"
    shutil.copytree(cub_root, cub)
    images = sorted((cub / "images").rglob("*.jpg"))
    images[len(images) // 2].write_bytes(b"garbage")
    return cub, images[len(images) // 2]


def _shard_reading(out, image) -> str:
    from bgforge.execution import plan as planmod

    return next(e.name for e in planmod.iter_entries(out) if any(s.inputs.get("image") == str(image) for s in e.samples))


def test_actor_stops_at_the_first_failure_under_fail_fast(tmp_path, cub_root, places_root):
    """The actor body without Ray: with fail_fast a shard holding a failed sample is not committed and the
    failure, its worker-side traceback included, comes back as data; without it the shard commits."""
    from bgforge.execution import commit as commitmod
    from bgforge.execution import failfast
    from bgforge.execution.context import RunConfig
    from bgforge.execution.ray import ChainHolder

    cub, broken = _broken_cub(tmp_path, cub_root)
    out = tmp_path / "o"
    run(cub, places_root, out)
    shard = _shard_reading(out, broken)
    commitmod.shard_stats(out, shard).unlink()   # pending again
    commitmod.shard_tar(out, shard).unlink()
    params = json.loads((out / "plan.json").read_text())["recipe"]["params"]
    holder = ChainHolder(str(out), real_make_chain, params, "shards", RunConfig(batch_size=3, fail_fast=True))
    stop = failfast.from_result(holder.run(shard))
    assert stop is not None and stop.shard == shard and str(broken) in stop.failure["message"]
    assert "Traceback (most recent call last)" in stop.failure["traceback"] and "in read_rgb" in stop.failure["traceback"]
    assert not commitmod.is_committed(out, shard) and not list(out.rglob(".*.tmp*"))
    holder = ChainHolder(str(out), real_make_chain, params, "shards", RunConfig(batch_size=3))
    assert holder.run(shard)["errors"] == 1 and commitmod.is_committed(out, shard)


@pytest.mark.slow
def test_fail_fast_on_ray_stops_records_and_resumes(ray_cluster, tmp_path, cub_root, places_root):
    from bgforge.execution import commit as commitmod
    from bgforge.execution.failfast import FailedFast

    cub, broken = _broken_cub(tmp_path, cub_root)
    out = tmp_path / "ray"
    with pytest.raises(FailedFast) as stop:
        run(cub, places_root, out, executor="ray", fail_fast=True)
    assert "Traceback (most recent call last)" in str(stop.value) and "in read_rgb" in str(stop.value)
    assert stop.value.shard == _shard_reading(out, broken) and not commitmod.is_committed(out, stop.value.shard)
    assert (out / "errors.jsonl").read_text().splitlines() == [stop.value.record_line]
    assert not list(out.rglob(".*.tmp*"))
    run(cub, places_root, out, executor="ray")   # without --fail-fast: resumes, the failure recorded as usual
    run(cub, places_root, tmp_path / "clean")
    assert read_tree(out) == read_tree(tmp_path / "clean")
