"""Hard-Spurious-ImageNet (Corner Cases, PAPERS §4): 12 groups of size x position x background.

Two phases. First every image that a composite needs is turned into a background once (all
ground-truth objects segmented from their boxes, dilated, inpainted, resized to the canvas) in
OUT/backgrounds. Then each composite pastes the rectangular crop of an image's largest box at
size s and a position onto its own (O) or another class's (R) background.
"""

from __future__ import annotations

import logging

from ..errors import BgforgeError
from ..execution.context import Chain, WorkerContext
from ..recipe import Recipe
from ..records import Sample
from ..rng import rng_for
from ..sources import resolve_root
from ..stages.paste import CORNERS
from .base import BuildContext, Phase, Planned, Planner

log = logging.getLogger(__name__)

SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def group_names(params: dict) -> list[str]:
    out = []
    for pos in params["positions"]:
        for bg in ("O", "R"):
            for s in params["sizes"]:
                out.append(f"{'Ce' if pos == 'center' else 'Co'}{bg}-{s}")
    return out


def difficulty_of(group: str, params: dict) -> str:
    for level, groups in params["difficulty"].items():
        if group in groups:
            return level
    raise BgforgeError(f"group {group} has no difficulty in the recipe's `difficulty` table")


def resolve_backends(params: dict) -> tuple[str, str]:
    """`auto`: SAM + LaMa on a GPU machine, box + Telea elsewhere (recorded in the plan)."""
    seg, inp = params.get("segmenter", "auto"), params.get("inpainter", "auto")
    if "auto" in (seg, inp):
        import torch

        gpu = torch.cuda.is_available()
        seg = ("sam" if gpu else "box") if seg == "auto" else seg
        inp = ("lama" if gpu else "telea") if inp == "auto" else inp
        log.info("backgrounds: segmenter %s, inpainter %s (%s)", seg, inp, "GPU found" if gpu else "no GPU: CPU fallbacks")
    return seg, inp


def largest_box(boxes: list) -> list:
    """The box [x0, y0, x1, y1] of largest area."""
    return list(max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])))


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
    for w in wnids:
        train = sorted(src.images("train", [w]), key=lambda i: i.key)
        order = rng_for(seed, "pool", w).permutation(len(train))
        shuffled = [train[i] for i in order]
        pools[w] = {"val": shuffled[:n_val], "train": shuffled[n_val:],
                    "test": sorted(src.images("val", [w]), key=lambda i: i.key) if "test" in splits else []}
    return pools


def _quota(split, group, p) -> int | None:
    if split == "test":
        return None  # every ImageNet val image of the class, once in every group
    q = p["quota"][split]
    return int(q[difficulty_of(group, p)]) if isinstance(q, dict) else int(q)


def _check_quotas(pools, fg_wnids, p, splits):
    if p.get("allow_reuse"):
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


def _other_class(wnids, own, seed, key) -> str:
    others = [w for w in wnids if w != own]
    if not others:
        raise BgforgeError("random backgrounds need at least two classes")
    return others[int(rng_for(seed, "bg-class", key).integers(len(others)))]


