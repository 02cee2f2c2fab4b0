"""The reports a recipe family writes once every shard is committed, keyed by planner name (plan.json's
`recipe.planner`). Report code sits above the planners (it reads the committed output back), so
finalize calls it here rather than through the planner's `on_finalize` hook, which returns only
construction facts for manifest.json.

    REPORTS["edit"](out, params)   # OUT/spurious.json, spurious.md, .bgforge/preview/flips.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def _edit_flips(out: Path, params: dict) -> None:
    """`bgforge edit`'s spurious-feature report (ASPIRE's flips per class)."""
    from ..recipe_params import EditParams
    from .spurious import write_report

    t = EditParams.from_plan(params)
    write_report(out, int(t.top_k), t.top_k_rank, t.phrase_collapse, t.phrases)


REPORTS: dict[str, Callable[[Path, dict], None]] = {
    "edit": _edit_flips,
}


def write(planner: str, out: Path, params: dict) -> None:
    """Write the planner's recipe-specific report, if it has one."""
    report = REPORTS.get(planner)
    if report is not None:
        report(out, params)
