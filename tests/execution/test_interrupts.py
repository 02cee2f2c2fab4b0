"""Reliability III: an interrupted run never loses or mixes data.

--overwrite is a transaction (a process SIGKILLed at each of its steps, then re-run with or without
--overwrite, ends byte-identical to a clean run); Ctrl-C and SIGTERM on a pool end every worker with
one line and exit 130 / 143, never a hang or a worker traceback; `status` tells running from stopped;
finalize takes the build's lock and cleans a killed finalize's temporaries; finalize records the
hashes of its files and `status --verify` names a changed one. Real processes and real signals.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import read_tree, shard_bytes
from PIL import Image

from bgforge.execution import commit as commitmod
from bgforge.execution import guard
from bgforge.execution import overwrite as overwrite_tx
from bgforge.execution import plan as planmod
from bgforge.report.status import output_status

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"interrupted: (\d+)/(\d+) shards committed; re-run the same command to resume$")


def bgforge(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "bgforge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})


def images(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((24, 32, 3), 20 * i, np.uint8)).save(root / f"{i}.png")
    return root


def segment_args(inp: Path, out: Path, n: int, box: int) -> list:
    """A `segment` run over the first n images; `box` changes every sample (and so every shard's bytes)."""
    rows = [{"path": f"{i}.png", "boxes": [[2, 2, box, 16]], "split": "train" if i % 3 else "test"} for i in range(n)]
    manifest = inp / f"manifest-{n}-{box}.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["segment", "-i", inp, "-m", manifest, "-b", "box", "-o", out, "-q", "--shard-size", "2"]


def dataset(out: Path) -> dict:
    """Every file a client reads, as bytes (the manifest's timings, the markers' seconds and the
    croissant record, which names its folder, aside)."""
    tree = read_tree(out)
    return {k: v for k, v in tree.items() if k != "croissant.json"
            and (not k.startswith(".bgforge/") or k.startswith(".bgforge/preview/"))}


@pytest.fixture(scope="module")
def seg_inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ow")
    inp = images(base / "in", 12)
    assert bgforge(*segment_args(inp, base / "ref-new", 7, 14)).returncode == 0
    return inp, base / "ref-new"


# ---------------------------------------------------------------- 1. --overwrite as a transaction
@pytest.mark.slow
@pytest.mark.parametrize("rerun_overwrite", [True, False], ids=["rerun-overwrite", "rerun-plain"])
@pytest.mark.parametrize("step", overwrite_tx.STEPS)
def test_overwrite_killed_at_each_step_then_rerun_gives_the_clean_run(tmp_path, seg_inputs, step, rerun_overwrite):
    inp, reference = seg_inputs
    out = tmp_path / "out"
    assert bgforge(*segment_args(inp, out, 12, 20)).returncode == 0   # the old run: 12 samples, other boxes
    old_tars = set(shard_bytes(out))
    new = segment_args(inp, out, 7, 14)
    killed = bgforge(*new, "--overwrite", env={overwrite_tx.KILL_ENV: step})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "plan.json").exists()  # the new plan (or the old, before step "plan") is always recorded
    rerun = bgforge(*new, *(["--overwrite"] if rerun_overwrite else []))
    assert rerun.returncode == 0, rerun.stderr
    assert dataset(out) == dataset(reference)
    assert set(shard_bytes(out)) < old_tars and not overwrite_tx.intent_path(out).exists()


def test_plain_rerun_with_another_plan_after_a_killed_overwrite_is_refused(tmp_path, seg_inputs):
    inp, _ = seg_inputs
    out = tmp_path / "out"
    assert bgforge(*segment_args(inp, out, 12, 20)).returncode == 0
    assert bgforge(*segment_args(inp, out, 7, 14), "--overwrite",
                   env={overwrite_tx.KILL_ENV: "removing"}).returncode == -signal.SIGKILL
    res = bgforge(*segment_args(inp, out, 12, 20))  # the old command: its shards are half gone
    assert res.returncode == 2 and "an --overwrite with a different plan" in res.stderr
    assert "Traceback" not in res.stderr


def test_overwrite_removes_surplus_tars_that_no_plan_names(tmp_path, seg_inputs):
    """An output an older bgforge left half overwritten: plan.json gone, old tars and markers still there."""
    inp, reference = seg_inputs
    out = tmp_path / "out"
    assert bgforge(*segment_args(inp, out, 12, 20)).returncode == 0
    (out / "plan.json").unlink()
    res = bgforge(*segment_args(inp, out, 7, 14), "--overwrite")
    assert res.returncode == 0, res.stderr
    assert dataset(out) == dataset(reference)


def test_shards_without_a_plan_are_never_kept_by_a_plain_run(tmp_path, seg_inputs):
    """The state an older bgforge's killed --overwrite left (plan.json deleted first): a plain re-run kept
    the old run's shards under the new plan's names and exited 0."""
    inp, _ = seg_inputs
    out = tmp_path / "out"
    assert bgforge(*segment_args(inp, out, 12, 20)).returncode == 0
    old = shard_bytes(out)
    (out / "plan.json").unlink()
    res = bgforge(*segment_args(inp, out, 7, 14))
    assert res.returncode == 2 and "no plan.json" in res.stderr and "--overwrite" in res.stderr
    assert shard_bytes(out) == old  # nothing removed without --overwrite


