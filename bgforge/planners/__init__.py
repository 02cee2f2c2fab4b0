"""Planners turn a recipe plus its sources into the full, seeded list of samples.

A planner module defines:
  plan(recipe, ctx) -> Planned     all random choices made up front from the seed
  make_chain(params) -> callable   the per-worker stage chain: list[Sample] -> list[Output|Failure]
  METADATA_COLUMNS                 leading metadata.csv columns (reference order)
  LABEL_FIELD, ATTR_FIELD          json fields whose correlation groups.json reports (optional)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ..errors import BgforgeError

PLANNERS = {
    "waterbirds": "bgforge.planners.waterbirds",
    "segment": "bgforge.planners.segment",
    "inpaint": "bgforge.planners.inpaint",
    "hard_spurious": "bgforge.planners.hard_spurious",
    "composite": "bgforge.planners.composite",
    "bap": "bgforge.planners.bap",
    "edit": "bgforge.planners.edit",
    "autobackswap": "bgforge.planners.autobackswap",
    "variants": "bgforge.planners.variants",
}


@dataclass
class BuildContext:
    roots: dict = field(default_factory=dict)   # flag values: {"cub": path-or-None, "places": ...}
    demo: bool = False


@dataclass
class Planned:
    samples: list                    # list[Sample], in output order
    inputs: dict                     # resolved input roots, recorded in plan.json and the manifest
    source_files: list = field(default_factory=list)  # every raw file considered: a changed input set is detected
    notes: list = field(default_factory=list)
    # (folder, planner, params, samples): outputs another phase must build first, e.g. the
    # inpainted backgrounds that Hard-Spurious-ImageNet composites are pasted on
    prerequisites: list = field(default_factory=list)
    skipped: list = field(default_factory=list)   # error records found while planning (bad boxes)
    shard_multiple: int = 1   # shards hold whole runs of this many consecutive samples


def get(name: str):
    if name not in PLANNERS:
        raise BgforgeError(f"unknown planner {name!r}; known: {', '.join(PLANNERS)}")
    return importlib.import_module(PLANNERS[name])
