"""`bgforge inspect` figures against hand-computed values."""

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from bgforge.association import cramers_v, mutual_information
from bgforge.cli import app
from bgforge.report.inspect import inspect_output


def test_mutual_information_hand_computed():
    assert mutual_information([(0, 0), (1, 1)] * 5) == pytest.approx(1.0)          # attribute = label: 1 bit
    assert mutual_information([(0, 0), (0, 1), (1, 0), (1, 1)] * 3) == pytest.approx(0.0)
    # 95 % aligned binary: I = 1 - H(0.05) for balanced marginals
    pairs = [(0, 0)] * 19 + [(0, 1)] + [(1, 1)] * 19 + [(1, 0)]
    h = -(0.05 * math.log2(0.05) + 0.95 * math.log2(0.95))
    assert mutual_information(pairs) == pytest.approx(1 - h)
    assert cramers_v([(0, 0), (1, 1)] * 4) == pytest.approx(1.0)
    assert cramers_v([(0, 0), (0, 1), (1, 0), (1, 1)]) == pytest.approx(0.0)


def fake_output(tmp_path, rows):
    out = tmp_path / "o"
    out.mkdir()
    with open(out / "metadata.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["img_id", "y", "split", "place", "group"])
        w.writeheader()
        w.writerows(rows)
    (out / "manifest.json").write_text(json.dumps({"recipe": {"name": "waterbirds-95", "planner": "waterbirds"}, "errors": 0}))
    return out


def test_inspect_on_a_known_table(tmp_path):
    rows = ([{"y": 0, "place": 0, "split": 0}] * 30 + [{"y": 1, "place": 1, "split": 0}] * 10
            + [{"y": 0, "place": 0, "split": 2}] * 5 + [{"y": 0, "place": 1, "split": 2}] * 5
            + [{"y": 1, "place": 0, "split": 2}] * 5 + [{"y": 1, "place": 1, "split": 2}] * 5)
    out = fake_output(tmp_path, [{**r, "img_id": i, "group": 2 * r["y"] + r["place"]} for i, r in enumerate(rows)])
    report = inspect_output(out)
    train, test = report["splits"]["train"], report["splits"]["test"]
    # train: y determines place, P(y=1) = 1/4 -> I = H(1/4) = 0.811278 bits
    assert train["mutual_information_bits"] == pytest.approx(-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)), abs=1e-6)
    assert train["correlation"]["aligned_fraction"] == 1.0
    assert train["matrix"] == {"0|0": 30, "1|1": 10}
    assert test["mutual_information_bits"] == pytest.approx(0.0, abs=1e-9)
    assert test["correlation"]["phi"] == pytest.approx(0.0)


@pytest.mark.slow
def test_inspect_cli_html_is_self_contained(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(tmp_path / "d"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["inspect", str(tmp_path / "d"), "--html"])
    assert res.exit_code == 0
    assert "train: " in res.output and "P(attribute = label) = 1.000" in res.output
    page = (tmp_path / "d" / "report.html").read_text()
    assert "data:image/jpeg;base64," in page and "src='preview" not in page   # sheets re-encoded small
