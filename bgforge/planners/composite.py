"""`bgforge composite`: one size x position x background group from foreground and background sets.

Foregrounds and backgrounds are matched by key (`--bg-mode original`: an inpaint output keeps
its input's keys) or drawn from another label's backgrounds (`random`, seeded per sample).
"""

from __future__ import annotations

from ..chain import Chain, WorkerContext
from ..choices import CORNERS, POSITIONS
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..recipe import Recipe
from ..recipe_params import CompositeParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..sources.inputs import load_input
from .base import BuildContext, Planned, Planner
from .hsi_backgrounds import object_box


def group_name(p: dict) -> str:
    return f"{'Ce' if p['position'] == 'center' else 'Co'}{'O' if p['bg_mode'] == 'original' else 'R'}-{p['size']}"


def _check_object_masks(store, fgs: list[Sample], bg: str) -> None:
    """--fg-mode mask cuts each foreground out with the object.png that `inpaint --object-mask` stores
    under the foreground's key in --bg: refuse at planning, not once per sample, when it is not there."""
    missing = [s.key for s in fgs
               if s.key not in store or "object.png" not in store.records[s.key].inputs.get("members", {})]
    if missing:
        raise BgforgeError(f"--fg-mode mask needs each foreground's object.png in --bg, and {bg} has none for "
                           f"{len(missing)} of {len(fgs)} foregrounds (e.g. {missing[0]!r}); make --bg with "
                           "`bgforge inpaint --object-mask` from the same images, or use --fg-mode box")


class CompositePlanner(Planner):
    """`bgforge composite`: one group, foregrounds pasted on the backgrounds of a store."""

    METADATA_COLUMNS = ["key", "label", "group", "size", "position", "background", "fg_key", "bg_key", "bg_label"]
    INSPECT_TABLES = (("label", "group"), ("label", "bg_label"))
    INSPECT_COUNTS = ("size", "position", "background")

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        from ..sources.store import open_store

        p, t = recipe.params, CompositeParams.from_params(recipe.params)
        seed = int(t.seed)
        fgs = load_input({"input": t.fg, "manifest": t.fg_manifest})
        store = open_store(t.bg, t.bg_manifest)
        if t.fg_mode == "mask":
            _check_object_masks(store, fgs, p["bg"])
        by_label = {}
        for key in sorted(store.records):
            by_label.setdefault(str(store.meta(key).get("label")), []).append(key)
        group = group_name(p)
        samples = []
        for s in fgs:
            label = str(s.meta.get("label"))
            if p["bg_mode"] == "original":
                bg_key = s.key
                if bg_key not in store:
                    raise BgforgeError(f"--bg-mode original: no background with key {bg_key!r} in {p['bg']}; "
                                       "pass the inpaint output of the same images (keys must match)")
            else:
                others = sorted(lbl for lbl in by_label if lbl != label)
                if not others:
                    raise BgforgeError(f"--bg-mode random needs backgrounds of another label than {label!r} in {p['bg']} "
                                       "(labels come from the background manifest or the inpaint output's json)")
                rng = rng_for(seed, "composite-bg", s.key)
                pool = by_label[others[int(rng.integers(len(others)))]]
                bg_key = pool[int(rng.integers(len(pool)))]
            corner = CORNERS[int(rng_for(seed, "corner", s.key).integers(4))] if p["position"] == "corner-random" else "top-right"
            boxes = s.meta.get("boxes")
            inputs = {**s.inputs, "box": object_box(boxes, "largest") if boxes else None, "bg_key": bg_key}
            samples.append(Sample(key=s.key, split=s.split, inputs=inputs, meta={
                "label": s.meta.get("label"), **reserved_meta(s.split, group), "size": int(p["size"]),
                "position": "center" if p["position"] == "center" else "corner", "corner": corner,
                "background": p["bg_mode"], "fg_key": s.key, "bg_key": bg_key,
                "bg_label": store.meta(bg_key).get("label")}))
        return Planned(samples=samples, inputs={"fg": p["fg"], "bg": p["bg"]},
                       source_files=[s.key for s in fgs] + sorted(store.records))

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..sources.store import open_store
        from ..stages.hard_spurious import render

        t = CompositeParams.from_plan(params)
        store = open_store(t.bg, t.bg_manifest)  # index once per worker
        encoding = Encoding.of(params)
        return lambda batch: [render(s, store, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        if params["position"] not in POSITIONS:
            raise BgforgeError(f"--pos must be center, corner or corner-random, got {params['position']!r}")
        # bg_mode and fg_mode: params.RULES (choices.BG_MODES / FG_MODES), checked before this
