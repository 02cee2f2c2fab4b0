"""The command line as a user (or cron) meets it: help, exit codes, summary lines."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from bgforge.cli import app

runner = CliRunner()


def test_recipes_lists_shipped_recipes():
    res = runner.invoke(app, ["recipes"])
    assert res.exit_code == 0
    assert "waterbirds-95" in res.output and "waterbirds-100" in res.output


def test_help_reads_like_documentation():
    res = runner.invoke(app, ["build", "--help"])
    assert res.exit_code == 0
    for flag in ("--demo", "--cub-root", "--places-root", "--workers", "--set", "--layout", "--slice-index", "--slice-count"):
        assert flag in res.output
    for old in ("--shard-index", "--num-shards"):   # old names still work, hidden from the help
        assert old not in res.output


def test_unknown_recipe_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "bgforge", "build", "nope", "--out", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown recipe 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_build_summary_and_outputs(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(out), "--workers", "2"])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("bgforge: built waterbirds-100: 320 samples") and "0 errors" in last
    for name in ("metadata.csv", "groups.json", "manifest.json", "errors.jsonl", "README.md",
                 ".bgforge/preview/train.png", ".bgforge/preview/test.png"):
        assert (out / name).exists(), name
    groups = json.loads((out / "groups.json").read_text())
    assert groups["train"]["correlation"]["aligned_fraction"] == 1.0
    assert set(groups["test"]["groups"]) == {"landbird_land", "landbird_water", "waterbird_land", "waterbird_water"}
    status = runner.invoke(app, ["status", str(out)])
    assert "24/24 shards committed, 0 pending" in status.output  # >= 8 shards per split


def test_sample_errors_exit_3(tmp_path, cub_root, places_root):
    import shutil

    bad = tmp_path / "CUB"
    shutil.copytree(cub_root, bad)
    first = sorted((bad / "images").rglob("*.jpg"))[0]
    first.write_bytes(b"garbage")
    res = runner.invoke(app, ["build", "waterbirds-95", "--cub-root", str(bad), "--places-root", str(places_root),
                              "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 3
    assert "1 errors" in res.output.strip().splitlines()[-1]


def test_option_choices_match_the_library():
    from bgforge.backends.device import PRECISIONS
    from bgforge.choices import EXECUTORS
    from bgforge.cli.options import Executor, Layout, Precision
    from bgforge.io.layout import LAYOUTS

    assert tuple(m.value for m in Layout) == LAYOUTS
    assert tuple(m.value for m in Executor) == EXECUTORS
    assert tuple(m.value for m in Precision) == PRECISIONS


def test_user_errors_are_one_line_exit_2(tmp_path):
    res = runner.invoke(app, ["status", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.startswith("bgforge: error: ") and res.output.count("\n") == 1
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(tmp_path / "o"), "--layout", "tars"])
    assert res.exit_code == 2 and "--layout" in res.output
