"""Planners turn a recipe plus its sources into the full, seeded list of samples.

Each planner module defines one `Planner` subclass (planners/base.py):
  plan(recipe, ctx) -> Planned             all random choices made up front from the seed; a
                                           multi-phase recipe lists `Phase`s to build first
  make_chain(params, ctx) -> chain         the per-worker stage chain: list[Sample] -> list[Output|Failure];
                                           ctx (WorkerContext): the output folder and the worker's device
  validate(params)                         one-line errors before any work
  on_finalize(out, params)                 construction facts for manifest.json after the last shard
                                           commits (reports that read the output: report/finalize_reports.py)
  METADATA_COLUMNS, LABEL_FIELD,           metadata.csv's leading columns, the fields whose
  ATTR_FIELDS, SPLIT_CODES                 correlation groups.json and `bgforge inspect` report,
                                           split codes written in metadata.csv
`get(name)` returns the planner a recipe's `planner:` names; modules load only when asked for.
"""

from __future__ import annotations

import importlib

from ..errors import BgforgeError
from .base import BuildContext, Phase, Planned, Planner

__all__ = ["PLANNERS", "BuildContext", "Phase", "Planned", "Planner", "get"]

# recipe `planner:` name -> (module, Planner subclass)
PLANNERS = {
    "waterbirds": ("bgforge.planners.waterbirds", "WaterbirdsPlanner"),
    "segment": ("bgforge.planners.segment", "SegmentPlanner"),
    "inpaint": ("bgforge.planners.inpaint", "InpaintPlanner"),
    "hard_spurious": ("bgforge.planners.hard_spurious", "HardSpuriousPlanner"),
    "composite": ("bgforge.planners.composite", "CompositePlanner"),
    "bap": ("bgforge.planners.bap", "BapPlanner"),
    "edit": ("bgforge.planners.edit", "EditPlanner"),
    "autobackswap": ("bgforge.planners.autobackswap", "AutoBackSwapPlanner"),
    "variants": ("bgforge.planners.variants", "VariantsPlanner"),
    "urbancars": ("bgforge.planners.urbancars", "UrbanCarsPlanner"),
    "spurious_ood": ("bgforge.planners.spurious_ood", "SpuriousOodPlanner"),
    "coco_places": ("bgforge.planners.coco_places", "CocoPlacesPlanner"),
    "si_score": ("bgforge.planners.si_score", "SiScorePlanner"),
    "fornet": ("bgforge.planners.fornet", "FornetPlanner"),
    "fornet_eval": ("bgforge.planners.fornet_eval", "FornetEvalPlanner"),
}


def get(name: str) -> Planner:
    """The planner registered as `name`, e.g. `waterbirds`."""
    if name not in PLANNERS:
        raise BgforgeError(f"unknown planner {name!r}; known: {', '.join(PLANNERS)}")
    module, cls = PLANNERS[name]
    return getattr(importlib.import_module(module), cls)()
