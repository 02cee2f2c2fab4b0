"""`bgforge inspect` without flags on every kind of output, and a label x background table with named
values wherever the recipe sets backgrounds against labels (issue 34, point 1)."""

import csv
import json

import pytest
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.report.inspect import inspect_output, render_text

runner = CliRunner()


def fake_output(tmp_path, planner, rows, name=None):
    out = tmp_path / planner
    out.mkdir()
    with open(out / "metadata.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "manifest.json").write_text(json.dumps({"recipe": {"name": name or planner, "planner": planner},
                                                   "errors": 0}))
    return out


def test_edit_output_needs_no_flag(tmp_path):
    """edit's metadata.csv has no `label` column: inspect exited 2 asking for --label."""
    assert runner.invoke(app, ["demo-inputs", str(tmp_path / "d"), "--images", "6"]).exit_code == 0
    photos = tmp_path / "d" / "photos"
    res = runner.invoke(app, ["edit", "-i", str(photos), "-m", str(photos / "manifest.jsonl"), "-p",
                              str(tmp_path / "d" / "phrases.jsonl"), "--grounding", "provided", "--out",
                              str(tmp_path / "ed"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["inspect", str(tmp_path / "ed")])
    assert res.exit_code == 0, res.output
    assert "label 'class_name'" in res.output and "class_name \\ edit" in res.output
    assert "original" in res.output and "remove" in res.output


# (planner, rows, the table's fields, a line the text must hold)
SWAPS = {
    "autobackswap": ("label", "bg_label"),
    "variants": ("label", "bg_label"),
    "composite": ("label", "bg_label"),
    "bap": ("class_name", "bg_category"),
}


@pytest.mark.parametrize("planner", sorted(SWAPS))
def test_label_by_background_table_with_association(tmp_path, planner):
    x, y = SWAPS[planner]
    # every class on every background, equally often: the background tells nothing of the class
    rows = [{"key": f"{a}-{b}-{i}", x: a, y: b, "split": "train", "group": f"{a}_on_{b}"}
            for a in ("cat", "dog") for b in ("sofa", "lawn") for i in range(3)]
    report = inspect_output(fake_output(tmp_path, planner, rows))
    table = next(t for t in report["splits"]["train"]["tables"] if (t["rows_field"], t["columns_field"]) == (x, y))
    assert table["rows"] == ["cat", "dog"] and table["cells"] == [[3, 3], [3, 3]]
    assert table["mutual_information_bits"] == pytest.approx(0.0)
    text = render_text(report)
    assert f"I({x}; {y}) = 0.0000 bits" in text


def test_background_that_names_the_class_shows_one_bit(tmp_path):
    rows = [{"key": f"{a}{i}", "label": a, "bg_label": a, "split": "original", "variant": "original"}
            for a in ("cat", "dog") for i in range(4)]
    report = inspect_output(fake_output(tmp_path, "variants", rows))
    table = report["splits"]["original"]["tables"][0]
    assert table["mutual_information_bits"] == pytest.approx(1.0) and table["cramers_v"] == pytest.approx(1.0)


def test_urbancars_every_cue_named(tmp_path):
    rows = []
    for y in (0, 1):
        for bg in (0, 1):
            for co in (0, 1):
                n = 9 if y == bg == co else 1
                rows += [{"key": f"{y}{bg}{co}{i}", "y": y, "bg": bg, "co_obj": co, "group": 4 * y + 2 * bg + co,
                          "split": "train", "cue": "all"} for i in range(n)]
    report = inspect_output(fake_output(tmp_path, "urbancars", rows))
    text = render_text(report)
    assert "0 (urban)" in text and "1 (country)" in text
    train = report["splits"]["train"]
    cues = {(t["rows_field"], t["columns_field"]): t for t in train["tables"]}
    # y vs co_obj: 20 of 24 aligned; the background's figure is the matrix's
    assert cues[("y", "co_obj")]["aligned_fraction"] == pytest.approx(20 / 24)
    assert train["correlation"]["aligned_fraction"] == pytest.approx(20 / 24)
    assert "P(co_obj = y) = 0.833" in text and "P(attribute = label) = 0.833" in text


def test_waterbirds_codes_named(tmp_path):
    rows = [{"img_id": i, "y": i % 2, "place": i % 2, "split": 0, "group": 3 * (i % 2)} for i in range(8)]
    text = render_text(inspect_output(fake_output(tmp_path, "waterbirds", rows, "waterbirds-95")))
    assert "0 (landbird)" in text and "1 (water)" in text