@pytest.mark.slow
def test_overwrite_of_the_seed_in_a_waterbirds_build(tmp_path):
    """The issue's case: a killed `--seed 1 --overwrite`, re-run without --overwrite, kept seed-0 shards."""
    common = ["build", "waterbirds-100", "--demo", "--shard-size", "40", "-q"]
    assert bgforge(*common, "--seed", "1", "--out", tmp_path / "ref").returncode == 0
    out = tmp_path / "out"
    assert bgforge(*common, "--seed", "0", "--out", out).returncode == 0
    assert bgforge(*common, "--seed", "1", "--out", out, "--overwrite",
                   env={overwrite_tx.KILL_ENV: "plan"}).returncode == -signal.SIGKILL
    res = bgforge(*common, "--seed", "1", "--out", out)
    assert res.returncode == 0, res.stderr
    assert shard_bytes(out) == shard_bytes(tmp_path / "ref")
    assert (out / "metadata.csv").read_bytes() == (tmp_path / "ref" / "metadata.csv").read_bytes()


# ---------------------------------------------------------------- 2. Ctrl-C and SIGTERM on a pool
WB = ["build", "waterbirds-100", "--demo", "--shard-size", "10", "--batch-size", "2"]  # 320 samples, 32 shards


def _alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _interrupt_once(out: Path, sig: int, to_group: bool, wait_commit: bool):
    proc = subprocess.Popen([sys.executable, "-m", "bgforge", *WB, "--out", str(out), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        children: list = []
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            ready = len(children) >= 2 and (not wait_commit or list(commitmod.stats_dir(out).glob("*.stats.json")))
            if ready or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the build ended before it could be interrupted"
        status = output_status(out)
        assert status["running"] and status["state"] == "running", status["state"]
        (os.killpg if to_group else os.kill)(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole group
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"the build hung after {signal.Signals(sig).name}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    return proc.returncode, stdout + stderr, [int(c) for c in children]


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group, tries", [(signal.SIGINT, True, 10), (signal.SIGTERM, False, 4),
                                                  (signal.SIGTERM, True, 3)],
                         ids=["ctrl-c", "sigterm", "sigterm-group"])
def test_interrupting_a_pool_ends_every_worker_with_one_line(tmp_path, sig, to_group, tries):
    assert bgforge(*WB, "--out", tmp_path / "warm", "-q").returncode == 0  # the demo tree, cached
    for attempt in range(tries):
        out = tmp_path / f"o{attempt}"
        code, text, workers = _interrupt_once(out, sig, to_group, wait_commit=attempt % 2 == 0)
        assert code == 128 + sig, text
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        found = [ln for ln in text.splitlines() if "interrupted" in ln]
        assert len(found) == 1 and LINE.search(found[0]), text
        committed, total = map(int, LINE.search(found[0]).groups())
        plan = planmod.load_plan(out)
        assert total == len(plan.shards) and committed == sum(commitmod.is_committed(out, s.name) for s in plan.shards)
        assert workers and not _alive(workers), "a worker outlived the build"
        assert not list((out / "shards").glob(".*.tmp*"))
        status = output_status(out)
        assert not status["running"] and status["state"] == "stopped"
    res = bgforge(*WB, "--out", out, "-q")  # the last one resumes to the same bytes as an uninterrupted run
    assert res.returncode == 0, res.stderr
    assert shard_bytes(out) == shard_bytes(tmp_path / "warm")


def test_status_text_says_stopped_and_how_to_resume(tmp_path):
    out = tmp_path / "o"
    assert bgforge(*WB, "--out", out, "--shard-index", "0", "--num-shards", "2", "-q").returncode == 0
    res = bgforge("status", out)
    assert res.returncode == 0 and "state: stopped (no bgforge process holds its lock; re-run" in res.stdout


# ---------------------------------------------------------------- 3. finalize: the lock, its temporaries
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished waterbirds-100 demo build; each test gets a copy (`done`)."""
    out = tmp_path_factory.mktemp("finished") / "wb"
    cache = {"BGFORGE_CACHE": str(tmp_path_factory.getbasetemp() / "bgforge-cache")}  # conftest's demo cache
    assert bgforge(*WB, "--out", out, "-q", env=cache).returncode == 0
    return out


@pytest.fixture
def done(finished, tmp_path):
    copy = tmp_path / "o"
    shutil.copytree(finished, copy)
    return copy


@pytest.mark.slow
def test_finalize_takes_the_builds_lock(done):
    out = done
    with guard.locked(out, sliced=False):  # as a running build holds it
        assert guard.lock_held(out) and output_status(out)["running"]
        res = bgforge("finalize", out)
    assert res.returncode == 2 and "another bgforge run is writing" in res.stderr
    assert not guard.lock_held(out)
    assert bgforge("finalize", out).returncode == 0


@pytest.mark.slow
def test_a_killed_finalizes_temporaries_are_removed_by_the_next_run(done):
    out = done
    dead = _dead_pid()
    leftovers = [out / f".metadata.csv.tmp{dead}", out / f".manifest.json.tmp{dead}",
                 out / ".bgforge" / "preview" / f".train.png.tmp{dead}", out / f".report.html.tmp{dead}"]
    for p in leftovers:
        p.write_bytes(b"half a file")
    assert bgforge("finalize", out).returncode == 0
    assert not [p for p in leftovers if p.exists()]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- 8. hashes recorded at finalize
@pytest.mark.slow
@pytest.mark.parametrize("name", ["groups.json", "metadata.csv", "manifest.json"])
def test_status_verify_names_a_file_changed_after_finalize(done, name):
    out = done
    ok = bgforge("status", out, "--verify")
    assert ok.returncode == 0 and "changed:" not in ok.stdout
    path = out / name
    path.write_bytes(path.read_bytes().replace(b"1", b"2", 1))
    res = bgforge("status", out, "--verify")
    assert res.returncode == 1 and f"changed: {name}: changed since finalize" in res.stdout
    doc = json.loads(bgforge("status", out, "--verify", "--json").stdout)
    assert [line.split(":")[0] for line in doc["changed_files"]] == [name]
