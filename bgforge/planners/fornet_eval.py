"""`fornet-eval`: ForAug's evaluation grid as groups, position nonant x size factor x background source.

Every foreground of the chosen split (ImageNet val by default) is recombined once in every cell:
`fg_in_nonant` 0-8 (the 3x3 cell it is placed in, with the target area divided by 9; fornet.py:323-324,
377-381), `size_fact` (a factor on the target scale; fornet.py:338-344) and the background source
(`orig` its own inpainted background, `same` one of its class, `all` one of any class; fornet.py:474-481).
A nonant of -1 is ForAug's fg_in_nonant=-1: a nonant's size, placed anywhere (fornet.py:107, :323, :377).
ForAug's four bias metrics are computed from these groups by `bgforge eval` (eval/foraug.py).
"""

from __future__ import annotations

from ..choices import BACKGROUND_COMBINATIONS
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import FornetEvalParams
from .base import BuildContext, Planned
from .fornet import FornetBase, Grid, check_common


def nonant_name(n) -> str:
    return "free" if n is None else f"n{int(n)}"


def size_name(f) -> str:
    """`s100` for a size factor of 1.0 (percent, three digits: sample keys take no dots)."""
    return f"s{round(float(f) * 100):03d}"


def cells(t: FornetEvalParams) -> list[dict]:
    """The grid in group order: nonant slowest, then size factor, then background source."""
    return [{"nonant": None if n is None else int(n), "size_fact": float(f), "bg_source": b}
            for n in t.nonants for f in t.size_factors for b in t.background_sources]


def group_of(cell: dict) -> str:
    """`n4-s100-all`: the nonant, the size factor and the background source of a cell."""
    return f"{nonant_name(cell['nonant'])}-{size_name(cell['size_fact'])}-{cell['bg_source']}"


def eval_cells(t: FornetEvalParams) -> list[tuple[str, dict, str]]:
    """(group, cell, key suffix) per cell: a composite's key is its foreground's key plus `-<group>`."""
    return [(group_of(c), c, f"-{group_of(c)}") for c in cells(t)]


class FornetEvalPlanner(FornetBase):
    PARAMS = FornetEvalParams
    METADATA_COLUMNS = ["key", "label", "wnid", "class_name", "split", "group", "nonant", "size_fact", "bg_source",
                        "fg_key", "bg_key", "bg_class", "bg_relation"]
    EVAL_BREAKDOWNS = ("nonant", "size_fact", "bg_source")
    INSPECT_TABLES = (("nonant", "size_fact"), ("class_name", "bg_source"))
    INSPECT_COUNTS = ("nonant", "size_fact", "bg_source", "bg_relation")

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        t, seg, inp, wn, src, recs, wnids, names = self._setup(recipe, ctx)
        return self._planned(recipe, t, Grid(recs, eval_cells(t)), recs, wnids, names, wn, src, seg, inp)

    def preview_rows(self, params: dict) -> dict:
        return {group_of(c): group_of(c) for c in cells(FornetEvalParams.from_plan(params))}

    def validate(self, params: dict) -> None:
        t = FornetEvalParams.from_params(params)
        check_common(t)
        for n in t.nonants or []:
            if n is not None and not (isinstance(n, int) and -1 <= n <= 8):
                raise BgforgeError(f"nonants are 0-8 (row-major 3x3 cells) or -1; got {n!r}")
        for f in t.size_factors or []:
            if not float(f) > 0:
                raise BgforgeError(f"size_factors must be > 0, got {f!r}")
        for b in t.background_sources or []:
            if b not in BACKGROUND_COMBINATIONS:
                raise BgforgeError(f"background_sources are {', '.join(BACKGROUND_COMBINATIONS)}; got {b!r}")
        if not (t.nonants and t.size_factors and t.background_sources):
            raise BgforgeError("nonants, size_factors and background_sources each need at least one value")
