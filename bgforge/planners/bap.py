"""BAP anchor and alignment composites (BAP, "Birds of a Feather Flock Together"): recipes bap-waterbirds, bap-coco-vehicles,
bap-coco-person.

Every foreground is pasted on K anchor and M alignment backgrounds, all distinct within the
foreground. Two phases: each foreground is cropped tight to its mask once (OUT/foregrounds),
then every composite pastes that crop on its background (stages/bap.py).

Foregrounds: CUB images minus every image of a Waterbirds val/test split (leakage rule: read
from a Waterbirds metadata.csv, or derived by planning the Waterbirds recipe with the same
seed), or COCO objects of named categories whose box is large enough. Backgrounds: Places365
categories, plus a texture folder when asked. A background is drawn by picking a category
uniformly (among those with unused images), then an unused image of it: every listed category
is equally likely whatever its image count. With `test_fraction`, each background category's
images and the foregrounds' source images are split (1 - f) / f between train and test, so
test scenes and test objects are unseen in train.

Samples are planned foreground by foreground (anchors 0..K-1, then alignments 0..M-1), and the
planner asks for shard sizes that are multiples of K + M (`Planned.shard_multiple`) so one
foreground's composites never straddle two shards: a trainer can average a foreground's
anchors without a global shuffle.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from .. import recipe as recipemod
from ..chain import Chain, WorkerContext
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..recipe import Recipe
from ..recipe_params import BapParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from .balance import seeded_subset
from .bap_backgrounds import background_pools, draw_backgrounds
from .base import BuildContext, Phase, Planned, Planner
from .waterbirds import WaterbirdsPlanner

log = logging.getLogger(__name__)

SPLIT_ORDER = {"train": 0, "test": 1}
WATERBIRDS_SPLITS = {"train": 0, "val": 1, "test": 2}


def roles(anchors: int, alignments: int) -> list[tuple[str, int]]:
    """The composites of one foreground in output order."""
    return [("anchor", i) for i in range(anchors)] + [("align", j) for j in range(alignments)]


# ---------------------------------------------------------------- foregrounds

def _cub_label(class_dir: str, classes: list[str]) -> int:
    """`001.Black_footed_Albatross` -> 0 (CUB's class id - 1); the sorted position otherwise."""
    head = class_dir.split(".", 1)[0]
    return int(head) - 1 if head.isdigit() else classes.index(class_dir)


def _cub_foregrounds(recipe: Recipe, ctx: BuildContext, seed: int) -> tuple[list[Sample], dict, list, list]:
    from ..sources.cub import CubSource

    p = recipe.params
    cub = CubSource(ctx.root("cub"))
    images = cub.images()
    if not images:
        raise BgforgeError(f"CUB root {cub.root} lists no images in images.txt")
    excluded, note = excluded_cub_ids(p, ctx, seed, {im.img_id for im in images})
    classes = sorted({im.class_dir for im in images})
    fgs = [Sample(key=f"cub_{im.img_id:06d}", split="train",
                  inputs={"image": str(cub.image_path(im)), "mask": str(cub.mask_path(im))},
                  meta={"fg_id": im.img_id, "label": _cub_label(im.class_dir, classes), "class_name": im.class_dir,
                        **reserved_meta("train", "foreground", split="train"), "source": "cub",
                        "img_filename": im.rel_path})
           for im in images if im.img_id not in excluded]
    scanned = [str(cub.image_path(im)) for im in images] + [f"excluded:{i}" for i in sorted(excluded)]
    return fgs, {"cub": str(cub.root)}, [note, f"{len(fgs)} CUB foregrounds kept of {len(images)}"], scanned


def excluded_cub_ids(p: dict, ctx: BuildContext, seed: int, cub_ids: set) -> tuple[set, str]:
    """CUB ids of the Waterbirds val/test split (BAP's leakage rule) and a note saying whence."""
    t = BapParams.from_plan(p)
    codes = {WATERBIRDS_SPLITS.get(str(s), s) for s in t.exclude_splits or [1, 2]}
    codes = {int(c) for c in codes}
    if t.exclude_metadata:
        path = Path(str(t.exclude_metadata)).expanduser()
        ids = _ids_from_metadata(path, codes)
        if ids and not ids & cub_ids:
            raise BgforgeError(f"exclude_metadata {path} names no image id of this CUB root: is it a Waterbirds "
                               "metadata.csv built from this CUB-200-2011?")
        return ids, f"excluded {len(ids & cub_ids)} CUB images of splits {sorted(codes)} listed in {path}"
    name = t.exclude_from_recipe
    if not name:
        return set(), "no exclusion: foregrounds may appear in a downstream val/test split (leakage rule off)"

    wb = recipemod.load(str(name))
    if wb.planner != "waterbirds":
        raise BgforgeError(f"exclude_from_recipe {name} uses planner {wb.planner}; name a Waterbirds recipe "
                           "(waterbirds-95, waterbirds-100) or pass --set exclude_metadata=metadata.csv")
    wb_seed = seed if t.exclude_seed is None else int(t.exclude_seed)
    wb.params["seed"] = wb_seed
    try:
        planned = WaterbirdsPlanner().plan(wb, ctx)
    except BgforgeError as exc:
        raise BgforgeError(f"deriving the Waterbirds split ({name}, seed {wb_seed}) failed: {exc} "
                           "(or pass --set exclude_metadata=<waterbirds>/metadata.csv)") from None
    ids = {s.meta["img_id"] for s in planned.samples if int(s.meta["split"]) in codes}
    log.warning(DERIVED_SPLIT_WARNING)
    return ids, f"excluded {len(ids)} CUB images of splits {sorted(codes)} of {name} with seed {wb_seed}"


# The official Waterbirds split came from an unseeded generator: a split derived here overlaps it
# only by chance (about 960 of the kept birds would be in the official val split), so say so loudly.
DERIVED_SPLIT_WARNING = ("WARNING: the leakage split is DERIVED (bgforge planned the Waterbirds recipe itself), not "
                         "read from the official Waterbirds metadata.csv: birds of the official val/test split may "
                         "be kept. Pass --set exclude_metadata=<waterbirds_v1.0>/metadata.csv to exclude the "
                         "official split.")


def derived_leakage_split(params: dict) -> bool:
    """True when the CUB leakage rule excludes a split bgforge derived rather than a metadata.csv's."""
    t = BapParams.from_plan(params)
    return t.foreground_source == "cub" and not t.exclude_metadata and bool(t.exclude_from_recipe)


def _ids_from_metadata(path: Path, codes: set) -> set:
    if not path.is_file():
        raise BgforgeError(f"exclude_metadata {path} not found; pass a Waterbirds metadata.csv (img_id,split,...)")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("img_id", "split") if c not in (reader.fieldnames or [])]
        if missing:
            raise BgforgeError(f"exclude_metadata {path} lacks column(s) {', '.join(missing)}; "
                               "a Waterbirds metadata.csv has img_id,img_filename,y,split,place,place_filename")
        ids = set()
        for n, row in enumerate(reader, 2):
            raw = row["split"].strip()
            try:
                split = WATERBIRDS_SPLITS[raw] if raw in WATERBIRDS_SPLITS else int(raw)
                img_id = int(row["img_id"])
            except ValueError:
                raise BgforgeError(f"{path}:{n}: img_id and split must be integers, got {row['img_id']!r}, {raw!r}") from None
            if split in codes:
                ids.add(img_id)
    return ids


