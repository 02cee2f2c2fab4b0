"""What `bgforge eval` prints and writes, on the README's own example (issue 30): one line per split
with test last (30.1), incomplete predictions refused or scored with every group listed (30.2), one
predictions file for the whole dataset (30.3), the adjusted average n/a where train lacks a group
(30.6), and the bar chart (30.9). Every number is recomputed here from metadata.csv."""

import csv
import json
from collections import Counter, defaultdict

import pytest
from PIL import Image
from typer.testing import CliRunner

from bgforge.cli import app

runner = CliRunner()
GROUPS = ["landbird_land", "landbird_water", "waterbird_land", "waterbird_water"]
SPLITS = {"0": "train", "1": "val", "2": "test"}


@pytest.fixture(scope="module")
def wb100(tmp_path_factory):
    out = tmp_path_factory.mktemp("wb100") / "o"
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def table(out):
    return list(csv.DictReader(open(out / "metadata.csv")))


def by_place(rows):
    """The README's background-only predictor, scored by hand: per split, per group (n, correct)."""
    counts = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        cell = counts[SPLITS[r["split"]]][GROUPS[int(r["group"])]]
        cell[0] += 1
        cell[1] += r["place"] == r["y"]
    return counts


def test_split_all_prints_one_line_per_split_test_last(wb100, tmp_path):
    rows = table(wb100)
    expect = by_place(rows)
    res = runner.invoke(app, ["eval", str(wb100), "-p", str(wb100 / "metadata.csv"), "--pred-column", "place",
                              "--split", "all", "-q", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("bgforge: eval")]
    assert [ln.split()[3].rstrip(":") for ln in lines] == ["train", "val", "test"]
    assert "all splits" not in res.output
    test = expect["test"]
    acc = sum(c for _, c in test.values()) / sum(n for n, _ in test.values())
    worst = min(c / n for n, c in test.values())
    tied = [g for g in GROUPS if g in test and test[g][1] / test[g][0] == worst]
    assert len(tied) == 2 and worst == 0.0    # both minority groups, always wrong
    assert f"test: accuracy {100 * acc:.1f}%, worst group {tied[0]} 0.0% (tied: {tied[1]})" in lines[-1]
    # train has no minority group: the adjusted average is undefined, and says why; WILDS' is by its counts
    assert f"adjusted n/a (train has no {', '.join(tied)})" in lines[-1]
    wilds = (3498 * 1.0 + 184 * 0 + 56 * 0 + 1057 * 1.0) / (3498 + 184 + 56 + 1057)
    assert f"WILDS adj_acc_avg {100 * wilds:.1f}%" in lines[-1]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["splits"]["test"]["adjusted_accuracy"] is None
    assert metrics["splits"]["test"]["wilds_adj_acc_avg"] == pytest.approx(wilds)
    assert metrics["splits"]["train"]["adjusted_accuracy"] == 1.0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "groups-test.png", "groups-train.png", "groups-val.png", "metrics.json", "scores.md"]
    # the bar chart: every tied worst group red, in the recipe's order, the reference line labelled
    im = Image.open(tmp_path / "r" / "groups-test.png").convert("RGB")
    label_w, row_h, pad = 220, 22, 12
    top = pad * 2 + row_h
    red = [GROUPS[i] for i in range(4) if im.getpixel((label_w, top + i * row_h + row_h // 2)) == (200, 40, 40)]
    assert red == tied
    scores = (tmp_path / "r" / "scores.md").read_text()
    assert scores.count("**(worst)**") == 2 + 2 + 2   # train and val: both groups tied at 100 %; test: 2


def partial(out, path, groups=("landbird_land", "waterbird_water"), per_group=25):
    rows = [r for r in table(out) if r["split"] == "2"]
    chosen = [r for g in groups for r in [r for r in rows if GROUPS[int(r["group"])] == g][:per_group]]
    path.write_text("key,pred\n" + "".join(f"{r['key']},{r['y']}\n" for r in chosen))
    return rows, chosen


def test_incomplete_predictions_are_refused_with_the_count_per_group(wb100, tmp_path):
    rows, chosen = partial(wb100, tmp_path / "p.csv")
    res = runner.invoke(app, ["eval", str(wb100), "-p", str(tmp_path / "p.csv")])
    assert res.exit_code == 2 and res.output.count("bgforge: error:") == 1
    total = Counter(GROUPS[int(r["group"])] for r in rows)
    given = Counter(GROUPS[int(r["group"])] for r in chosen)
    assert f"{len(rows) - len(chosen)} of {len(rows)} samples of split 'test' have no prediction" in res.output
    for g in GROUPS:
        if total[g] - given[g]:
            assert f"{g} {total[g] - given[g]} of {total[g]}" in res.output


def test_allow_missing_lists_every_group_and_leaves_worst_and_mean_undefined(wb100, tmp_path):
    rows, chosen = partial(wb100, tmp_path / "p.csv")
    res = runner.invoke(app, ["eval", str(wb100), "-p", str(tmp_path / "p.csv"), "--allow-missing", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert list(result["groups"]) == GROUPS
    total = Counter(GROUPS[int(r["group"])] for r in rows)
    for g in GROUPS:
        assert result["groups"][g]["n"] == total[g]
    assert result["groups"]["landbird_water"] == {"n": total["landbird_water"], "predicted": 0, "correct": 0,
                                                  "accuracy": None}
    assert result["unscored_groups"] == ["landbird_water", "waterbird_land"]
    assert result["worst_group"] is None and result["mean_group_accuracy"] is None
    assert result["predicted"] == len(chosen) and result["accuracy"] == 1.0
    res = runner.invoke(app, ["eval", str(wb100), "-p", str(tmp_path / "p.csv"), "--allow-missing", "-q"])
    assert "worst group n/a (no prediction for landbird_water, waterbird_land)" in res.output
    assert "mean group n/a" in res.output and f"({len(chosen)}/{len(rows)} predicted)" in res.output


def test_one_file_for_the_whole_dataset_scores_the_asked_split(wb100):
    rows = table(wb100)
    res = runner.invoke(app, ["eval", str(wb100), "-p", str(wb100 / "metadata.csv"), "--pred-column", "place",
                              "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)    # stdout is the JSON document alone
    test = [r for r in rows if r["split"] == "2"]
    assert result["split"] == "test" and result["n"] == result["predicted"] == len(test)
    assert result["accuracy"] == pytest.approx(sum(r["place"] == r["y"] for r in test) / len(test))
    assert sum(result["other_split_keys"].values()) == len(rows) - len(test)
