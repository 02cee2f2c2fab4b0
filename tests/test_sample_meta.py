"""The planner contract's shared pieces: the reserved meta keys, one correlation per cue in groups.json,
source roots named once."""

import io

import pytest

from bgforge.errors import BgforgeError
from bgforge.io.metadata import MetadataWriter, group_label
from bgforge.planners import BuildContext
from bgforge.sample_meta import group_of, reserved_meta, split_of
from bgforge.sources import source_root


def test_reserved_meta_writes_what_it_is_given():
    assert reserved_meta("train") == {"split_name": "train"}
    assert reserved_meta("val", 3, "waterbird_land", split=1) == {
        "split_name": "val", "split": 1, "group": 3, "group_name": "waterbird_land"}
    assert reserved_meta("test", "a/b") == {"split_name": "test", "group": "a/b", "group_name": "a/b"}


def test_readers_prefer_the_name_then_the_plain_key():
    assert split_of({"split": 0, "split_name": "train"}) == "train"
    assert split_of({"split": "val"}) == "val"
    assert split_of({}, "all") == "all"
    assert group_of({"group": 2, "group_name": "landbird_water"}) == "landbird_water"
    assert group_of({"group": 2}) == 2
    assert group_label({"group": ""}) == "all" and group_label({"group_name": "x", "group": 1}) == "x"


def _summary(attr_fields):
    rows = [{**reserved_meta("train", f"g{y}{bg}{co}"), "y": y, "bg": bg, "co_obj": co}
            for y, bg, co in [(0, 0, 0)] * 8 + [(1, 1, 0)] * 8 + [(0, 1, 1), (1, 0, 1)] * 2]
    writer = MetadataWriter(io.StringIO(), ["key"], "y", attr_fields)
    writer.add(rows)
    return writer.summary()["train"]


def test_every_cue_gets_its_correlation():
    one = _summary(("bg",))
    assert "correlation" in one and "correlations" not in one   # a single-cue recipe's groups.json as before
    two = _summary(("bg", "co_obj"))
    assert two["correlation"] == one["correlation"]
    assert set(two["correlations"]) == {"bg", "co_obj"} and two["correlations"]["bg"] == one["correlation"]
    # bg follows the label in 16 of 20 rows, co_obj in 10 of 20: two different figures
    assert two["correlations"]["bg"]["aligned_fraction"] == pytest.approx(0.8)
    assert two["correlations"]["co_obj"]["aligned_fraction"] == pytest.approx(0.5)
    assert "correlation" not in _summary(())


def test_source_roots_follow_the_name(tmp_path, monkeypatch):
    monkeypatch.delenv("BGFORGE_LVIS_ROOT", raising=False)
    with pytest.raises(BgforgeError, match="no LVIS v1 root given: pass --lvis-root DIR or set BGFORGE_LVIS_ROOT"):
        BuildContext().root("lvis")
    monkeypatch.setenv("BGFORGE_CARS_ROOT", str(tmp_path))
    assert BuildContext().root("cars") == tmp_path.resolve()
    assert source_root("cars", tmp_path / "..") == tmp_path.parent.resolve()