def _coco_foregrounds(p: dict, ctx: BuildContext) -> tuple[list[Sample], dict, list, list]:
    from ..sources.coco import CocoSource, coco_root

    t = BapParams.from_plan(p)
    src = CocoSource(coco_root(ctx.roots.get("coco")), t.coco_split)
    cats, withheld = list(t.categories), list(t.withheld_categories or [])
    both = sorted(set(cats) & set(withheld))
    if both:
        raise BgforgeError(f"categor{'ies' if len(both) > 1 else 'y'} {', '.join(both)} both used and withheld; "
                           "remove them from `categories` or from `withheld_categories`")
    objects = src.objects(cats, min_box=float(t.min_box), include_crowd=bool(t.include_crowd))
    fgs = [Sample(key=o.key, split="train",
                  inputs={"image": str(src.image_path(o)), "segmentation": o.segmentation},
                  meta={"fg_id": o.ann_id, "image_id": o.image_id, "label": cats.index(o.category),
                        "class_name": o.category, **reserved_meta("train", "foreground", split="train"), "source": "coco",
                        "bbox": [round(v, 2) for v in o.bbox], "file_name": o.file_name})
           for o in objects]
    counts = {c: sum(o.category == c for o in objects) for c in cats}
    notes = [f"COCO {src.split}: {len(objects)} objects ({', '.join(f'{c} {n}' for c, n in counts.items())}); "
             f"dropped {src.dropped['small']} boxes under {p['min_box']} px and {src.dropped['crowd']} crowd regions"
             + (f"; withheld: {', '.join(withheld)}" if withheld else "")]
    return fgs, {"coco": str(src.root)}, notes, [str(src.annotations)] + [o.key for o in objects]


