"""UrbanCars (Li et al., CVPR 2023, "A Whac-A-Mole Dilemma"): two spurious cues at once.

A Stanford Cars car (urban or country body type: the label y) is pasted on a Places365
background (urban or country scene) with a co-occurring LVIS object (urban: fireplug, stop
sign, ...; country: cow, horse, sheep). group = 4·y + 2·bg + co_obj (0 urban, 1 country).

As the reference (`create_datasets/urbancars/gen_urbancars.py`) draws them: each pool (cars of
one type; backgrounds of one scene type; co-objects of one type) is one list shuffled with
`random.Random(seed)`; train, val and test take the disjoint index ranges [0, N_train),
[N_train, N_train + N_val), ...; within a split the 8 compositions, in the reference's loop
order (car, background, co-object), take int(r_bg · r_co · N) consecutive items of each pool
they use (at least 1). docs/fidelity.md tables every rule with the reference's file and line.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from ..chain import Chain, WorkerContext
from ..choices import CAR_MASKS
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import UrbanCarsParams
from ..records import Sample
from ..sample_meta import reserved_meta
from .base import BuildContext, Planned, Planner

TYPES = ("urban", "country")   # index 0 / 1 of every attribute
SPLITS = ("train", "val", "test")
CUES = ("bg_only", "co_obj_only", "car_only")
# Whac-A-Mole's I-Avg weighs the four alignment cells by their train frequency at 0.95 / 0.95


def group_name(y: int, bg: int, co: int) -> str:
    return f"{TYPES[y]}_car-{TYPES[bg]}_bg-{TYPES[co]}_obj"


def group_names() -> list[str]:
    return [group_name(y, bg, co) for y in (0, 1) for bg in (0, 1) for co in (0, 1)]


def composition_counts(n: int, r_bg: float, r_co: float) -> dict[tuple, int]:
    """Images per (car, bg, co_obj) composition of a split of n per car type: int(r_bg·r_co·n),
    the aligned ratio r where an attribute equals the car type, 1 − r where not, at least 1."""
    counts = {}
    for y in (0, 1):
        for bg in (0, 1):
            for co in (0, 1):
                ratio = (r_bg if bg == y else 1 - r_bg) * (r_co if co == y else 1 - r_co)
                counts[(y, bg, co)] = max(1, int(ratio * n))
    return counts


def cell_of(y: int, bg: int, co: int) -> str:
    return {(True, True): "both_aligned", (False, True): "bg_misaligned", (True, False): "co_obj_misaligned",
            (False, False): "both_misaligned"}[(bg == y, co == y)]


def _shuffled(items: list, seed: int) -> list:
    items = list(items)
    random.Random(seed).shuffle(items)  # the reference's random.Random(0).shuffle of each pool's indices
    return items


class UrbanCarsPlanner(Planner):
    METADATA_COLUMNS = ["key", "y", "bg", "co_obj", "group", "split", "cue", "car_class", "car_file", "bg_file",
                        "co_obj_category", "co_obj_ann_id"]
    LABEL_FIELD, ATTR_FIELDS = "y", ("bg", "co_obj")
    INSPECT_TABLES = (("y", "co_obj"), ("bg", "co_obj"))   # the second cue, against the label and the first
    INSPECT_COUNTS = ("cue",)
    INSPECT_NAMES = {f: {"0": "urban", "1": "country"} for f in ("y", "bg", "co_obj")}
    TARGET_FIELD = "y"
    EVAL_BREAKDOWNS = ("cell", "bg", "co_obj")

    def label_name(self, meta: dict) -> str:
        return f"{TYPES[int(meta['y'])]}_car"

    def validate(self, params: dict) -> None:
        for k in ("train_bg_ratio", "train_co_obj_ratio", "eval_ratio"):
            if not 0 <= float(params[k]) <= 1:
                raise BgforgeError(f"{k} must be in [0, 1], got {params[k]}")
        t = UrbanCarsParams.from_plan(params)
        if t.car_masks not in CAR_MASKS:
            raise BgforgeError(f"car_masks must be one of {', '.join(CAR_MASKS)}, got {t.car_masks!r}")
        unknown = [c for c in t.cue_sets or [] if c not in CUES]
        if unknown:
            raise BgforgeError(f"cue_sets: unknown {', '.join(unknown)}; choose from {', '.join(CUES)}")
        from ..backends.registry import box_prompted

        if params["segmenter"] not in box_prompted():  # the cars are cut out from their annotated boxes
            raise BgforgeError(f"segmenter must be one of {', '.join(box_prompted())} (grabcut on a CPU, sam on a GPU), "
                               f"got {params['segmenter']!r}")

    def loads_models(self, params: dict) -> bool:
        from ..backends.registry import uses_torch

        return uses_torch(UrbanCarsParams.from_plan(params).segmenter)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        from ..sources import urbancars_reference as ref
        from ..sources.lvis import LvisSource
        from ..sources.stanford_cars import StanfordCarsSource

        p, typed = recipe.params, UrbanCarsParams.from_params(recipe.params)
        seed = int(p["seed"])
        roots = _roots(ctx)
        metadata = ref.check_metadata(typed.reference_metadata or "")
        cars_src = StanfordCarsSource(roots["cars"])
        lvis = LvisSource(roots["lvis"], roots["coco"])
        counts = p["demo_sizes"] if ctx.demo else (p["num_train"], p["num_val"], p["num_test"])
        sizes = dict(zip(SPLITS, (int(n) for n in counts)))
        total = sum(sizes.values())

        car_type = _body_types(cars_src.class_names(), p, metadata)
        images = cars_src.images()
        if metadata is not None:  # the reference's shipped name lists of the cars it keeps
            kept = {split: ref.kept_cars(metadata, split) for split in ("train", "test")}
            images = [im for im in images if im.fname in kept[im.split]]
        cars = {t: [im for im in images if car_type[im.class_index] == t] for t in (0, 1)}
        backgrounds, places_root, places_layout = _backgrounds(roots["places"], p, metadata)
        co_objects = {0: lvis.objects(p["urban_co_objects"], "bbox", float(p["urban_co_obj_min_box_area"])),
                      1: lvis.objects(p["country_co_objects"], "mask", float(p["country_co_obj_min_mask_area"]))}
        pools = {"car": cars, "bg": backgrounds, "co_obj": co_objects}
        for kind, by_type in pools.items():
            for t, pool in by_type.items():
                if len(pool) < total:
                    raise BgforgeError(f"too few {TYPES[t]} {kind.replace('_', '-')} images: {len(pool)} for "
                                       f"num_train + num_val + num_test = {total}; lower them (--set num_train=...) "
                                       "or add images")
        order = {kind: {t: _shuffled(range(len(pool)), seed) for t, pool in by_type.items()}
                 for kind, by_type in pools.items()}
        masks = _car_masks(cars_src.root, p)
        samples = []
        start = 0
        for split in SPLITS:
            n = sizes[split]
            r_bg, r_co = ((float(p["train_bg_ratio"]), float(p["train_co_obj_ratio"])) if split == "train"
                          else (float(p["eval_ratio"]),) * 2)
            taken = {(kind, t): start for kind in pools for t in (0, 1)}
            for (y, bg, co), count in composition_counts(n, r_bg, r_co).items():
                for i in range(count):
                    parts = {}
                    for kind, t in (("car", y), ("bg", bg), ("co_obj", co)):
                        at = taken[(kind, t)]
                        if at >= start + n:
                            raise BgforgeError(f"split {split}: the {TYPES[t]} {kind} pool's {n} images are used up "
                                               "(ratios whose counts sum past N)")
                        parts[kind] = pools[kind][t][order[kind][t][at]]
                        taken[(kind, t)] = at + 1
                    samples.append(_sample(split, y, bg, co, i, parts, recipe, seed, p, masks(parts["car"]),
                                           (r_bg, r_co)))
            start += n
        for cue in typed.cue_sets or []:
            samples += [_cue_sample(s, cue) for s in samples if s.split == "test"]
        files = ([s.inputs["car"] for s in samples] + [s.inputs["background"] for s in samples]
                 + [s.inputs["car_mask"] for s in samples if s.inputs.get("car_mask")])
        by_file = sum(1 for s in samples if s.inputs.get("car_mask") and s.meta["cue"] == "all")
        return Planned(samples=samples, source_files=sorted(set(files)),
                       inputs={"cars": str(cars_src.root), "places": str(places_root), "lvis": str(lvis.root),
                               "coco": str(lvis.coco)},
                       notes=[f"Stanford Cars layout: {cars_src.layout}; Places365 layout: {places_layout}",
                              f"car masks: {by_file} from the reference's mask files (<cars root>/mask/cars_<split>/), "
                              f"{sum(1 for s in samples if s.meta['cue'] == 'all') - by_file} by the "
                              f"{p['segmenter']} segmenter"])

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..stages.urbancars import chain

        return chain(params, ctx)

def _sample(split, y, bg, co, i, parts, recipe, seed, p, car_mask, ratios) -> Sample:
    car, (bg_name, bg_path), obj = parts["car"], parts["bg"], parts["co_obj"]
    group = 4 * y + 2 * bg + co
    key = f"{split}-{group_name(y, bg, co)}-{i:05d}".replace("_", "-")
    inputs = {"car": car.path, "car_box": list(car.box), "background": bg_path, "co_obj": obj.image_path,
              "co_obj_segmentation": obj.segmentation, "co_obj_size": [obj.height, obj.width]}
    if car_mask:
        inputs["car_mask"] = car_mask
    return Sample(key=key, split=split, inputs=inputs,
                  meta={"y": y, "bg": bg, "co_obj": co, **reserved_meta(split, group, group_name(y, bg, co), split=split),
                        "cell": cell_of(y, bg, co), "cue": "all",
                        "car_class": car.class_name, "car_file": f"cars_{car.split}/{car.fname}",
                        "bg_file": bg_name, "co_obj_category": obj.category, "co_obj_ann_id": obj.ann_id,
                        "recipe": recipe.name, "seed": seed,
                        # where the reference writes it: bg-<r>_co_occur_obj-<r>/<split>/obj-.../<NNN>.jpg
                        "composition_index": i, "bg_ratio": float(ratios[0]), "co_obj_ratio": float(ratios[1])})


def _cue_sample(s: Sample, cue: str) -> Sample:
    split = f"test_{cue}"
    return Sample(key=f"{s.key}-{cue.replace('_', '-')}", split=split, inputs=s.inputs,
                  meta={**s.meta, "cue": cue, **reserved_meta(split, split=split)})


def _body_types(class_names: list[str], p: dict, metadata) -> list[int]:
    """0 urban / 1 country per class. `body_types_file` (or `reference_metadata`'s
    stanford_cars/body_type.json): the reference's 196 flags in cars_meta order, exact; else the
    class name's body type word (a heuristic; docs/fidelity.md lists the classes it labels otherwise)."""
    from ..sources.urbancars_reference import body_types

    given = UrbanCarsParams.from_plan(p).body_types_file
    path = given or (str(metadata / "stanford_cars" / "body_type.json") if metadata else "")
    if path:
        return body_types(Path(path), len(class_names))
    words = {w.lower() for w in p["country_body_types"]}
    return [int(bool(words & {t.lower() for t in re.findall(r"[A-Za-z]+", name)})) for name in class_names]


