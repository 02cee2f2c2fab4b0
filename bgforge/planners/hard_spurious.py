"""Hard-Spurious-ImageNet (Corner Cases): 12 groups of size x position x background.

Two phases. First every image that a composite needs is turned into a background once (all
ground-truth objects segmented from their boxes, dilated, inpainted, resized to the canvas) in
OUT/backgrounds. Then each composite pastes the rectangular crop of an image's last box (the
reference; `object_box: largest` is the option) at size s and a position onto its own (O) or
another class's (R) background; hsi_backgrounds.py holds the rules that pick R backgrounds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from ..chain import Chain, WorkerContext
from ..choices import CORNERS
from ..errors import BgforgeError
from ..io.encoding import Encoding
from ..io.metadata import write_json
from ..recipe import Recipe
from ..recipe_params import HsiParams
from ..records import LazySamples, Sample
from ..rng import rng_for
from ..sample_meta import reserved_meta
from ..stages.paste import RESAMPLING
from .base import BuildContext, Phase, Planned, Planner
from .hsi_backgrounds import (
    RUNS,
    RandomBackgrounds,
    object_box,
    pairing_by_split,
)
from .hsi_replay import SIZES, ReferenceDraws, replay_blocker

log = logging.getLogger(__name__)

SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def group_names(params: dict) -> list[str]:
    out = []
    for pos in params["positions"]:
        for bg in ("O", "R"):
            for s in params["sizes"]:
                out.append(f"{'Ce' if pos == 'center' else 'Co'}{bg}-{s}")
    return out


def group_parts(group: str) -> tuple[str, str, int]:
    """(position, background kind "O" or "R", size) of a group name such as `CeO-100`."""
    return ("center" if group.startswith("Ce") else "corner"), group[2], int(group.split("-")[1])


def difficulty_of(group: str, params: dict) -> str:
    for level, groups in params["difficulty"].items():
        if group in groups:
            return level
    raise BgforgeError(f"group {group} has no difficulty in the recipe's `difficulty` table")


def resolve_backends(params: dict) -> tuple[str, str]:
    """`auto`: SAM + LaMa on a GPU machine, box + Telea elsewhere (recorded in the plan)."""
    typed = HsiParams.from_plan(params)   # also AutoBackSwap's params: its own keys are its own
    seg, inp = typed.segmenter, typed.inpainter
    if "auto" in (seg, inp):
        import torch

        gpu = torch.cuda.is_available()
        seg = ("sam" if gpu else "box") if seg == "auto" else seg
        inp = ("lama" if gpu else "telea") if inp == "auto" else inp
        log.info("backgrounds: segmenter %s, inpainter %s (%s)", seg, inp, "GPU found" if gpu else "no GPU: CPU fallbacks")
    return seg, inp


def _demo_root():
    from ..sources.demo import demo_imagenet_root

    return demo_imagenet_root()


def _classes(src, spec) -> list[str]:
    if spec in (None, "all"):
        wnids = sorted({img.wnid for img in src.images("train")})
        if not wnids:
            raise BgforgeError(f"no ImageNet train image with a bounding box found under {src.root}")
        return wnids
    return sorted(src.wnid_for(c) for c in spec)


def _pools(src, wnids, p, seed, splits) -> dict:
    """Per class: train/val parts of ImageNet train (disjoint) and test = ImageNet val."""
    pools = {}
    n_val = int(p["val_images_per_class"])
    test = {w: [] for w in wnids}
    if "test" in splits:  # ImageNet val listed once and split by class (per class it was quadratic)
        for img in src.images("val"):  # sorted by key
            if img.wnid in test:
                test[img.wnid].append(img)
    for w in wnids:
        train = sorted(src.images("train", [w]), key=lambda i: i.key)
        order = rng_for(seed, "pool", w).permutation(len(train))
        shuffled = [train[i] for i in order]
        pools[w] = {"val": shuffled[:n_val], "train": shuffled[n_val:], "test": test[w]}
    return pools


def _quota(split, group, p) -> int | None:
    if split == "test":
        return None  # every ImageNet val image of the class, once in every group
    q = p["quota"][split]
    return int(q[difficulty_of(group, p)]) if isinstance(q, dict) else int(q)


def _check_quotas(pools, fg_wnids, p, splits):
    if HsiParams.from_plan(p).allow_reuse:
        return
    short = []
    groups = group_names(p)
    for w in fg_wnids:
        for split in splits:
            need = max((_quota(split, g, p) or 1) for g in groups)
            have = len(pools[w][split])
            if have < need:
                short.append(f"{w} {split}: {have} images with boxes, needs {need}")
    if short:
        more = f" (and {len(short) - 5} more)" if len(short) > 5 else ""
        raise BgforgeError("too few images for the quotas: " + "; ".join(short[:5]) + more +
                           ". Use --set allow_reuse=true (draw with replacement), smaller quotas "
                           "(--set quota.train.easy=40), or --set val_images_per_class=N")


def _draw(pool, split, wnid, group, p, seed):
    quota = _quota(split, group, p)
    if quota is None:
        return pool
    if not pool:
        return []
    rng = rng_for(seed, "draw", split, wnid, group)
    idx = rng.choice(len(pool), size=quota, replace=quota > len(pool))
    return [pool[i] for i in sorted(idx)]


def _reference_draws(p: dict, fg_wnids: list[str], explicit: dict, pools: dict, splits: list[str]
                     ) -> tuple[ReferenceDraws | None, str | None]:
    """The reference's runs replayed (hsi_replay.py) when this build is at its scale, and a note saying
    which draws pair the classes. A run's images: train/val's every ImageNet train image of the
    class (the train run globs them all), test's every ImageNet val image, each in key order."""
    if all(explicit.get(w) for w in fg_wnids):
        return None, None  # every pairing named by the recipe
    why = replay_blocker(p, len(fg_wnids))
    if why:
        return None, f"class pairing: bgforge's keyed draws ({why})"
    runs = {}
    if {"train", "val"} & set(splits):
        runs["trainval"] = (fg_wnids, {w: sorted(i.key for i in pools[w]["train"] + pools[w]["val"]) for w in fg_wnids})
    if "test" in splits:
        runs["test"] = (fg_wnids, {w: sorted(i.key for i in pools[w]["test"]) for w in fg_wnids})
    corners = HsiParams.from_plan(p).corner == "random" and [int(s) for s in p["sizes"]] == list(SIZES)
    return (ReferenceDraws(runs, corners),
            "class pairing: the reference's draws replayed (Corner_Cases create_dataset.py: random.seed(1) per job of "
            f"{len(fg_wnids) // 10} classes{'; the --random corners from the same stream' if corners else ''})")