class HardSpuriousPlanner(Planner):
    """Hard-Spurious-ImageNet: inpainted backgrounds first (a `Phase`), then the 12 groups of composites."""

    METADATA_COLUMNS = ["key", "label", "wnid", "class_name", "split", "group", "difficulty", "size", "position",
                        "background", "fg_key", "bg_key", "bg_class"]
    LABEL_FIELD, ATTR_FIELD = "label", "bg_class"  # for `bgforge inspect`: how much the background class tells

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        from ..sources.imagenet import ImageNetSource

        p = recipe.params
        seed = int(p["seed"])
        src = ImageNetSource(resolve_root(ctx.roots.get("imagenet"), "BGFORGE_IMAGENET_ROOT", "--imagenet-root", "ImageNet")
                             if not ctx.demo else _demo_root())
        fg_wnids = _classes(src, p["classes"])
        pairing = {src.wnid_for(k): src.wnid_for(v) for k, v in (p.get("background_class") or {}).items()}
        missing = [w for w in pairing if w not in fg_wnids]
        if missing:
            raise BgforgeError(f"background_class names foreground classes not in `classes`: {', '.join(missing)}")
        names = src.class_names()
        label = {w: i for i, w in enumerate(fg_wnids)}
        splits = list(p["splits"])
        pools = _pools(src, sorted(set(fg_wnids) | set(pairing.values())), p, seed, splits)
        _check_quotas(pools, fg_wnids, p, splits)

        groups = group_names(p)
        samples, needed = [], {}
        for split in splits:
            for w in fg_wnids:
                for group in groups:
                    pos, bg_kind, size = ("center" if group.startswith("Ce") else "corner"), group[2], int(group.split("-")[1])
                    for img in _draw(pools[w][split], split, w, group, p, seed):
                        key = f"{img.key}-{group}"
                        if bg_kind == "O":
                            bg_img, bg_class = img, w
                        else:
                            bg_class = pairing.get(w) or _other_class(fg_wnids, w, seed, key)
                            part = pools[bg_class][split]
                            bg_img = part[int(rng_for(seed, "bg-image", key).integers(len(part)))]
                        needed[bg_img.key] = bg_img
                        needed.setdefault(img.key, img)
                        corner = "top-right"
                        if p.get("corner") == "random" and pos == "corner":
                            corner = CORNERS[int(rng_for(seed, "corner", key).integers(4))]
                        samples.append(Sample(key=key, split=split,
                            inputs={"image": img.path, "box": largest_box(img.boxes), "bg_key": bg_img.key},
                            meta={"label": label[w], "wnid": w, "class_name": (names.get(w) or [w])[0], "split": split,
                                  "split_name": split, "group": group, "group_name": group,
                                  "difficulty": difficulty_of(group, p), "size": size, "position": pos, "corner": corner,
                                  "background": "own" if bg_kind == "O" else "random", "fg_key": img.key,
                                  "bg_key": bg_img.key, "bg_class": bg_class, "recipe": recipe.name, "seed": seed}))
        samples.sort(key=lambda s: (SPLIT_ORDER[s.split], s.meta["label"], s.key))
        seg, inp = resolve_backends(p)
        backgrounds = [Sample(key=k, split="backgrounds", inputs={"image": img.path},
                              meta={"boxes": [list(b) for b in img.boxes], "wnid": img.wnid, "split_of_source": img.split,
                                    "label": img.wnid})
                       for k, img in sorted(needed.items())]
        bg_params = {"segmenter": seg, "inpainter": inp, "dilation": int(p["dilation"]), "resize": int(p["canvas"]),
                     "image_format": "png", "object_mask": True, "backend_options": p.get("backend_options") or {}}
        skipped = [{"key": k, "stage": "source", "error_type": "BadBox", "message": m} for k, m in src.problems]
        return Planned(samples=samples, inputs={"imagenet": str(src.root)},
                       source_files=sorted(needed) + [s.key for s in samples],
                       notes=[f"ImageNet layout: {src.layout}", f"backgrounds: {seg} + {inp}"],
                       prerequisites=[Phase("backgrounds", "inpaint", bg_params, backgrounds)], skipped=skipped)

    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..sources.store import ShardStore
        from ..stages.hard_spurious import render

        store = ShardStore(ctx.phase_dir("backgrounds"))  # index once per worker
        return lambda batch: [render(s, store, params) for s in batch]

    def validate(self, params: dict) -> None:
        if params.get("fg_mode", "box") not in ("box", "mask"):
            raise BgforgeError(f"fg_mode must be box or mask, got {params.get('fg_mode')!r}")
        for s in params["splits"]:
            if s not in SPLIT_ORDER:
                raise BgforgeError(f"splits may be train, val, test; got {s!r}")
