"""ForNet (ForAug, Nauen et al., arXiv 2503.09399; tobna/ForAug): ImageNet foregrounds recombined with
inpainted backgrounds.

Two phases, as HSI's: first every source image is split into pieces once (OUT/pieces: the object mask,
found from the class name and its WordNet parents, and the background with the object inpainted away);
then each composite pastes a foreground on a background (stages/fornet.py, ForAug's `recombine`).
`fornet` makes training composites with ForAug's knobs; `fornet-eval` (fornet_eval.py) the grid of
position nonant x size factor x background source that its bias metrics read.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import ClassVar

from ..chain import Chain, WorkerContext
from ..choices import BACKGROUND_COMBINATIONS, SIZE_MODES
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..recipe import Recipe
from ..recipe_params import FornetCommon, FornetParams
from ..records import LazySamples, Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from .base import BuildContext, Phase, Planned, Planner

log = logging.getLogger(__name__)

SPLIT_ORDER = {"train": 0, "val": 1}
DEMO_CLASSES = 3
DEMO_IMAGES = 2


def resolve_backends(t: FornetCommon) -> tuple[str, str]:
    """`auto`: grounded-sam + LaMa on a GPU machine (ForAug's GroundingDINO -> SAM, LaMa), box + Telea elsewhere."""
    seg, inp = t.segmenter, t.inpainter
    if "auto" in (seg, inp):
        import torch

        gpu = torch.cuda.is_available()
        seg = ("grounded-sam" if gpu else "box") if seg == "auto" else seg
        inp = ("lama" if gpu else "telea") if inp == "auto" else inp
    return seg, inp


def _wordnet(t: FornetCommon, seg: str):
    from ..backends import registry
    from ..sources import wordnet

    if not t.wordnet:
        if seg not in registry.box_prompted():
            raise BgforgeError(f"the {seg} segmenter is prompted by text: set `wordnet` (ImageNet's wordnet.is_a.txt, "
                               "ForAug's wordnet_data tree JSON, or nltk) so each class gets its two parents' names")
        return None
    return wordnet.load(t.wordnet, t.wordnet_names or None)


def source_records(t: FornetCommon, ctx: BuildContext, seg: str):
    """(source, [(split, wnid, image)] in split, class, key order, the class list)."""
    from ..backends import registry
    from ..sources.imagenet import ImageNetSource

    root = (_demo_root() if ctx.demo else
            ctx.root("imagenet"))
    src = ImageNetSource(root, require_boxes=seg in registry.box_prompted())
    spec = t.classes
    splits = list(t.splits)
    by_split = {s: defaultdict(list) for s in splits}
    for s in splits:
        for img in src.images(s):
            by_split[s][img.wnid].append(img)
    wnids = sorted({w for s in splits for w in by_split[s]}) if spec in (None, "all") else \
        sorted(src.wnid_for(c) for c in spec)
    if not wnids:
        raise BgforgeError(f"no ImageNet image found under {src.root} for splits {', '.join(splits)}")
    n = t.images_per_class
    recs = []
    for s in splits:
        for w in wnids:
            imgs = sorted(by_split[s].get(w, []), key=lambda i: i.key)
            recs += [(s, w, img) for img in (imgs[: int(n)] if n else imgs)]
    return src, recs, wnids


def _demo_root():
    from ..sources.demo import demo_imagenet_root

    return demo_imagenet_root()


def pieces_phase(recs: list, t: FornetCommon, seg: str, inp: str, wn) -> Phase:
    """One `inpaint` sample per source image: its object mask (object.png) and inpainted background."""
    parents = int(t.parent_labels)
    in_prompt = bool(t.parent_in_prompt)

    def piece(r) -> Sample:
        _, w, img = r
        meta = {"boxes": [list(b) for b in img.boxes], "wnid": w, "label": w, "split_of_source": img.split}
        if wn is not None:
            meta["text"] = " ".join(wn.prompts(w, parents, in_prompt))
        return Sample(key=img.key, split="pieces", inputs={"image": img.path}, meta=meta)

    params = {"segmenter": seg, "inpainter": inp, "dilation": int(t.dilation), "image_format": "png",
              "object_mask": True, "object_box": "largest", "remove_objects": "union",
              "backend_options": t.backend_options or {}}
    return Phase("pieces", "inpaint", params, LazySamples(sorted(recs, key=lambda r: r[2].key), piece,
                                                          split_of=lambda r: "pieces"))


def background_pools(recs: list) -> tuple[dict, dict]:
    """Per split: every image's (key, wnid), and per (split, wnid) the class's: the pools `all` and `same` draw from."""
    every, per_class = defaultdict(list), defaultdict(list)
    for s, w, img in recs:
        every[s].append((img.key, w))
        per_class[(s, w)].append((img.key, w))
    return every, per_class


def candidates(u, fg_key: str, wnid: str, split: str, source: str, pools: tuple) -> list:
    """The backgrounds a composite tries in order (stages/fornet.pick_background keeps the first that
    survives pruning): its own (orig); else uniform draws with replacement from the class's (same) or
    the split's (all) backgrounds, as fornet.py:474-481's np.random.randint. `u`: the composite's
    uniforms in [0, 1), one per candidate."""
    if source == "orig":
        return [[fg_key, wnid]]
    pool = pools[1][(split, wnid)] if source == "same" else pools[0][split]
    return [list(pool[min(int(x * len(pool)), len(pool) - 1)]) for x in u]


def check_common(t: FornetCommon) -> None:
    if t.fg_size_mode not in SIZE_MODES:
        raise BgforgeError(f"fg_size_mode must be one of {', '.join(SIZE_MODES)}, got {t.fg_size_mode!r}")
    if t.splits is None:
        raise BgforgeError("splits: give [train], [val] or [train, val] (the ImageNet splits to take foregrounds from)")
    for s in t.splits:
        if s not in SPLIT_ORDER:
            raise BgforgeError(f"splits may be train, val; got {s!r}")
    if not 0.0 <= float(t.fg_scale_jitter) < 1.0:
        raise BgforgeError(f"fg_scale_jitter must be in [0, 1), got {t.fg_scale_jitter}")
    if float(t.mask_smoothing_sigma) < 0:
        raise BgforgeError("mask_smoothing_sigma must be >= 0 (0: no edge blur)")
    if int(t.bg_candidates) < 1:
        raise BgforgeError("bg_candidates must be >= 1")
    n = t.images_per_class
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise BgforgeError(f"images_per_class must be a whole number >= 1, or null for all; got {n!r}")
    classes = t.classes
    if classes not in (None, "all") and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise BgforgeError(f"classes must be null (all) or a list of wnids / class names; got {classes!r}")
    for key in ("wordnet", "wordnet_names"):
        value = getattr(t, key)
        if value is not None and not isinstance(value, str):
            raise BgforgeError(f"{key} must be a path (or nltk), got {value!r}")


def _demo_params() -> dict:
    from ..sources.demo import _generated, cache_dir
    from ..sources.imagenet import HSI10_SYNSETS
    from ..sources.wordnet import write_synthetic

    folder = _generated(cache_dir() / "wordnet", "the demo WordNet file",
                        lambda tmp: write_synthetic(tmp, dict(HSI10_SYNSETS)))
    return {"wordnet": str(folder / "wordnet.is_a.txt"), "classes": sorted(HSI10_SYNSETS)[:DEMO_CLASSES],
            "images_per_class": DEMO_IMAGES}


class FornetBase(Planner):
    """What both ForNet recipes share: the pieces phase, the composite chain, the checks."""

    LABEL_FIELD = "label"
    DEMO_HINT = None
    PARAMS: ClassVar[type[FornetCommon]] = FornetParams   # the family's record (FornetEvalPlanner: its own)

    @classmethod
    def demo_params(cls) -> dict:
        return _demo_params()

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..sources.key_index import IndexedStore
        from ..stages.fornet import render

        store = IndexedStore(ctx.phase_dir("pieces"))
        encoding = Encoding.of(params)
        typed = self.PARAMS.from_plan(params)
        cache: dict = {}   # fg/bg ratio per background key, per worker
        return lambda batch: [render(s, store, typed, encoding, cache) for s in batch]

    def _setup(self, recipe: Recipe, ctx: BuildContext):
        t = self.PARAMS.from_params(recipe.params)
        seg, inp = resolve_backends(t)
        wn = _wordnet(t, seg)
        src, recs, wnids = source_records(t, ctx, seg)
        names = src.class_names()
        return t, seg, inp, wn, src, recs, wnids, names

    def _meta(self, recipe, t: FornetCommon, w, names, wn) -> dict:
        """The fields a class's composites share."""
        return {"wnid": w, "class_name": (names.get(w) or [w])[0], "recipe": recipe.name, "seed": int(t.seed),
                **({"parents": " > ".join(wn.name(x) for x in wn.parents(w, int(t.parent_labels)))}
                   if wn is not None else {})}

    def _planned(self, recipe, t: FornetCommon, grid: Grid, recs, wnids, names, wn, src, seg, inp) -> Planned:
        seed = int(t.seed)
        label = {w: i for i, w in enumerate(wnids)}
        pools = background_pools(recs)
        # without pruning the first draw is always kept: one candidate, not bg_candidates, in plan.json
        n = int(t.bg_candidates) if float(t.pruning_ratio) <= 1.0 else 1

        per_class = {w: {"label": label[w], **self._meta(recipe, t, w, names, wn)} for w in wnids}
        drawn: dict = {}   # the last foreground's uniforms: its cells are consecutive samples

        def build(i: int) -> Sample:
            (split, w, img), group, cell, suffix = grid.parts(i)
            if img.key not in drawn:   # one keyed generator per foreground, one row of draws per cell
                drawn.clear()
                drawn[img.key] = rng_for(seed, "fornet-bg", img.key).random((len(grid.cells), n))
            u = drawn[img.key][i % len(grid.cells)]
            return Sample(key=img.key + suffix, split=split,
                          inputs={"image": img.path,
                                  "bg_candidates": candidates(u, img.key, w, split, cell["bg_source"], pools)},
                          meta={**per_class[w], **reserved_meta(split, group, split=split), "fg_key": img.key,
                                **cell})

        return Planned(samples=LazySamples(grid.rows(), build, split_of=grid.split_of),
                       inputs={"imagenet": str(src.root)}, source_files=[r[2].key for r in recs],
                       notes=[f"pieces: {seg} + {inp}", f"wordnet: {wn.source if wn else 'none (box prompts)'}"],
                       prerequisites=[pieces_phase(recs, t, seg, inp, wn)])


class FornetPlanner(FornetBase):
    """`fornet`: `copies` composites per foreground (ForAug draws a new one each epoch), ForAug's knobs."""

    METADATA_COLUMNS = ["key", "label", "wnid", "class_name", "split", "group", "fg_key", "bg_key", "bg_class",
                        "bg_relation", "copy"]
    INSPECT_TABLES = (("class_name", "group"),)
    INSPECT_COUNTS = ("bg_relation",)

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        t, seg, inp, wn, src, recs, wnids, names = self._setup(recipe, ctx)
        return self._planned(recipe, t, Grid(recs, fornet_cells(t)), recs, wnids, names, wn, src, seg, inp)

    def validate(self, params: dict) -> None:
        t = FornetParams.from_params(params)
        check_common(t)
        if t.background_combination not in BACKGROUND_COMBINATIONS:
            raise BgforgeError(f"background_combination must be one of {', '.join(BACKGROUND_COMBINATIONS)}, "
                               f"got {t.background_combination!r}")
        if int(t.copies) < 1:
            raise BgforgeError("copies must be >= 1")


class Grid:
    """Every foreground (split, class, key order) in every cell: sample i is foreground i // len(cells)
    in cell i % len(cells). Rows are those ints (6.75 M composites of fornet-eval at ImageNet scale
    take ~0.25 GB as ints, not ~1 GB as tuples); each Sample is built as its shard is written."""

    def __init__(self, recs: list, cells: list[tuple[str, dict, str]]):
        self.recs = sorted(recs, key=lambda r: (SPLIT_ORDER[r[0]], r[1], r[2].key))
        self.cells = cells      # (group, the cell's meta, key suffix)

    def __len__(self) -> int:
        return len(self.recs) * len(self.cells)

    def rows(self) -> list[int]:
        return list(range(len(self)))

    def parts(self, i: int) -> tuple[tuple, str, dict, str]:
        r, c = divmod(i, len(self.cells))
        return (self.recs[r], *self.cells[c])

    def split_of(self, i: int) -> str:
        return self.recs[i // len(self.cells)][0]

    def group_of(self, i: int) -> str:
        return self.cells[i % len(self.cells)][0]


def fornet_cells(t: FornetParams) -> list[tuple[str, dict, str]]:
    """`fornet`: each foreground `copies` times (ForAug: one composite per foreground per epoch,
    fornet.py:269-276); its one group is the background combination."""
    combo, copies = t.background_combination, int(t.copies)
    return [(combo, {"bg_source": combo, "copy": c}, "" if copies == 1 else f"-c{c}") for c in range(copies)]
