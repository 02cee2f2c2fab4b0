"""The executor table (execution/executors.py): lookup, lazy import, per-executor options, and a third
executor registered as one row that builds the same bytes as the local one."""

import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import read_tree
from helpers import build
from typer.testing import CliRunner

from bgforge import choices
from bgforge import recipe as recipemod
from bgforge.cli import app
from bgforge.errors import BgforgeError
from bgforge.execution import commit, executors, failfast
from bgforge.execution import plan as planmod
from bgforge.execution.context import RunConfig
from bgforge.execution.failfast import FailedFast
from bgforge.execution.stats import RunStats
from bgforge.planners import BuildContext

runner = CliRunner()


def run(cub_root, places_root, out, **kw):
    kw.setdefault("shard_size", 7)
    kw.setdefault("batch_size", 3)   # several chain calls per shard
    return build(recipemod.load("waterbirds-95"), BuildContext(roots={"cub": cub_root, "places": places_root}), out, **kw)


# ---------------------------------------------------------------- a third executor: threads in this process
CHAINS_BUILT: list = []


def threaded_execute(out, pending, chain_factory, params, run, *, layout, progress=None):
    """A whole executor kept to the contract: a thread pool, one chain per thread (built once), each shard
    run and committed by commit.run_shard in its thread, --fail-fast through failfast.stopping."""
    stats, mine = RunStats(), threading.local()

    def one_shard(name: str) -> dict:
        if not hasattr(mine, "chain"):
            mine.chain = chain_factory(params, run.worker_context(out))
            CHAINS_BUILT.append(threading.get_ident())
        entry = next(planmod.iter_entries(out, {name}))
        chain = failfast.stopping(mine.chain, name) if run.fail_fast else mine.chain
        return commit.run_shard(out, entry, chain, layout, run.task_size())

    pool = ThreadPoolExecutor(int(run.option("threads", 2)))
    try:
        for result in pool.map(one_shard, [e.name for e in pending]):
            stats.add(result)
            stats.streak.see_shard(result)
            if progress is not None:
                progress.update(result["samples"] + result["errors"])
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)   # run_shard aborted its own shard; none left running
        commit.clean_partial(out, {e.name for e in pending})
        raise
    pool.shutdown()
    return stats


THREADS = executors.ExecutorSpec("threads", f"{__name__}:threaded_execute", "a thread pool in this process",
                                 options=(("threads", "threads that run shards"),))


@pytest.fixture
def threads_row(monkeypatch):
    monkeypatch.setitem(executors.EXECUTORS, "threads", THREADS)
    CHAINS_BUILT.clear()


def test_third_executor_is_one_row_and_builds_the_local_bytes(tmp_path, cub_root, places_root, threads_row):
    run(cub_root, places_root, tmp_path / "local")
    res = run(cub_root, places_root, tmp_path / "threads", executor="threads", executor_options={"threads": 3})
    assert res.finalized and res.ran_shards >= 6
    assert read_tree(tmp_path / "threads") == read_tree(tmp_path / "local")
    assert 1 <= len(CHAINS_BUILT) <= 3 and len(set(CHAINS_BUILT)) == len(CHAINS_BUILT)   # one chain per thread
    # its option is its own: the local executor refuses it, in one line, before anything is written
    with pytest.raises(BgforgeError, match=r"^--threads is an option of --executor threads, and this run uses "
                                           r"--executor local: drop --threads or pass --executor threads$"):
        run(cub_root, places_root, tmp_path / "refused", executor_options={"threads": 3})
    assert not (tmp_path / "refused").exists()


def test_fail_fast_on_the_third_executor_is_recorded_by_the_table(tmp_path, cub_root, places_root, threads_row):
    cub = tmp_path / "CUB"
    shutil.copytree(cub_root, cub)
    broken = sorted((cub / "images").rglob("*.jpg"))[20]
    broken.write_bytes(b"garbage")
    out = tmp_path / "o"
    with pytest.raises(FailedFast) as stop:
        run(cub, places_root, out, executor="threads", fail_fast=True)
    assert "Traceback (most recent call last)" in str(stop.value) and "in read_rgb" in str(stop.value)
    lines = (out / "errors.jsonl").read_text().splitlines()
    assert lines == [stop.value.record_line] and str(broken) in lines[0]
    assert not commit.is_committed(out, stop.value.shard)


def test_unknown_executor_is_one_line_naming_the_known_ones(tmp_path, cub_root, places_root):
    with pytest.raises(BgforgeError, match=r"^--executor must be one of local, ray, got 'dask'$"):
        executors.get("dask")
    with pytest.raises(BgforgeError, match="one of local, ray"):
        run(cub_root, places_root, tmp_path / "o", executor="dask")
    assert not (tmp_path / "o").exists()


def test_the_table_is_the_cli_choices():
    from bgforge.cli.options import Executor

    assert tuple(executors.EXECUTORS) == choices.EXECUTORS == tuple(m.value for m in Executor)
    for row in executors.EXECUTORS.values():
        assert callable(row.load()) if row.name == "local" else row.target.endswith(":execute")


def test_ray_address_is_an_option_of_the_ray_executor_only(tmp_path, cub_root, places_root):
    ray_run = RunConfig(executor="ray", executor_options={"ray_address": "10.0.0.1:6379"})
    executors.check(ray_run)
    assert ray_run.option("ray_address") == "10.0.0.1:6379" and ray_run.option("other") is None
    assert ray_run == RunConfig(executor="ray", executor_options=(("ray_address", "10.0.0.1:6379"),))
    with pytest.raises(BgforgeError, match=r"^--ray-address is an option of --executor ray, and this run uses "
                                           r"--executor local: drop --ray-address or pass --executor ray$"):
        executors.check(RunConfig(executor_options={"ray_address": "10.0.0.1:6379"}))
    with pytest.raises(BgforgeError, match=r"^--executor ray has no option 'adress' \(it takes: ray_address\)$"):
        executors.check(RunConfig(executor="ray", executor_options={"adress": "x"}))
    # the CLI: --ray-address with the local executor is refused (exit 2, one line), nothing written
    res = runner.invoke(app, ["build", "waterbirds-95", "--cub-root", str(cub_root), "--places-root", str(places_root),
                              "--out", str(tmp_path / "o"), "--ray-address", "10.0.0.1:6379"])
    assert res.exit_code == 2 and "--ray-address is an option of --executor ray" in res.output
    assert not (tmp_path / "o").exists()


def test_importing_the_table_or_running_local_leaves_ray_unimported(tmp_path):
    code = ("import sys\n"
            "import bgforge.building\n"
            "from bgforge.execution import executors\n"
            "from bgforge.execution.context import RunConfig\n"
            "executors.check(RunConfig())\n"
            "executors.get('local').load()\n"
            "assert 'ray' not in sys.modules and 'bgforge.execution.ray' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