def _backgrounds(root, p: dict, metadata):
    """type -> [(name, path)], the Places root used and its layout's name: the easyformat train/ + val/
    the reference reads when the root holds it (preferred), else one split of the layout found."""
    from ..sources import urbancars_reference as ref
    from ..sources.places365 import PlacesSource

    base = ref.reference_places_base(root)
    if base is not None:
        return ({t: [f for c in p[f"{TYPES[t]}_backgrounds"] for f in ref.reference_places_files(base, c, metadata)]
                 for t in (0, 1)}, base, "easyformat train + val (the reference's)")
    if metadata is not None:
        raise BgforgeError(f"reference_metadata's Places name lists need the easyformat layout the reference reads "
                           f"(train/ and val/ under {root}, or under its places/ or places365_standard/)")
    places = PlacesSource(root)
    return {t: [f for c in p[f"{TYPES[t]}_backgrounds"] for f in places.files(c)] for t in (0, 1)}, places.root, \
        places.layout


def _car_masks(cars_root, p: dict):
    """car -> the reference's mask file for it, or None (then the segmenter cuts it from its box).
    car_masks: auto (a car's file when present), files (every drawn car must have one), segmenter."""
    from ..sources.urbancars_reference import car_mask_files, car_mask_path

    mode = UrbanCarsParams.from_plan(p).car_masks
    present = car_mask_files(cars_root) if mode != "segmenter" else {"train": set(), "test": set()}

    def mask_of(car):
        name = car.fname.rsplit(".", 1)[0] + "_mask.png"
        if name in present[car.split]:
            return car_mask_path(cars_root, car.split, car.fname)
        if mode == "files":
            raise BgforgeError(f"car_masks: files, but {car_mask_path(cars_root, car.split, car.fname)} is missing; "
                               "run the reference's predict_car_mask.py or use --set car_masks=auto")
        return None

    return mask_of


def _roots(ctx: BuildContext) -> dict:
    if ctx.demo:
        from ..sources.demo import demo_urbancars_roots

        return demo_urbancars_roots()
    return {"cars": ctx.root("cars"),
            "places": ctx.root("places"),
            "lvis": ctx.root("lvis"),
            "coco": ctx.root("coco")}