class _SourceKeys(Sequence):
    """Planned.source_files: the backgrounds' keys, then each composite's, made when read (after
    planning, when the source's listing is gone) instead of 1.24 M strings held while planning."""

    def __init__(self, backgrounds: list[str], rows: list):
        self.backgrounds, self.rows = backgrounds, rows

    def __len__(self) -> int:
        return len(self.backgrounds) + len(self.rows)

    def __getitem__(self, i):
        return list(self)[i]  # not on any hot path: inputs_fingerprint iterates

    def __iter__(self):
        yield from self.backgrounds
        for r in self.rows:
            yield f"{r[2].key}-{r[3]}"


def _background_sample(row: tuple) -> Sample:
    key, img = row
    return Sample(key=key, split="backgrounds", inputs={"image": img.path},
                  meta={"boxes": [list(b) for b in img.boxes], "wnid": img.wnid, "split_of_source": img.split,
                        "label": img.wnid})


class HardSpuriousPlanner(Planner):
    """Hard-Spurious-ImageNet: inpainted backgrounds first (a `Phase`), then the 12 groups of composites."""

    EVAL_BREAKDOWNS = ("difficulty", "size", "position", "background")  # Corner Cases: Easy / Medium / Hard, O / R
    METADATA_COLUMNS = ["key", "label", "wnid", "class_name", "split", "group", "difficulty", "size", "position",
                        "background", "fg_key", "bg_key", "bg_class", "bg_class_name"]
    # No ATTR_FIELDS: bg_class is the class itself in O groups and its paired class in R groups, so by
    # construction it names the label in every split (Cramer's V = 1 tells nothing). What the recipe
    # varies is the group: inspect shows the groups per class, O / R, difficulty, size, position and
    # the R pairing (`bgforge inspect --attribute bg_class` still computes the association).
    INSPECT_TABLES = (("class_name", "group"),)
    INSPECT_COUNTS = ("background", "difficulty", "size", "position")

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        from ..sources.imagenet import ImageNetSource
        from ..sources.imagenet.annotations import box_problem

        p, typed = recipe.params, HsiParams.from_params(recipe.params)
        seed = int(p["seed"])
        src = ImageNetSource(ctx.root("imagenet")
                             if not ctx.demo else _demo_root())
        fg_wnids = _classes(src, p["classes"])
        pairing = {src.wnid_for(k): src.wnid_for(v) for k, v in (typed.background_class or {}).items()}
        missing = [w for w in pairing if w not in fg_wnids]
        if missing:
            raise BgforgeError(f"background_class names foreground classes not in `classes`: {', '.join(missing)}")
        names = src.class_names()
        label = {w: i for i, w in enumerate(fg_wnids)}
        splits = list(p["splits"])
        pools = _pools(src, sorted(set(fg_wnids) | set(pairing.values())), p, seed, splits)
        _check_quotas(pools, fg_wnids, p, splits)

        groups = group_names(p)
        reference, draws_note = _reference_draws(p, fg_wnids, pairing, pools, splits)
        r_backgrounds = RandomBackgrounds(typed.random_background, pools, fg_wnids, pairing,
                                          seed, p, replayed=reference.pairings if reference else None)
        # The mask variant reads each foreground's object mask from the backgrounds phase
        inpaint_foregrounds = typed.fg_mode == "mask"
        box_rule = typed.object_box
        blocks, needed, notes = [], {}, [draws_note] if draws_note else []
        for split in splits:
            for w in fg_wnids:
                block = []  # this class's composites in this split, as rows (built by `composite` below)
                drawn = {group: _draw(pools[w][split], split, w, group, p, seed) for group in groups}
                r_images = {img.key: img for g, imgs in drawn.items() if g[2] == "R" for img in imgs}
                notes += filter(None, [r_backgrounds.start_class(split, w, list(r_images.values()))])
                for group in groups:
                    pos, bg_kind, _ = group_parts(group)
                    for img in drawn[group]:
                        key = f"{img.key}-{group}"
                        bg_img, bg_class = (img, w) if bg_kind == "O" else r_backgrounds.pick(split, w, img, key)
                        needed[bg_img.key] = bg_img
                        if inpaint_foregrounds:
                            needed.setdefault(img.key, img)
                        corner = "top-right"
                        if typed.corner == "random" and pos == "corner":
                            corner = (reference.corner(RUNS[split], w, img.key, bg_kind, group_parts(group)[2])
                                      if reference and reference.corners else
                                      CORNERS[int(rng_for(seed, "corner", key).integers(4))])
                        block.append((split, w, img, group, bg_img.key, bg_class, corner))
                # output order: split, label, key (the block is one split and label)
                block.sort(key=lambda r: f"{r[2].key}-{r[3]}")
                blocks.append((SPLIT_ORDER[split], label[w], block))
        blocks.sort(key=lambda b: b[:2])
        rows = [r for *_, block in blocks for r in block]
        del blocks

        def composite(row: tuple) -> Sample:
            split, w, img, group, bg_key, bg_class, corner = row
            pos, bg_kind, size = group_parts(group)
            return Sample(key=f"{img.key}-{group}", split=split,
                inputs={"image": img.path, "box": object_box(img.boxes, box_rule), "bg_key": bg_key},
                meta={"label": label[w], "wnid": w, "class_name": (names.get(w) or [w])[0],
                      **reserved_meta(split, group, split=split),
                      "difficulty": difficulty_of(group, p), "size": size, "position": pos, "corner": corner,
                      "background": "own" if bg_kind == "O" else "random", "fg_key": img.key,
                      "bg_key": bg_key, "bg_class": bg_class,
                      "bg_class_name": (names.get(bg_class) or [bg_class])[0], "recipe": recipe.name, "seed": seed})

        # Rows, not Samples: 1.24 M composites at ImageNet scale fit in ~0.15 GB instead of ~1.1 GB;
        # each Sample is built when its shard is written (records.LazySamples).
        samples = LazySamples(rows, composite, split_of=lambda r: r[0])
        seg, inp = resolve_backends(p)
        backgrounds = LazySamples(sorted(needed.items()), _background_sample, split_of=lambda r: "backgrounds")
        bg_params = {"segmenter": seg, "inpainter": inp, "dilation": int(p["dilation"]), "resize": int(p["canvas"]),
                     "image_format": "png", "object_mask": True, "backend_options": typed.backend_options or {},
                     "remove_objects": typed.remove_objects, "object_box": box_rule,
                     "resampling": typed.resampling,
                     **({"stored_jpeg_quality": int(typed.background_jpeg_quality)}
                        if typed.background_jpeg_quality else {})}
        skipped = [box_problem(k, m) for k, m in src.problems]
        return Planned(samples=samples, inputs={"imagenet": str(src.root)},
                       source_files=_SourceKeys(sorted(needed), rows),
                       notes=[f"ImageNet layout: {src.layout}", f"backgrounds: {seg} + {inp}"] + notes,
                       prerequisites=[Phase("backgrounds", "inpaint", bg_params, backgrounds)], skipped=skipped)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..sources.key_index import IndexedStore
        from ..stages.hard_spurious import render

        # the index the backgrounds phase stored, and an LRU of decoded backgrounds per worker
        store = IndexedStore(ctx.phase_dir("backgrounds"))
        encoding = Encoding.of(params)
        return lambda batch: [render(s, store, params, encoding) for s in batch]

    def validate(self, params: dict) -> None:
        # fg_mode, object_box, rounding, pairing... are closed sets in params.RULES, checked before this
        typed = HsiParams.from_params(params)
        for s in params["splits"]:
            if s not in SPLIT_ORDER:
                raise BgforgeError(f"splits may be train, val, test; got {s!r}")
        if int(typed.pairing_block) < 1:
            raise BgforgeError(f"pairing_block must be >= 1, got {typed.pairing_block}")
        if typed.resampling not in RESAMPLING:   # RULES' union also has Waterbirds' `fast`
            raise BgforgeError(f"resampling must be {' or '.join(RESAMPLING)}, got {typed.resampling!r}")

    def preview_rows(self, params: dict) -> dict:
        """The recipe's groups in its own order, each with its difficulty (CeO-56 (easy), ...)."""
        return {g: f"{g} ({difficulty_of(g, params)})" for g in group_names(params)}

    def on_finalize(self, out: Path, params: dict) -> dict:
        """The R groups' class pairing, per split (constant across splits under `per_class`), added to
        groups.json and returned for manifest.json."""
        pairing = pairing_by_split(out / "metadata.csv")
        groups = json.loads((out / "groups.json").read_text())
        for split, pairs in pairing.items():
            groups.setdefault(split, {})["background_pairing"] = pairs
        write_json(out / "groups.json", groups, root=out)
        return {"background_pairing": pairing, "random_background": HsiParams.from_plan(params).random_background}