def _limit(fgs: list, limit, seed: int, balanced: bool) -> list:
    """At most `limit` foregrounds, a seeded choice kept in id order; class-balanced when asked."""
    return seeded_subset(fgs, limit, rng_for(seed, "foregrounds"), (lambda s: s.meta["label"]) if balanced else None)


def _split_foregrounds(fgs: list, test_fraction, seed: int) -> list:
    """round(f * n) source images (COCO image / CUB image) -> test; all of one image's objects together."""
    if not test_fraction:
        return fgs
    sources = sorted({fg.meta.get("image_id", fg.meta["fg_id"]) for fg in fgs})
    n_test = int(np.round(float(test_fraction) * len(sources)))
    test = set(rng_for(seed, "fg-split").choice(np.array(sources, dtype=object), size=n_test, replace=False).tolist()) \
        if n_test else set()
    for fg in fgs:
        split = "test" if fg.meta.get("image_id", fg.meta["fg_id"]) in test else "train"
        fg.split = split
        fg.meta.update(reserved_meta(split, split=split))
    return fgs


def _check_sizes(params: dict) -> None:
    """The canvas, and exactly one valid way to size the foreground on it."""
    t = BapParams.from_plan(params)
    canvas = t.canvas
    if not isinstance(canvas, int) or canvas < 8:
        raise BgforgeError(f"canvas must be an integer >= 8, got {canvas!r}")
    sr, ms = t.scale_range, t.max_side
    if bool(sr) == bool(ms):
        raise BgforgeError("set exactly one of scale_range ([lo, hi] fraction of the canvas) and max_side (pixels)")
    if sr and not (isinstance(sr, (list, tuple)) and len(sr) == 2 and 0 < float(sr[0]) <= float(sr[1]) <= 1):
        raise BgforgeError(f"scale_range must be [lo, hi] with 0 < lo <= hi <= 1, got {sr!r}")
    if ms and not (isinstance(ms, int) and 0 < ms <= canvas):
        raise BgforgeError(f"max_side must be an integer in [1, canvas={canvas}], got {ms!r}")


def _demo_context(recipe: Recipe) -> BuildContext:
    """`--demo`: the embedded CUB / Places365 trees, a synthetic COCO tree and textures; the recipe itself
    takes the demo's 4 Places365 categories and at most 60 foregrounds, so plan.json records what was built."""
    from ..sources.demo import demo_coco_roots, demo_roots
    from ..sources.synthetic import LAND, WATER

    roots, p = {**demo_roots(), **demo_coco_roots()}, recipe.params
    p.update(places_categories=list(LAND + WATER), max_foregrounds=min(int(BapParams.from_plan(p).max_foregrounds or 60), 60))
    p.update({"texture_dir": str(roots["textures"])} if "texture_dir" in p else {})
    return BuildContext(roots={k: str(v) for k, v in roots.items()})


