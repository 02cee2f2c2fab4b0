"""`bgforge variants`: the eight ImageNet-9 background-challenge variants of a labelled dataset.

Input: an image folder with a manifest (label, and mask and/or boxes per image) or the shards
of an earlier stage (e.g. `bgforge segment`, whose mask.png and boxes are used). Each variant
is written as its own split (shards `<variant>-NNNNN.tar`), grouped by class; every sample's
json says which variant, which source image, and for the mixed variants which background
image (and its class) it was built from. See docs/variants.md.

`construction: reference` (default): the images are built as the challenge's construction code
does (stages/variants_reference.py): images with one box, filtered at planning by its box rules,
mixed backgrounds drawn among the kept images of a class, the image itself included, and JPEG at
quality 75. `construction: bgforge`: the rules below, masks or boxes as given.

Mixed backgrounds are drawn per sample from rng_for(seed, key, variant) among the images of
the same source split: mixed_same from the image's own class (another image when the class
has one), mixed_rand from a class drawn uniformly (then an image, never the image itself),
mixed_next from class (y + 1) mod C in the dataset's class index order (`class_order`): the
recipe's `class_order` (a list, or a file with one label per line) when given; else the
labels' own integer order; else ImageNet-9's index order when every label names an IN-9 class
(0 dog, 1 bird, ... 8 fish); else the labels sorted as text (IN-9 folder names 00_dog ... 08_fish
sort right). The paper: alphabetical order is not the reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..chain import Chain, WorkerContext
from ..choices import VARIANT_CONSTRUCTIONS, VARIANTS
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..recipe import Recipe
from ..recipe_params import VariantsParams
from ..records import Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..sources.inputs import input_names, load_input
from ..stages.variants import MIXED
from .base import BuildContext, Planned, Planner

# The ImageNet-9 background challenge's class indices (Xiao et al.).
IN9_CLASSES = ("dog", "bird", "wheeled vehicle", "reptile", "carnivore", "insect", "musical instrument", "primate",
               "fish")


# The same classes as backgrounds_challenge's in9_classes.txt spells them (Dog, Bird, Vehicle, ...)
IN9_SHORT = {"vehicle": "wheeled vehicle", "instrument": "musical instrument"}


def _in9_name(label: str) -> str:
    """A label as an IN-9 class name: `Vehicle`, `wheeled_vehicle` and `02_wheeled_vehicle` all name one class."""
    name = label.strip().lower().replace("_", " ")
    name = name.split(" ", 1)[1] if name[:2].isdigit() and " " in name else name
    return IN9_SHORT.get(name, name)


def read_class_order(spec: str | list | None) -> list[str] | None:
    """The recipe's `class_order`: a list of labels, or a file with one label per line (None: not given)."""
    if spec in (None, "", []):
        return None
    if isinstance(spec, (list, tuple)):
        return [str(v) for v in spec]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise BgforgeError(f"class_order {spec}: no such file (one label per line, in class index order)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def class_order(labels: Iterable, given: list[str] | None = None) -> list[str]:
    """Distinct labels as strings in class index order (see the module docstring for the rule)."""
    names = sorted({str(v) for v in labels})
    if given is not None:
        missing = [n for n in names if n not in given]
        if missing:
            raise BgforgeError(f"class_order lacks the label(s) {', '.join(missing[:5])}; list every label once")
        return [str(c) for c in given if str(c) in names]
    try:
        return sorted(names, key=int)
    except ValueError:
        pass
    if all(_in9_name(n) in IN9_CLASSES for n in names):
        return sorted(names, key=lambda n: IN9_CLASSES.index(_in9_name(n)))
    return names


def labelled_input(params: dict, class_order_file: str | None = None) -> tuple[list[Sample], list[str]]:
    """The input samples (folder + manifest, or shards), each with a label, and the class list in index order
    (`class_order_file`: VariantsParams.class_order; AutoBackSwap has none)."""
    samples = load_input(params)
    unlabelled = [s.key for s in samples if s.meta.get("label") in (None, "")]
    if unlabelled:
        raise BgforgeError(f"{len(unlabelled)} input image(s) have no label (e.g. {unlabelled[0]}); give every image "
                           "a `label` in the manifest")
    return samples, class_order((s.meta["label"] for s in samples), read_class_order(class_order_file))


def parse_variants(spec: str | list[str] | None) -> list[str]:
    """`all`, a comma-separated string or a list -> variant names in the canonical order."""
    if spec in (None, "", "all"):
        return list(VARIANTS)
    names = [v.strip() for v in (spec.split(",") if isinstance(spec, str) else spec) if str(v).strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise BgforgeError(f"unknown variant(s) {', '.join(unknown) or '(none given)'}; choose from "
                           f"{', '.join(VARIANTS)} or all")
    return [v for v in VARIANTS if v in names]


REFERENCE_JPEG_QUALITY = 75  # main.py saves with PIL's save(): quality 75


def _pick(pool: list[Sample], exclude: str | None, rng: np.random.Generator) -> Sample:
    """A uniform pick from pool, never `exclude` unless it is the only member (None: any member)."""
    choices = [s for s in pool if s.key != exclude] or pool
    return choices[int(rng.integers(len(choices)))]


def _image_size(sample: Sample) -> tuple[int, int] | None:
    """(width, height) from the image file's header, or None (not a file: the stage checks it)."""
    from PIL import Image

    path = sample.inputs.get("image")
    if not isinstance(path, str):
        return None
    try:
        with Image.open(path) as im:
            return im.size
    except OSError:
        return None  # the stage reports an unreadable image


def reference_filter(samples: list[Sample]) -> tuple[list[Sample], dict[str, list[str]]]:
    """main.py's `is_good_image` at planning (stages/variants_reference.filter_problem): the kept samples
    and {reason: keys} of the dropped ones. Images whose size is unknown here are checked by the stage."""
    from ..stages.variants_reference import filter_problem

    kept, dropped = [], {}
    for s in samples:
        boxes = s.meta.get("boxes")
        size = _image_size(s) if boxes is not None and len(boxes) == 1 else None
        problem = filter_problem(*size, boxes) if size else (
            None if boxes is not None and len(boxes) == 1 else filter_problem(1, 1, boxes))
        if problem:
            reason = ("not exactly one box" if "exactly one box" in problem else
                      "box over 90 % of the 224 centre crop" if "covers" in problem else
                      "under half of the box inside the 224 centre crop")
            dropped.setdefault(reason, []).append(s.key)
        else:
            kept.append(s)
    return kept, dropped


def background_for(variant: str, src: Sample, pools: dict, classes: list[str], seed: int,
                   include_self: bool = False) -> tuple[str, Sample | None]:
    """(class, image) whose only_bg_t a mixed variant of `src` uses; image is None when the class has none.
    `include_self`: the reference's pick (any image of the class's folder, the image itself included)."""
    label = str(src.meta["label"])
    rng = rng_for(seed, src.key, variant)
    present = [c for c in classes if pools.get((src.split, c))]
    if variant == "mixed_same":
        cls = label
    elif variant == "mixed_rand":
        cls = present[int(rng.integers(len(present)))]
    else:
        cls = classes[(classes.index(label) + 1) % len(classes)]
    pool = pools.get((src.split, cls))
    return cls, (_pick(pool, None if include_self else src.key, rng) if pool else None)


class VariantsPlanner(Planner):
    """The ImageNet-9 background-challenge variants, each its own split."""

    TARGET_FIELD = "class_index"  # the `cls` member
    METADATA_COLUMNS = ["key", "variant", "label", "class_index", "source_key", "source_split", "bg_key", "bg_label"]
    INSPECT_TABLES = (("label", "bg_label"),)   # mixed_rand / mixed_next: foregrounds on other classes' backgrounds

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        p, t = recipe.params, VariantsParams.from_params(recipe.params)
        seed = int(t.seed)
        variants = parse_variants(t.variants)
        samples, classes = labelled_input(p, t.class_order)
        construction = t.construction
        dropped: dict = {}
        if construction == "reference":
            samples, dropped = reference_filter(samples)
        pools = {}
        for s in sorted(samples, key=lambda s: s.key):
            pools.setdefault((s.split, str(s.meta["label"])), []).append(s)
        out, skipped = [], []
        for variant in variants:
            for src in samples:
                label = str(src.meta["label"])
                inputs = dict(src.inputs)
                meta = {**src.meta, "variant": variant, "label": src.meta["label"], "class_index": classes.index(label),
                        "source_key": src.key, "source_split": src.split, **reserved_meta(variant, label),
                        "bg_key": src.key, "bg_label": src.meta["label"], "seed": seed, "construction": construction}
                if variant in MIXED:
                    bg_class, bg = background_for(variant, src, pools, classes, seed, construction == "reference")
                    if bg is None:
                        skipped.append({"key": f"{src.key}-{variant}", "stage": "plan", "error_type": "NoBackground",
                                        "message": f"no image of class {bg_class} in split {src.split} "
                                                   "to take a background from"})
                        continue
                    inputs.update(bg=dict(bg.inputs), bg_boxes=bg.meta.get("boxes"))
                    meta.update(bg_key=bg.key, bg_label=bg.meta["label"])
                out.append(Sample(key=f"{src.key}-{variant}", split=variant, inputs=inputs, meta=meta))
        src_dir = Path(t.input).resolve()
        return Planned(samples=out, inputs={"input": str(src_dir), "manifest": t.manifest},
                       source_files=input_names(samples),
                       notes=[f"{len(samples)} images, {len(classes)} classes, variants: {', '.join(variants)}",
                              f"class order (mixed_next: y -> y + 1): {', '.join(classes)}",
                              f"construction: {construction}"] +
                             [f"dropped as the reference does ({len(keys)}): {why}, e.g. {keys[0]}"
                              for why, keys in sorted(dropped.items())],
                       skipped=skipped)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..stages.variants import render

        encoding = Encoding.of(*encoding_params(params))
        return lambda batch: [render(s, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        t = VariantsParams.from_plan(params)
        parse_variants(t.variants)
        if t.construction not in VARIANT_CONSTRUCTIONS:
            raise BgforgeError(f"construction must be reference or bgforge, got {t.construction!r}")


def encoding_params(params: dict) -> tuple[dict, str]:
    """The reference saves JPEG at PIL's default quality (75); bgforge's default is PNG."""
    t = VariantsParams.from_plan(params)
    if t.construction == "reference":
        return {**params, "jpeg_quality": t.jpeg_quality or REFERENCE_JPEG_QUALITY}, "jpg"
    return params, "png"
