"""AutoBackSwap (AutoBackSwap): foregrounds pasted onto inpainted backgrounds of other classes.

Two phases, like Hard-Spurious-ImageNet. First every image that a swap needs is segmented
(the learned patch detector by default, any segmenter by name) and inpainted once, with the
`inpaint` stage, into OUT/backgrounds (background image, hole mask, and the undilated object
mask as object.png). Then each swap composites an image's foreground (its object mask) over
the inpainted background of an image from another class, fitted to the foreground image's
size (Waterbirds' cover-crop-resize), with the shared soft compositing.

Counts: with augmentation ratio r, every image gets floor(r) swaps and exactly
round(frac(r) * n) images of each split (drawn with the seed) get one more. A swap's
background class is uniform over the other classes of the split, its image uniform in that
class. The originals are written too (`include_originals`), so one dataset holds both.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..chain import Chain, WorkerContext
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..recipe import Recipe
from ..recipe_params import AutoBackSwapParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..sources.inputs import input_names
from ..stages.autobackswap import render
from .base import BuildContext, Phase, Planned, Planner
from .hard_spurious import resolve_backends
from .stage import check_weights
from .variants import labelled_input


def _background_params(p: dict, inpainter: str) -> dict:
    """Parameters of phase 1 (the `inpaint` stage): segment, keep the object mask, inpaint, store PNG."""
    t = AutoBackSwapParams.from_plan(p)
    options = dict(t.backend_options or {})
    if t.segmenter == "patchnet":
        options["patchnet_model"] = str(Path(t.patchnet_model).resolve())
        if t.patchnet_threshold is not None:
            options["patchnet_threshold"] = float(t.patchnet_threshold)
    return {"segmenter": t.segmenter, "inpainter": inpainter, "dilation": int(t.dilation),
            "image_format": "png", "object_mask": True, "backend_options": options}


def _without_mask(inputs: dict) -> dict:
    """The inputs minus a provided mask, so that phase 1 runs the chosen segmenter on every image."""
    out = {k: v for k, v in inputs.items() if k != "mask"}
    if "members" in out:
        out["members"] = {k: v for k, v in out["members"].items() if k not in ("mask.png", "dilated.png")}
    return out


def extra_copies(keys: list[str], fraction: float, seed: int, split: str) -> set:
    """The round(fraction * n) keys of a split that get one swap more than floor(ratio)."""
    ordered = sorted(keys)
    n_extra = int(round(fraction * len(ordered)))
    perm = rng_for(seed, "extra", split).permutation(len(ordered))
    return {ordered[i] for i in perm[:n_extra]}


class AutoBackSwapPlanner(Planner):
    """Images segmented and inpainted once (a `Phase`), then foregrounds swapped onto other classes' backgrounds."""

    DEMO_HINT = "bgforge build autobackswap --demo --out out/autobackswap-demo"
    TARGET_FIELD = "class_index"  # the `cls` member
    METADATA_COLUMNS = ["key", "kind", "label", "class_index", "bg_label", "bg_class_index", "split", "group",
                        "source_key", "bg_key", "copy"]
    INSPECT_TABLES = (("label", "bg_label"),)   # a swap puts a class on another class's background
    INSPECT_COUNTS = ("kind",)

    @classmethod
    def demo_params(cls) -> dict:
        """The cached demo photos with their manifest; box masks (no trained detector on a fresh machine)."""
        from ..sources.demo import demo_photos

        photos = demo_photos()
        return {"input": str(photos), "manifest": str(photos / "manifest.jsonl"), "segmenter": "box"}

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p, t = recipe.params, AutoBackSwapParams.from_params(recipe.params)
        seed = int(t.seed)
        ratio = float(t.ratio)
        samples, classes = labelled_input(p)
        segmenter, inpainter = resolve_backends({"segmenter": t.segmenter, "inpainter": t.inpainter})
        by_split, pools = {}, {}
        for s in samples:
            by_split.setdefault(s.split, []).append(s)
        for s in sorted(samples, key=lambda s: s.key):
            pools.setdefault((s.split, str(s.meta["label"])), []).append(s)
        base, fraction = math.floor(ratio), ratio - math.floor(ratio)
        out, needed = [], {}

        def meta_for(src, kind, bg, copy):
            label, bg_label = str(src.meta["label"]), str(bg.meta["label"])
            return {**src.meta, "kind": kind, "label": src.meta["label"], "class_index": classes.index(label),
                    "bg_label": bg.meta["label"], "bg_class_index": classes.index(bg_label),
                    **reserved_meta(src.split, f"{label}_on_{bg_label}", split=src.split),
                    "source_key": src.key, "bg_key": bg.key, "copy": copy, "recipe": recipe.name, "seed": seed,
                    "segmenter": segmenter, "inpainter": inpainter}

        for split, items in by_split.items():
            others_of = {c: [o for o in classes if o != c and pools.get((split, o))] for c in classes}
            extra = extra_copies([s.key for s in items], fraction, seed, split)
            for src in items:
                label = str(src.meta["label"])
                if t.include_originals:
                    out.append(Sample(key=src.key, split=split, inputs=dict(src.inputs),
                                      meta=meta_for(src, "original", src, 0)))
                copies = base + (src.key in extra)
                if copies and not others_of[label]:
                    raise BgforgeError(f"split {split!r} has images of class {label} only; a swap needs a background of "
                                       "another class: give the split images of at least two classes")
                for i in range(copies):
                    rng = rng_for(seed, "background", src.key, i)
                    bg_class = others_of[label][int(rng.integers(len(others_of[label])))]
                    pool = pools[(split, bg_class)]
                    bg = pool[int(rng.integers(len(pool)))]
                    needed[src.key], needed[bg.key] = src, bg
                    out.append(Sample(key=f"{src.key}-swap{i}", split=split,
                                      inputs={**src.inputs, "fg_key": src.key, "bg_key": bg.key},
                                      meta=meta_for(src, "swap", bg, i)))
        use_provided = segmenter == "provided"
        backgrounds = [Sample(key=k, split="backgrounds", inputs=dict(s.inputs) if use_provided else _without_mask(s.inputs),
                              meta=dict(s.meta))
                       for k, s in sorted(needed.items())]
        prerequisites = [Phase("backgrounds", "inpaint", _background_params(p, inpainter), backgrounds)] if backgrounds else []
        return Planned(samples=out, inputs={"input": str(Path(t.input).resolve()), "manifest": t.manifest},
                       source_files=input_names(samples), prerequisites=prerequisites,
                       notes=[f"{len(samples)} images, {len(classes)} classes, ratio {ratio}: "
                              f"{sum(s.meta['kind'] == 'swap' for s in out)} swaps; backgrounds: {segmenter} + {inpainter}"])

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..sources.key_index import IndexedStore

        # the index the backgrounds (`inpaint`) phase stored, not a scan of its shards in every worker
        folder = ctx.phase_dir("backgrounds")  # absent when no swap was planned (ratio 0)
        store = IndexedStore(folder) if (folder / "shards").is_dir() else None
        encoding = Encoding.of(params)
        return lambda batch: [render(s, store, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        from ..backends import registry

        t = AutoBackSwapParams.from_plan(params)
        if not t.input:
            raise BgforgeError("autobackswap needs an input: `bgforge autobackswap --input DIR --manifest M` or "
                               "`bgforge build autobackswap --set input=DIR --set manifest=M` (images with labels, or shards)")
        try:
            ratio = float(t.ratio)
        except (TypeError, ValueError):
            ratio = -1.0
        if not (ratio >= 0 and math.isfinite(ratio)):
            raise BgforgeError(f"ratio (augmented copies per image) must be a number >= 0, got {t.ratio!r}")
        registry.check_known(t.segmenter, "segmenter")
        registry.check_known(t.inpainter, "inpainter", allow=("auto",))
        if t.segmenter == "patchnet":
            model = t.patchnet_model
            if not model:
                raise BgforgeError("segmenter patchnet needs a model: pass --patchnet-model M.pt (recipe: --set "
                                   "patchnet_model=M.pt), trained with `bgforge patchnet train`")
            if not Path(model).is_file():
                raise BgforgeError(f"patchnet model {model} not found; train one with `bgforge patchnet train`")
        check_weights(_background_params(params, t.inpainter))