class BapPlanner(Planner):
    """BAP: foregrounds cropped once (a `Phase`, `phase: foregrounds`), then K anchor + M alignment composites each."""

    METADATA_COLUMNS = ["key", "fg_id", "role", "index", "label", "class_name", "split", "bg_category", "bg_filename",
                        "scale"]
    INSPECT_TABLES = (("class_name", "bg_category"),)
    INSPECT_COUNTS = ("role",)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p = recipe.params
        seed = int(p["seed"])
        if ctx.demo:
            ctx = _demo_context(recipe)
        # backgrounds first: listing folders is cheaper than reading a COCO instances file
        pools, bg_inputs, bg_notes, bg_scanned = background_pools(p, ctx, seed)
        if p["foreground_source"] == "cub":
            fgs, inputs, notes, scanned = _cub_foregrounds(recipe, ctx, seed)
        else:
            fgs, inputs, notes, scanned = _coco_foregrounds(p, ctx)
        t = BapParams.from_params(p)   # after the demo context: it sets places_categories and max_foregrounds
        fgs = _limit(fgs, t.max_foregrounds, seed, bool(t.balance_classes))
        fgs = _split_foregrounds(fgs, t.test_fraction, seed)
        inputs.update(bg_inputs)
        notes += bg_notes

        k, m = int(p["anchors"]), int(p["alignments"])
        per_fg = k + m
        for split, pool in pools.items():
            have = sum(len(files) for _, files in pool)
            if have < per_fg and any(fg.split == split for fg in fgs):
                raise BgforgeError(f"{split} backgrounds: {have} images, but each foreground needs {per_fg} distinct "
                                   "ones (anchors + alignments); add Places365 categories/images or lower them")
        samples = []
        fgs.sort(key=lambda s: (SPLIT_ORDER[s.split], s.key))
        for fg in fgs:
            rng = rng_for(seed, "backgrounds", fg.key)
            picks = draw_backgrounds(rng, pools[fg.split], per_fg)
            lo_hi = t.scale_range
            fractions = rng.uniform(float(lo_hi[0]), float(lo_hi[1]), per_fg) if lo_hi else [None] * per_fg
            for (role, index), (category, name, path), frac in zip(roles(k, m), picks, fractions):
                samples.append(Sample(
                    key=f"{fg.key}-{role}-{index:02d}", split=fg.split, inputs={"background": str(path)},
                    meta={"fg_id": fg.meta["fg_id"], "fg_key": fg.key, "role": role, "index": index,
                          "label": fg.meta["label"], "class_name": fg.meta["class_name"],
                          **reserved_meta(fg.split, role, split=fg.split), "bg_category": category,
                          "bg_filename": name,
                          "scale": None if frac is None else round(float(frac), 6), "source": p["foreground_source"],
                          "recipe": recipe.name, "seed": seed}))
        fg_params = {"phase": "foregrounds", "mask_threshold": int(p["mask_threshold"]), "seed": seed,
                     "image_format": "png", "source": p["foreground_source"]}
        return Planned(samples=samples, inputs=inputs, source_files=scanned + bg_scanned + [s.key for s in samples],
                       notes=notes + [f"{len(fgs)} foregrounds x ({k} anchors + {m} alignments) = {len(samples)} "
                                      "composites"],
                       prerequisites=[Phase("foregrounds", "bap", fg_params, fgs)],
                       shard_multiple=per_fg)  # shard sizes are rounded down to a multiple of this

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..stages import bap

        if BapParams.from_plan(params).phase == "foregrounds":
            return lambda batch: [bap.extract_foreground(s, params) for s in batch]
        from ..sources.key_index import IndexedStore

        # the index the foregrounds phase stored (on_finalize), not a scan of its shards in every worker;
        # its LRU decodes a foreground once for its K + M neighbouring composites
        store = IndexedStore(ctx.phase_dir("foregrounds"))
        encoding = Encoding.of(params)
        return lambda batch: [bap.render_composite(s, store, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        t = BapParams.from_plan(params)
        if t.phase == "foregrounds":
            return
        if t.foreground_source not in ("cub", "coco"):
            raise BgforgeError(f"foreground_source must be cub or coco, got {t.foreground_source!r}")
        for name, low in (("anchors", 1), ("alignments", 0)):
            v = getattr(t, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise BgforgeError(f"{name} must be an integer >= {low}, got {v!r}")
        _check_sizes(params)
        # mask_threshold ([0, 254]) and max_foregrounds (>= 1 or null): params.RULES, checked before this
        tf = t.test_fraction
        if tf is not None and not 0 <= float(tf) < 1:
            raise BgforgeError(f"test_fraction must be in [0, 1) or null, got {tf}")
        if not isinstance(t.balance_classes, bool):
            raise BgforgeError(f"balance_classes must be true or false, got {t.balance_classes!r}")

    def on_finalize(self, out: Path, params: dict) -> dict | None:
        """The foregrounds phase stores its key index, which every composite worker loads; the
        composites' manifest.json says when the leakage split was derived rather than the official one."""
        if BapParams.from_plan(params).phase == "foregrounds":
            from ..sources.key_index import write_key_index

            write_key_index(out)
            return None
        return {"notes": [DERIVED_SPLIT_WARNING]} if derived_leakage_split(params) else None
