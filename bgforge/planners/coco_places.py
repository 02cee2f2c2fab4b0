"""COCO-on-Places (Ahmed et al., ICLR 2021; Faruk-Ahmed/predictive_group_invariance `coco_places.py`).

Nine COCO classes, each tied to one Places365 category. Per class, the COCO train2017 images
holding it (in image-id order) whose largest instance of the class has `area` >= 10,000 give
800 train, 100 val and 100 test objects. Each object's hard mask composites it at 64 x 64 onto:

  train, val_id, test_id   its class's place (`biased`), or with probability 1 - strength one of
                           the unbiased places (`unbiased`)
  val_ood, test_ood        a held-out unbiased place (validation / test lists)
  val_sg, test_sg          another class's place, drawn per sample (`sg`: systematic generalisation)

`backgrounds: reference` indexes the shuffled place lists with the reference's formulas
(which reuse train backgrounds in val and test, and the same OOD backgrounds for every class);
`disjoint` hands each list out without replacement. docs/fidelity.md tables every rule.
"""

from __future__ import annotations

from ..chain import Chain, WorkerContext
from ..choices import COCO_PLACES_BACKGROUNDS, PLACE_DRAWS
from ..errors import BgforgeError
from ..recipe import Recipe
from ..recipe_params import CocoPlacesParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..sources.coco import CocoSource
from ..sources.places365 import PlacesSource
from .base import BuildContext, Planned, Planner

SPLITS = ("train", "val_id", "val_ood", "val_sg", "test_id", "test_ood", "test_sg")


def qualifying(coco: CocoSource, classes: list[str], min_area: float) -> dict[str, list]:
    """Per class, in image-id order, the largest instance (by `area`, crowds included, the first on a
    tie) of the class in each image holding it, where that area is at least min_area."""
    best: dict[str, dict[int, object]] = {c: {} for c in classes}
    for obj in coco.objects(classes, include_crowd=True):
        current = best[obj.category].get(obj.image_id)
        if current is None or obj.area > current.area:
            best[obj.category][obj.image_id] = obj
    return {c: [best[c][i] for i in sorted(best[c]) if best[c][i].area >= min_area] for c in classes}


def _draw_unbiased(seed: int, split: str, c: int, n: int, strength: float, mode: str) -> list[bool]:
    """Which of a class's n samples of a split get an unbiased place: exactly round((1 - s) n), or the
    reference's coin `np.random.random() > s` per sample."""
    rng = rng_for(seed, "unbiased", split, c)
    if mode == "bernoulli":
        return [bool(v) for v in rng.random(n) > strength]
    chosen = set(rng.choice(n, size=int(round((1.0 - strength) * n)), replace=False).tolist())
    return [k in chosen for k in range(n)]


class _Pools:
    """The shuffled place lists and where each sample's background comes from."""

    def __init__(self, places: PlacesSource, p: dict, seed: int):
        self.lists, self.scanned = {}, []
        for name, cats in (("unbiased", p["unbiased_places"]), ("val_ood", p["val_ood_places"]),
                           ("test_ood", p["test_ood_places"])):
            self.lists[name] = self._shuffled(places, cats, seed, name)
        for c, cat in enumerate(p["biased_places"]):
            self.lists[c] = self._shuffled(places, [cat], seed, f"biased-{c}")
        self.cursor: dict = {}

    def _shuffled(self, places: PlacesSource, cats: list[str], seed: int, name: str) -> list:
        files = [f for cat in cats for f in places.files(cat)]
        self.scanned.extend(path for _, path in files)
        order = rng_for(seed, "places", name).permutation(len(files))
        return [files[i] for i in order]

    def take(self, pool, index: int | None = None) -> tuple[int, tuple]:
        """(index, (place_filename, path)): `index`, or the pool's next unused one."""
        if index is None:
            index = self.cursor.get(pool, 0)
            self.cursor[pool] = index + 1
        files = self.lists[pool]
        if index >= len(files):
            name = f"biased places of class {pool}" if isinstance(pool, int) else f"{pool} places"
            raise BgforgeError(f"too few {name}: {len(files)} images, index {index} needed; add images or categories")
        return index, files[index]


def reference_index(split: str, unbiased: bool, c: int, k: int, sizes: tuple, s: float) -> int:
    """coco_places.py's list index for position k of class c (0-based) in `split` (val_* and test_*
    use the per-class counter j; the reference's j also counts skipped images, here it does not)."""
    n_tr, n_val, _ = sizes
    tr_s, tr_si = n_tr * (c + 1), n_tr            # counters once class c's train loop ended
    val_s, val_si = n_val * (c + 1), n_val
    if split == "train":
        return n_tr * c + k if unbiased else k                                   # :297, :300
    if split == "val_id":
        return k + int((1.0 - s) * tr_s) if unbiased else k + int(s * tr_si)     # :357, :360
    if split == "val_ood":
        return n_val * c + k                                                     # :371
    if split == "val_sg":
        return k + int(s * tr_si)                                                # :383
    if split == "test_id":
        te_s = sizes[2] * c + k
        return te_s + int((1.0 - s) * (tr_s + val_s)) if unbiased else k + int(s * (tr_si + val_si))  # :429, :432
    if split == "test_ood":
        return k                                                                 # :444
    return k + int(s * (tr_si + val_si))                                         # test_sg :455


