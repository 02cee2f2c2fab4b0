"""`bgforge inspect` on a build that is still running or was stopped (issue 34, point 9): the
committed shards' tables and contact sheets, clearly marked partial."""

import fcntl
import os

import pytest
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.execution import commit

runner = CliRunner()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A segment build whose last 4 shards were never committed and which never finalized."""
    tmp = tmp_path_factory.mktemp("partial")
    assert runner.invoke(app, ["demo-inputs", str(tmp / "d"), "--images", "12"]).exit_code == 0
    photos = tmp / "d" / "photos"
    out = tmp / "seg"
    res = runner.invoke(app, ["segment", "-i", str(photos), "-m", str(photos / "manifest.jsonl"), "-b", "box",
                              "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    for name in ("manifest.json", "metadata.csv", "groups.json", "README.md", "croissant.json"):
        (out / name).unlink(missing_ok=True)
    markers = sorted(commit.stats_dir(out).glob("*.stats.json"))
    assert len(markers) >= 6
    for m in markers[-4:]:   # the shards a stopped build had not reached
        commit.shard_tar(out, m.name[:-len(".stats.json")]).unlink()
        m.unlink()
    return out, len(markers)


def test_stopped_build_is_inspected_and_marked_partial(stopped):
    out, total = stopped
    res = runner.invoke(app, ["inspect", str(out), "--html"])
    assert res.exit_code == 0, res.output
    assert "PARTIAL: stopped" in res.output
    assert f"{total - 4}/{total} shards committed" in res.output
    assert "re-run the same build command" in res.output and "bgforge finalize" not in res.output
    committed = sum(int(line.split(": ")[1].split()[0]) for line in res.output.splitlines()
                    if line.startswith("  ") and line.strip().split(":")[0] in ("train", "test"))
    rows = sum(len(commit.read_marker(out, m.name[:-len(".stats.json")])["rows"])
               for m in commit.stats_dir(out).glob("*.stats.json"))
    assert committed == rows > 0
    page = (out / "report.html").read_text()
    assert "class='partial'" in page and "PARTIAL: stopped" in page
    assert "contact sheet</h3><img" in page   # made from the committed shards
    assert not (out / "manifest.json").exists()   # inspecting finalizes nothing


def test_running_build_says_it_is_running(stopped):
    out, _ = stopped
    fd = os.open(out / ".bgforge" / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # what a live build holds
        res = runner.invoke(app, ["inspect", str(out), "--json"])
    finally:
        os.close(fd)
    assert res.exit_code == 0, res.output
    assert '"running": true' in res.output and "still running" in res.output and "_partial" not in res.output


def test_not_an_output_is_one_line(tmp_path):
    res = runner.invoke(app, ["inspect", str(tmp_path)])
    assert res.exit_code == 2 and "not a bgforge output" in res.output
