"""Waterbirds / Waterbirds-100 (Waterbirds (Sagawa et al. 2020; -100: the BAP paper)): labels, splits, places and backgrounds.

Every count is exact: val = round(val_frac * n_train) CUB train images; within each split and
class exactly round(s * n) (waterbirds) or round((1 - s) * n) (landbirds) get a water place;
backgrounds of a place pool its categories and are handed out without replacement.
"""

from __future__ import annotations

import re

import numpy as np

from ..chain import Chain, WorkerContext
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import WaterbirdsParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..sources.cub import CubSource
from ..sources.places365 import PlacesSource
from .base import BuildContext, Planned, Planner

SPLITS = {"train": 0, "val": 1, "test": 2}
GROUP_NAMES = {0: "landbird_land", 1: "landbird_water", 2: "waterbird_land", 3: "waterbird_water"}


def is_waterbird(species: str, names: list[str], mode: str) -> bool:
    """species like `black_footed_albatross`. `substring` reproduces the reference (Eastern_Towhee
    matches 'tern'); `word` matches whole underscore-separated words only."""
    species = species.lower()
    if mode == "substring":
        return any(n.lower() in species for n in names)
    if mode == "word":
        words = species.split("_")
        for n in names:
            parts = n.lower().split("_")
            if any(words[i:i + len(parts)] == parts for i in range(len(words))):
                return True
        return False
    raise BgforgeError(f"species_match must be 'substring' or 'word', got {mode!r}")


def _choose(rng: np.random.Generator, items: list, k: int) -> set:
    return set(rng.choice(np.array(items, dtype=object), size=k, replace=False).tolist()) if k else set()


def _roots(ctx: BuildContext) -> dict:
    if ctx.demo:
        from ..sources.demo import demo_roots
        return demo_roots()
    return {"cub": ctx.root("cub"),
            "places": ctx.root("places")}


class WaterbirdsPlanner(Planner):
    """Waterbirds / Waterbirds-100 from CUB-200-2011 and Places365."""

    METADATA_COLUMNS = ["img_id", "img_filename", "y", "split", "place", "place_filename"]
    LABEL_FIELD, ATTR_FIELDS = "y", ("place",)
    INSPECT_NAMES = {"y": {"0": "landbird", "1": "waterbird"}, "place": {"0": "land", "1": "water"}}
    SPLIT_CODES = SPLITS
    REFERENCE_PATHS = True  # img_filename: <class_dir>/<file>.jpg, where WILDS and group_DRO read it

    def label_name(self, meta: dict) -> str:
        return "waterbird" if int(meta["y"]) else "landbird"

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p = recipe.params
        seed = int(p["seed"])
        roots = _roots(ctx)
        cub = CubSource(roots["cub"])
        places = PlacesSource(roots["places"])
        images = cub.images()
        if not images:
            raise BgforgeError(f"CUB root {cub.root} lists no images in images.txt")

        y = {im.img_id: int(is_waterbird(im.species, p["waterbird_species"], p["species_match"])) for im in images}
        # Splits: CUB test -> test; round(val_frac * n) of CUB train -> val, chosen by the seed.
        train_ids = [im.img_id for im in images if im.is_train]
        n_val = int(np.round(float(p["val_frac"]) * len(train_ids)))
        val_ids = _choose(rng_for(seed, "val-split"), train_ids, n_val)
        split = {im.img_id: ("test" if not im.is_train else "val" if im.img_id in val_ids else "train") for im in images}

        # Places: exact counts per split and class.
        place = {}
        strength = {"train": float(p["train_strength"]), "val": float(p["val_strength"]), "test": float(p["test_strength"])}
        for s in SPLITS:
            for label in (0, 1):
                ids = [i for i in sorted(y) if split[i] == s and y[i] == label]
                frac = strength[s] if label == 1 else 1 - strength[s]
                water = _choose(rng_for(seed, "place", s, label), ids, int(np.round(frac * len(ids))))
                place.update({i: int(i in water) for i in ids})

        # Backgrounds: pool each place's categories, shuffle, hand out without replacement.
        background, scanned = {}, [str(cub.image_path(im)) for im in images]
        for place_idx, cats in enumerate((p["land_places"], p["water_places"])):
            pool = [f for c in cats for f in places.files(c)]
            scanned.extend(name for name, _ in pool)
            need = [i for i in sorted(place) if place[i] == place_idx]
            if len(pool) < len(need):
                raise BgforgeError(f"too few backgrounds for place {place_idx} ({' + '.join(cats)}): "
                                   f"{len(pool)} images for {len(need)} birds; add images or categories")
            order = rng_for(seed, "backgrounds", place_idx).permutation(len(pool))
            background.update({i: pool[j] for i, j in zip(need, order)})

        fmt = p["image_format"]
        samples = []
        for im in images:
            i = im.img_id
            group = 2 * y[i] + place[i]
            out_name = im.rel_path if fmt == "jpg" else im.rel_path.rsplit(".", 1)[0] + ".png"
            samples.append(Sample(
                key=f"cub_{i:06d}", split=split[i],
                inputs={"image": str(cub.image_path(im)), "mask": str(cub.mask_path(im)),
                        "background": str(background[i][1])},
                meta={"img_id": i, "img_filename": out_name, "y": y[i],
                      **reserved_meta(split[i], group, GROUP_NAMES[group], split=SPLITS[split[i]]),
                      "place": place[i], "place_filename": background[i][0], "species": im.class_dir,
                      "recipe": recipe.name, "seed": seed}))
        order = {s: k for k, s in enumerate(SPLITS)}
        samples.sort(key=lambda s: (order[s.split], s.meta["img_id"]))
        notes = [f"Places365 layout: {places.layout}"]
        return Planned(samples=samples, inputs={"cub": str(cub.root), "places": str(places.root)},
                       source_files=scanned, notes=notes)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        """The stage chain of one worker: read bird+mask+background, composite, encode."""
        from ..io.encoding import Encoding
        from ..stages.waterbirds import render

        encoding = Encoding.of(params)
        return lambda batch: [render(s, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        resampling = WaterbirdsParams.from_plan(params).resampling   # RULES' union also has HSI's bicubic
        if resampling not in ("lanczos", "fast"):
            raise BgforgeError(f"resampling must be lanczos (reference) or fast, got {resampling!r}")
        # output_size, image_format and the strengths are checked by params.RULES, as in every recipe
        for name in params["waterbird_species"]:
            if not re.match(r"^[A-Za-z_]+$", name):
                raise BgforgeError(f"waterbird_species entry {name!r} should be a species word like 'Gull'")
