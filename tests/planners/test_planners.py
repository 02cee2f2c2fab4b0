"""The planner interface: every registered planner is a `Planner` with the fields' one default."""

from pathlib import Path

import pytest

from bgforge import planners
from bgforge.chain import WorkerContext
from bgforge.errors import BgforgeError
from bgforge.planners import Planner


@pytest.mark.parametrize("name", sorted(planners.PLANNERS))
def test_every_registered_planner_is_a_planner(name):
    planner = planners.get(name)
    assert isinstance(planner, Planner)
    assert planner.METADATA_COLUMNS and isinstance(planner.LABEL_FIELD, str)


def test_defaults_are_declared_once_on_the_base():
    assert (Planner.LABEL_FIELD, Planner.ATTR_FIELDS, dict(Planner.SPLIT_CODES)) == ("label", (), {})
    wb = planners.get("waterbirds")
    assert (wb.LABEL_FIELD, wb.ATTR_FIELDS, wb.SPLIT_CODES["val"]) == ("y", ("place",), 1)
    assert planners.get("variants").ATTR_FIELDS == ()
    assert planners.get("urbancars").ATTR_FIELDS == ("bg", "co_obj")


def test_unknown_planner_is_one_line_error():
    with pytest.raises(BgforgeError, match="unknown planner 'nope'; known: waterbirds"):
        planners.get("nope")


def test_worker_context_names_earlier_phases():
    ctx = WorkerContext(Path("/data/out"))
    assert ctx.phase_dir("backgrounds") == Path("/data/out/backgrounds") and ctx.device is None
