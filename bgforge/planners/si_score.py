"""SI-Score (Djolonga et al. 2020; google-research/si-score): cut-out objects pasted on backgrounds
over a grid of sizes, locations and rotations, one recipe per released dataset (size, location,
rotation). Groups are class x grid cell.

The planner repeats the reference's arithmetic without pixels: each foreground's two backgrounds
from `np.random.seed(0)`'s stream, the product order of ids, the resized and rotated bounding
rectangle, its top-left corner and the share inside the image; a placement below
`min_pct_inside_image` is not generated (its id is skipped, as in the reference's metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..chain import Chain, WorkerContext
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import SiScoreParams
from ..records import Sample
from ..sample_meta import reserved_meta
from ..sources import si_score as src
from ..stages.placement import area_size, grid_values, pct_inside, placement_grid, rotated_size, top_left
from .base import BuildContext, Planned, Planner

SPLIT = "test"


def background_draws(n_foregrounds: int, n_backgrounds: int, k: int, seed: int) -> list[list[int]]:
    """Per foreground (in order), `np.random.choice(n_backgrounds, k, replace=False)` from one
    `np.random.seed(seed)` stream (generator_script.py:73, dataset_generator.py:445-451)."""
    if k > n_backgrounds:
        raise BgforgeError(f"num_bgs_per_fg_instance is {k} but the backgrounds folder holds {n_backgrounds} "
                           "images; add backgrounds or lower it")
    rs = np.random.RandomState(seed)
    return [rs.choice(n_backgrounds, k, replace=False).tolist() for _ in range(n_foregrounds)]


def grid(p: dict, demo: bool = False) -> tuple[list, list, list]:
    """(coords, areas, rotations) of the recipe: each an explicit list, or np.arange of its *_range
    (--demo: `demo_coord_range` where the recipe has one)."""
    areas = grid_values(p["areas"], p["area_range"])
    rotations = grid_values(p["rotations"], p["rotation_range"])
    demo_range = SiScoreParams.from_plan(p).demo_coord_range
    coord_range = demo_range if demo and demo_range else p["coord_range"]
    if coord_range:
        steps = grid_values([], coord_range)
        coords = [(x, y) for x in steps for y in steps]     # itertools.product(steps, steps)
    else:
        coords = [tuple(float(v) for v in c) for c in p["coords"]]
    return coords, areas, rotations


def cell_name(coord: tuple, area: float, rotation: float, varied: set) -> str:
    parts = []
    if "coord" in varied:
        parts.append(f"x={coord[0]:.2f},y={coord[1]:.2f}")
    if "area" in varied:
        parts.append(f"area={area:.2f}")
    if "rotation" in varied:
        parts.append(f"rotation={rotation:g}")
    return ",".join(parts) or "all"


def placements(fgs: list, draws: list, coords: list, areas: list, rotations: list, bg_size: tuple,
               min_pct: float) -> Iterator[tuple | None]:
    """Every id in the reference's order (dataset_generator.py:308-329: coord, area, rotation, then each
    foreground's backgrounds): (image_id, fg, background, coord, area, rotation, size, origin, pct), or
    None where the placement is not generated (less than min_pct inside, or resized to nothing)."""
    bg_w, bg_h = bg_size
    fg_bg = [(fg, b) for fg, chosen in zip(fgs, draws) for b in chosen]
    image_id = -1
    for coord, area, rotation in placement_grid(coords, areas, rotations):
        for fg, b in fg_bg:
            image_id += 1
            size = area_size(fg.width, fg.height, bg_w, bg_h, area)
            if min(size) < 1:
                yield None
                continue
            rw, rh = rotated_size(*size, rotation)
            origin = top_left(rw, rh, bg_w, bg_h, *coord)
            pct = pct_inside(rw, rh, bg_w, bg_h, *origin)
            yield None if pct < min_pct else (image_id, fg, b, coord, area, rotation, size, origin, pct)


class SiScorePlanner(Planner):
    """SI-Score's object size, location and rotation datasets from foreground and background folders."""

    METADATA_COLUMNS = ["image_id", "x_coord", "y_coord", "area", "rotation", "foreground_class",
                        "foreground_instance", "background", "bg_resolution_width", "bg_resolution_height",
                        "pct_inside_image"]
    LABEL_FIELD = "foreground_class"
    EVAL_BREAKDOWNS = ("cell",)
    INSPECT_COUNTS = ("class_name", "area", "rotation", "x_coord", "y_coord")   # a cell table would be 441 wide
    REFERENCE_PATHS = True   # <class>/<image_id>.jpg, the reference's file layout

    def label_name(self, meta: dict) -> str:
        return str(meta["class_name"])

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p = recipe.params
        if ctx.demo:
            from ..sources.synthetic_si_score import demo_si_score_roots
            roots = demo_si_score_roots()
            bg_w, bg_h = (int(v) for v in p["demo_bg_resolution"])
        else:
            roots = {"foregrounds": p["foregrounds"], "backgrounds": p["backgrounds"]}
            bg_w, bg_h = (int(v) for v in p["bg_resolution"])
        if p["foreground_source"] == "coco" and not ctx.demo:
            fgs = src.coco_foregrounds(ctx.roots.get("coco"), list(p["coco_categories"]), p["coco_split"],
                                       int(p["coco_per_class"]), float(p["coco_min_box"]))
            roots["foregrounds"] = str(Path(fgs[0].path).parent.parent)
        else:
            fgs = src.foregrounds(roots["foregrounds"])
        bgs = src.backgrounds(roots["backgrounds"])
        draws = background_draws(len(fgs), len(bgs), int(p["num_bgs_per_fg_instance"]), int(p["seed"]))
        coords, areas, rotations = grid(p, ctx.demo)
        varied = {name for name, values in (("coord", coords), ("area", areas), ("rotation", rotations))
                  if len(values) > 1}
        fmt, seed = p["image_format"], int(p["seed"])
        samples, dropped, total = [], 0, 0
        for pl in placements(fgs, draws, coords, areas, rotations, (bg_w, bg_h), float(p["min_pct_inside_image"])):
            total += 1
            if pl is None:
                dropped += 1
                continue
            image_id, fg, b, coord, area, rotation, size, origin, pct = pl
            cell = cell_name(coord, area, rotation, varied)
            samples.append(Sample(
                key=f"si_{image_id:07d}", split=SPLIT,
                inputs={"foreground": fg.path, "background": bgs[b], "size": list(size), "origin": list(origin),
                        "bg_size": [bg_w, bg_h],
                        **({"box": list(fg.box), "segmentation": fg.segmentation, "image_size": list(fg.image_size)}
                           if fg.box else {})},
                meta={"image_id": image_id, "x_coord": coord[0], "y_coord": coord[1], "area": area,
                      "rotation": rotation, "foreground_class": fg.class_index, "foreground_instance": fg.instance,
                      "background": b, "bg_resolution_width": bg_w, "bg_resolution_height": bg_h,
                      "pct_inside_image": round(pct, 4), "class_name": fg.class_name, "cell": cell,
                      **reserved_meta(SPLIT, f"{fg.class_name}/{cell}"), "file_name": f"{fg.class_name}/{image_id}.{fmt}",
                      "recipe": recipe.name, "seed": seed}))
        min_pct = float(p["min_pct_inside_image"])
        notes = [f"{len(fgs)} foregrounds in {len({f.class_name for f in fgs})} classes, {len(bgs)} backgrounds; "
                 f"{total} placements, {dropped} below min_pct_inside_image {min_pct:g} not generated"]
        return Planned(samples=samples, inputs={k: str(Path(v)) for k, v in roots.items()},
                       source_files=[f.path for f in fgs] + bgs, notes=notes)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..io.encoding import Encoding
        from ..stages.si_score import BackgroundCache, render

        encoding, cache = Encoding.of(params), BackgroundCache()
        return lambda batch: [render(s, encoding, cache) for s in batch]

    def validate(self, params: dict) -> None:
        pct = SiScoreParams.from_plan(params).min_pct_inside_image
        if not isinstance(pct, (int, float)) or not 0 <= pct <= 1:
            raise BgforgeError(f"min_pct_inside_image must be a fraction in [0, 1], got {pct!r}")
        for key in ("area_range", "rotation_range", "coord_range"):
            if params[key] and len(params[key]) != 3:
                raise BgforgeError(f"{key} must be [start, stop, step] (np.arange) or [], got {params[key]}")
        for key in ("bg_resolution", "demo_bg_resolution"):
            if len(params[key]) != 2 or min(int(v) for v in params[key]) < 1:
                raise BgforgeError(f"{key} must be [width, height], got {params[key]}")
        if params["foreground_source"] not in ("folder", "coco"):
            raise BgforgeError(f"foreground_source must be folder or coco, got {params['foreground_source']!r}")
        if int(params["num_bgs_per_fg_instance"]) < 1:
            raise BgforgeError("num_bgs_per_fg_instance must be at least 1")
