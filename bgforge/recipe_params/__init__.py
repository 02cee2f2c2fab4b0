"""Typed recipe parameters: one frozen record per planner family, each default declared once.

A family's record lists every parameter its planner and stages read, with the value a recipe that
omits it gets (the field default). `Family.from_params(params)` builds it once from a recipe's params
and refuses a key the family does not know, naming the nearest one (`resampeling` -> `resampling`);
`recipe.load` runs the same check on every recipe file, so a misspelled key is an error, not a no-op.
A stage reading a stored plan uses `Family.from_plan(params)`: absent keys take the family's LEGACY
value (base.py), the value plans written before the key existed were built with.

Ranges and choices stay in params.RULES (checked before planning); these records only say which keys
exist and what each defaults to.

    base.py      FamilyParams (seed, encoding; from_params / from_plan), LEGACY, seed_of
    families.py  Waterbirds, spurious-OOD, HSI, BAP, UrbanCars, AutoBackSwap, COCO-on-Places, SI-Score,
                 and the stage commands' (segment, inpaint, edit, variants, composite)
    fornet.py    fornet, fornet_eval
"""

from __future__ import annotations

from .base import LEGACY, FamilyParams, seed_of
from .families import (
    AutoBackSwapParams,
    BapParams,
    CocoPlacesParams,
    CompositeParams,
    EditParams,
    HsiParams,
    InpaintParams,
    SegmentParams,
    SiScoreParams,
    SpuriousOodParams,
    UrbanCarsParams,
    VariantsParams,
    WaterbirdsParams,
)
from .fornet import FornetCommon, FornetEvalParams, FornetParams

__all__ = ["LEGACY", "FamilyParams", "seed_of", "AutoBackSwapParams", "BapParams", "CocoPlacesParams",
           "CompositeParams", "EditParams", "HsiParams", "InpaintParams", "SegmentParams", "SiScoreParams",
           "SpuriousOodParams", "UrbanCarsParams", "VariantsParams", "WaterbirdsParams", "FornetCommon",
           "FornetEvalParams", "FornetParams", "FAMILIES", "for_planner"]

# recipe `planner:` name -> its record (recipe.load checks every file's keys against it)
FAMILIES: dict[str, type[FamilyParams]] = {
    c.FAMILY: c for c in (WaterbirdsParams, SpuriousOodParams, HsiParams, BapParams, UrbanCarsParams,
                          AutoBackSwapParams, CocoPlacesParams, SiScoreParams, SegmentParams, InpaintParams, EditParams,
                          VariantsParams, CompositeParams, FornetParams, FornetEvalParams)}


def for_planner(planner: str) -> type[FamilyParams] | None:
    return FAMILIES.get(planner)
