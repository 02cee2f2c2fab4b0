"""One order everywhere (ordering.py): files, tables and summaries list splits and names alike."""

import json

import pytest
from typer.testing import CliRunner

from bgforge.cli import app
from bgforge.cli.common import format_groups
from bgforge.ordering import ordered_names, ordered_splits

runner = CliRunner()


def test_names_sort_by_number_case_and_meaning():
    assert ordered_names(["CeO-112", "CeO-56", "CeO-84"]) == ["CeO-56", "CeO-84", "CeO-112"]
    assert ordered_names(["1.5", "1.25", "0.5", "1"]) == ["0.5", "1", "1.25", "1.5"]   # ForNet size factors
    assert ordered_names(["hard", "easy", "medium"]) == ["easy", "medium", "hard"]
    assert ordered_names(["mixed_rand", "only_fg", "original", "no_fg"])[0] == "original"
    assert ordered_names(["Chihuahua", "box turtle", "Maltese dog"]) == ["box turtle", "Chihuahua", "Maltese dog"]
    assert ordered_splits(["test", "val", "train", "extra"]) == ["train", "val", "test", "extra"]


@pytest.mark.slow
def test_groups_json_lists_splits_in_order(tmp_path):
    out = tmp_path / "wb"
    res = runner.invoke(app, ["build", "waterbirds-100", "--demo", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    groups = json.loads((out / "groups.json").read_text())
    assert list(groups) == ["train", "val", "test"]   # was test, train, val (sorted keys)
    for entry in groups.values():
        assert list(entry["groups"]) == ordered_names(entry["groups"])


def test_group_table_columns_align_whatever_the_name_length():
    table = format_groups({"train": {"total": 3, "groups": {"short": 1, "a_group_name_longer_than_24_chars": 2}}})
    counts_at = {line.rstrip().rfind(" ") for line in table.splitlines()}
    assert len({len(line.rstrip()) for line in table.splitlines()}) == 1 and len(counts_at) == 1