def _roots(ctx: BuildContext) -> dict:
    if ctx.demo:
        from ..sources.synthetic_coco_places import demo_coco_places_roots
        return demo_coco_places_roots()
    return {"coco": ctx.root("coco"),
            "places": ctx.root("places")}


class CocoPlacesPlanner(Planner):
    """COCO objects on class-tied Places365 scenes: train / val / test, with ood and sg test sets."""

    METADATA_COLUMNS = ["key", "label", "class_name", "split", "place_kind", "place_class", "place_filename",
                        "place_index", "image_id", "ann_id", "coco_file"]
    LABEL_FIELD, ATTR_FIELDS = "label", ("place_class",)
    INSPECT_TABLES = (("class_name", "place_kind"),)
    INSPECT_COUNTS = ("place_category",)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p = recipe.params
        seed, s, classes = int(p["seed"]), float(p["strength"]), list(p["classes"])
        sizes = tuple(int(v) for v in (p["demo_sizes"] if ctx.demo else (p["num_train"], p["num_val"], p["num_test"])))
        roots = _roots(ctx)
        coco, places = CocoSource(roots["coco"], "train2017"), PlacesSource(roots["places"])
        objects = qualifying(coco, classes, float(p["min_area"]))
        for name in classes:
            if len(objects[name]) < sum(sizes):
                raise BgforgeError(f"COCO class {name!r} has {len(objects[name])} images whose largest instance has "
                                   f"area >= {p['min_area']:g}; {sum(sizes)} needed ({' + '.join(map(str, sizes))})")
        pools = _Pools(places, p, seed)
        reference = p["backgrounds"] == "reference"
        # disjoint: every class's ID draws first, so the sg draws from its list follow them
        plans = {}
        for c, name in enumerate(classes):
            objs = objects[name]
            parts = {"train": objs[:sizes[0]], "val": objs[sizes[0]:sizes[0] + sizes[1]],
                     "test": objs[sizes[0] + sizes[1]:sum(sizes)]}
            for split, objs_k in parts.items():
                sid = split if split == "train" else f"{split}_id"
                flags = _draw_unbiased(seed, sid, c, len(objs_k), s, p["place_draw"])
                for k, (obj, unbiased) in enumerate(zip(objs_k, flags)):
                    pool = "unbiased" if unbiased else c
                    idx = reference_index(sid, unbiased, c, k, sizes, s) if reference else None
                    plans[(sid, c, k)] = (obj, "unbiased" if unbiased else "biased", c if not unbiased else -1,
                                          pools.take(pool, idx))
        for c, name in enumerate(classes):
            for split, offset in (("val", sizes[0]), ("test", sizes[0] + sizes[1])):
                n = sizes[1] if split == "val" else sizes[2]
                for k, obj in enumerate(objects[name][offset:offset + n]):
                    idx = reference_index(f"{split}_ood", True, c, k, sizes, s) if reference else None
                    plans[(f"{split}_ood", c, k)] = (obj, "ood", -1, pools.take(f"{split}_ood", idx))
                    others = [o for o in range(len(classes)) if o != c]
                    other = others[int(rng_for(seed, "sg", split, c, k).integers(len(others)))]
                    idx = reference_index(f"{split}_sg", False, c, k, sizes, s) if reference else None
                    plans[(f"{split}_sg", c, k)] = (obj, "sg", other, pools.take(other, idx))
        samples = []
        order = {sp: i for i, sp in enumerate(SPLITS)}
        for (split, c, k), (obj, kind, place_class, (index, (place_name, place_path))) in sorted(
                plans.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
            samples.append(Sample(
                key=f"{split}_{classes[c]}_{k:04d}", split=split,
                inputs={"image": str(coco.image_path(obj)), "segmentation": obj.segmentation,
                        "image_size": [obj.width, obj.height], "background": place_path},
                meta={"label": c, "class_name": classes[c], **reserved_meta(split, f"{classes[c]}/{kind}"), "place_kind": kind,
                      "place_class": place_class, "place_filename": place_name, "place_index": index,
                      "place_category": place_name.rsplit("/", 1)[0], "image_id": obj.image_id,
                      "ann_id": obj.ann_id, "area": obj.area, "coco_file": obj.file_name,
                      "recipe": recipe.name, "seed": seed}))
        notes = [f"{name}: {len(objects[name])} qualifying images" for name in classes]
        return Planned(samples=samples, inputs={"coco": str(coco.root), "places": str(places.root)},
                       source_files=[str(coco.annotations)] + pools.scanned, notes=notes)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..io.encoding import Encoding
        from ..stages.coco_places import render

        encoding = Encoding.of(params, default_format="png")
        return lambda batch: [render(s, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        t = CocoPlacesParams.from_plan(params)
        if t.place_draw not in PLACE_DRAWS:
            raise BgforgeError(f"place_draw must be exact or bernoulli, got {t.place_draw!r}")
        if t.backgrounds not in COCO_PLACES_BACKGROUNDS:
            raise BgforgeError(f"backgrounds must be reference or disjoint, got {t.backgrounds!r}")
        if len(params["biased_places"]) != len(params["classes"]):
            raise BgforgeError(f"biased_places lists {len(params['biased_places'])} categories for "
                               f"{len(params['classes'])} classes; give one place per class, in class order")
        if not 0 <= float(params["strength"]) <= 1:
            raise BgforgeError(f"strength must be a fraction in [0, 1], got {params['strength']!r}")
