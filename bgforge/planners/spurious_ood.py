"""Spurious-OOD Waterbirds (Ming et al., AAAI 2022; deeplearning-wisc/Spurious_OOD).

The in-distribution set is Waterbirds with the train split's strength set by one parameter,
`confounder_strength` (the paper's r: 0.5, 0.7 or 0.9; val and test at 0.5), built by the
Waterbirds planner and composite unchanged. The spurious OOD test set (`placesbg`, split `ood`)
is background images only, from the same four Places365 categories, copied byte for byte as the
reference's `shutil.copyfile` does:

  correct   (default) every image of the land categories under land/, of the water ones under
            water/ (each file named <category>_<file>, as Places names files per category)
  released  what the released generate_placebg.py writes and test_bg.py reads: only the ocean
            images, filed under land/ (see docs/fidelity.md for the two bugs)
  none      no OOD split
"""

from __future__ import annotations

import dataclasses
import os

from ..chain import Chain, WorkerContext
from ..choices import OOD_SETS
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import SpuriousOodParams
from ..records import Sample
from ..sample_meta import reserved_meta
from ..sources.places365 import PlacesSource
from .base import BuildContext, Planned
from .waterbirds import WaterbirdsPlanner

PLACE_NAMES = ("land", "water")
OOD_SPLIT = "ood"


def ood_files(places: PlacesSource, land: list[str], water: list[str], mode: str) -> list[tuple[int, str, str]]:
    """(place index, place_filename, path) of the OOD set, in category then file order."""
    if mode == "none":
        return []
    if mode == "released":
        # generate_placebg.py keeps only the last category list's files (water) and files each
        # under land/ when its first path part is a substring of that list's first entry ('ocean');
        # the others all overwrite one file `water/natural`, which no ImageFolder reads.
        first = water[0].strip("/").split("/")[1]
        return [(0, name, path) for cat in water for name, path in places.files(cat)
                if name.strip("/").split("/")[1] in first]
    return [(idx, name, path) for idx, cats in enumerate((land, water)) for cat in cats
            for name, path in places.files(cat)]


def _slug(place_filename: str) -> str:
    """`/l/lake/natural/00000001.jpg` -> `lake-natural_00000001.jpg`."""
    parts = place_filename.strip("/").split("/")
    return "-".join(parts[1:-1]) + "_" + parts[-1]


class SpuriousOodPlanner(WaterbirdsPlanner):
    """Waterbirds at `confounder_strength`, plus the background-only OOD split."""

    INSPECT_COUNTS = ("place",)
    SPLIT_CODES = {"train": 0, "val": 1, "test": 2, OOD_SPLIT: 3}

    def label_name(self, meta: dict) -> str:
        if meta.get("split_name") == OOD_SPLIT:
            return PLACE_NAMES[int(meta["place"])]
        return super().label_name(meta)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p = recipe.params
        strength = float(p["confounder_strength"])
        # generate_waterbird.py:104-110: train at r for waterbirds and 1 - r for landbirds, val and test at 0.5
        inner = dataclasses.replace(recipe, params={**p, "train_strength": strength, "val_strength": 0.5,
                                                    "test_strength": 0.5})
        planned = super().plan(inner, ctx)
        places = PlacesSource(planned.inputs["places"])
        used = {s.meta["place_filename"] for s in planned.samples} if p["ood_exclude_id_backgrounds"] else set()
        ood = [f for f in ood_files(places, p["land_places"], p["water_places"], p["ood_set"]) if f[1] not in used]
        for place, name, path in ood:
            slug = _slug(name)
            planned.samples.append(Sample(
                key=f"ood_{os.path.splitext(slug)[0]}", split=OOD_SPLIT, inputs={"image": path},
                meta={"img_filename": f"placesbg/{PLACE_NAMES[place]}/{slug}", "y": "",
                      **reserved_meta(OOD_SPLIT, f"ood_{PLACE_NAMES[place]}", split=3),
                      "place": place, "place_filename": name,
                      "recipe": recipe.name, "seed": int(p["seed"])}))
        if p["ood_set"] != "none":
            planned.notes.append(f"OOD set ({p['ood_set']}): {len(ood)} background images"
                                 + (f", {len(used)} used as ID backgrounds left out" if used else ""))
        return planned

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..io.encoding import Encoding
        from ..stages.spurious_ood import render_ood
        from ..stages.waterbirds import render

        encoding = Encoding.of(params)
        return lambda batch: [render_ood(s, encoding) if s.split == OOD_SPLIT else render(s, params, encoding)
                              for s in batch]

    def validate(self, params: dict) -> None:
        super().validate(params)
        typed = SpuriousOodParams.from_plan(params)
        strength = typed.confounder_strength
        if not isinstance(strength, (int, float)) or not 0 <= float(strength) <= 1:
            raise BgforgeError(f"confounder_strength must be a fraction in [0, 1] (the paper uses 0.5, 0.7, 0.9), "
                               f"got {strength!r}")
        if typed.ood_set not in OOD_SETS:
            raise BgforgeError(f"ood_set must be one of {', '.join(OOD_SETS)}, got {typed.ood_set!r}")
