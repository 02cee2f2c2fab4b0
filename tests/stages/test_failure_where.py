"""A failed sample keeps where it failed: errors.jsonl names the frame, -v logs the first traceback."""

import json
import logging
import shutil

from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.records import Failure
from bgforge.stages.common import Step, attempt


def _boom():
    raise ValueError("no pixels")


def test_failure_records_the_raising_frame(caplog):
    with caplog.at_level(logging.DEBUG, logger="bgforge.stages.common"):
        first = attempt("k1", Step("fit"), _boom)
        second = attempt("k2", Step("fit"), _boom)
    assert isinstance(first, Failure) and first.error_type == "ValueError" and first.stage == "fit"
    assert first.where.startswith("tests/stages/test_failure_where.py:") or first.where.startswith("test_failure_where.py:")
    assert first.where.endswith(" in _boom") and first.to_dict()["where"] == first.where
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 1 and "k1" in traced[0].getMessage() and second.where == first.where


def test_errors_jsonl_names_the_frame_inside_bgforge(tmp_path, cub_root, places_root):
    bad = tmp_path / "CUB"
    shutil.copytree(cub_root, bad)
    sorted((bad / "images").rglob("*.jpg"))[0].write_bytes(b"garbage")
    res = CliRunner().invoke(app, ["build", "waterbirds-95", "--cub-root", str(bad), "--places-root",
                                   str(places_root), "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 3, res.output
    (record,) = [json.loads(line) for line in (tmp_path / "o" / "errors.jsonl").read_text().splitlines()]
    assert record["where"].startswith("bgforge/") and ".py:" in record["where"] and " in " in record["where"]


def test_a_decode_failure_reads_the_same_on_every_run(tmp_path):
    """PIL names the in-memory buffer with its address; errors.jsonl must not carry it."""
    from bgforge.errors import SampleError
    from bgforge.io.images import read_rgb

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    try:
        read_rgb(bad)
    except SampleError as exc:
        assert "0x" not in str(exc) and str(exc).startswith(f"cannot decode {bad}")
    else:
        raise AssertionError("garbage decoded")
