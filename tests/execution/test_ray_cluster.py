"""A two-node Ray cluster on this machine (`ray start --head` plus a second `ray start --address`):
a node that dies mid-run is reported, never waited on forever, and a re-run resumes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shard_bytes

from bgforge.execution import commit as commitmod

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
NODE2 = "bgforge_test_node2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_nodes(tmp_path):
    token = tmp_path / "ray_token"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_DISABLE_USAGE_STATS": "1"}
    token.write_text(os.urandom(32).hex())
    port = _free_port()
    start = [RAY, "start", "--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([*start, "--head", "--port", str(port), "--include-dashboard", "false"], env=env, check=True,
                   capture_output=True, timeout=120)
    try:
        subprocess.run([*start, "--address", f"127.0.0.1:{port}", "--resources", f'{{"{NODE2}": 1}}'], env=env,
                       check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _kill_node2():
    pids = subprocess.run(["pgrep", "-f", NODE2], capture_output=True, text=True).stdout.split()
    assert pids, "the second node's raylet is not running"
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)


@pytest.mark.slow
def test_a_node_stopped_mid_run_is_reported_and_a_rerun_resumes(two_nodes, tmp_path):
    address, env = two_nodes
    common = [sys.executable, "-m", "bgforge", "build", "waterbirds-100", "--demo", "--shard-size", "10",
              "--batch-size", "2"]
    ref = tmp_path / "ref"
    assert subprocess.run([*common, "--out", str(ref), "-q"], cwd=REPO, timeout=300).returncode == 0
    out = tmp_path / "out"
    env = {**env, "BGFORGE_RAY_STALL_SECONDS": "15"}
    proc = subprocess.Popen([*common, "--out", str(out), "--executor", "ray", "--ray-address", address], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not list(commitmod.stats_dir(out).glob("*.stats.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill_node2()
        _, stderr = proc.communicate(timeout=240)  # never waited on forever
    finally:
        proc.kill()
    if proc.returncode == 0:  # Ray moved the lost actor's shards to the head: the build completed
        assert shard_bytes(out) == shard_bytes(ref)
        return
    assert proc.returncode == 1, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("bgforge: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr and "re-run" in errors[0], stderr
    rerun = subprocess.run([*common, "--out", str(out), "-q"], cwd=REPO, timeout=300)  # resumes locally
    assert rerun.returncode == 0
    assert shard_bytes(out) == shard_bytes(ref)
