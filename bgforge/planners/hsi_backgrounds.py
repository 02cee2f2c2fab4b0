"""Hard-Spurious-ImageNet background rules (PAPERS §4): which object is pasted, which class and
which image an R ("random") group draws its background from.

Reference (`random_background: per_class`): one background class per foreground class, drawn
from the seed and the same in every split; each source image gets one background image of that
class, drawn without replacement, and keeps it in CeR and CoR at every size. The alternative
`per_sample` draws a new class and image for every composite (bgforge's earlier rule).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import BgforgeError
from ..rng import rng_for
from ..stages.paste import object_index

RANDOM_BACKGROUND = ("per_class", "per_sample")


def object_box(boxes: list, rule: str = "last") -> list:
    """The box [x0, y0, x1, y1] a composite pastes (rule: stages/paste.OBJECT_BOX)."""
    return list(boxes[object_index(boxes, rule)])


def _others(wnids: list[str], own: str) -> list[str]:
    others = [w for w in wnids if w != own]
    if not others:
        raise BgforgeError("random backgrounds need at least two classes")
    return others


def pair_classes(fg_wnids: list[str], explicit: dict[str, str], seed: int) -> dict[str, str]:
    """Foreground class -> its one background class: the recipe's `background_class` where it names
    one, else another foreground class drawn from the seed (independent of the split)."""
    return {w: explicit.get(w) or _pick(_others(fg_wnids, w), rng_for(seed, "bg-class-of", w)) for w in fg_wnids}


def other_class_per_sample(fg_wnids: list[str], own: str, seed: int, key: str) -> str:
    """`per_sample`: a fresh random other class for each composite."""
    return _pick(_others(fg_wnids, own), rng_for(seed, "bg-class", key))


def _pick(items: list, rng) -> object:
    return items[int(rng.integers(len(items)))]


def assign_backgrounds(images: list, pool: list, seed: int, split: str, wnid: str) -> tuple[dict, int]:
    """One background image per source image (sorted by key), drawn without replacement from
    `pool`; returns ({image key: background image}, how many had to reuse one). A pool smaller
    than the images is cycled (reused) rather than refused: the caller says so in a note."""
    if not pool:
        raise BgforgeError(f"class {wnid} needs random backgrounds in {split} but its background class has no "
                           f"{split} image with boxes")
    order = rng_for(seed, "bg-images", split, wnid).permutation(len(pool))
    chosen = {img.key: pool[order[i % len(pool)]] for i, img in enumerate(sorted(images, key=lambda i: i.key))}
    return chosen, max(0, len(chosen) - len(pool))


class RandomBackgrounds:
    """Picks the R groups' backgrounds of one build under `random_background` (`per_class` or `per_sample`).

    pools: {wnid: {split: [images]}}; explicit: the recipe's `background_class` (wnids)."""

    def __init__(self, mode: str, pools: dict, fg_wnids: list[str], explicit: dict[str, str], seed: int):
        self.per_class, self.pools, self.fg_wnids, self.seed = mode == "per_class", pools, fg_wnids, seed
        self.pairing = pair_classes(fg_wnids, explicit, seed) if self.per_class else dict(explicit)
        self.assigned: dict = {}

    def start_class(self, split: str, wnid: str, r_images: list) -> str | None:
        """Give each of a class's R-group images (in one split) its background; a note when some must share one."""
        if not self.per_class:
            return None
        bg_class = self.pairing[wnid]
        self.assigned, reused = assign_backgrounds(r_images, self.pools[bg_class][split], self.seed, split, wnid)
        if reused:
            return f"{split} {wnid}: {reused} of {len(self.assigned)} images share a background of {bg_class} " \
                   f"(its {split} pool is smaller)"
        return None

    def pick(self, split: str, wnid: str, img, key: str) -> tuple:
        """(background image, its class) for the composite `key` of source image `img`."""
        if self.per_class:
            return self.assigned[img.key], self.pairing[wnid]
        bg_class = self.pairing.get(wnid) or other_class_per_sample(self.fg_wnids, wnid, self.seed, key)
        part = self.pools[bg_class][split]
        return part[int(rng_for(self.seed, "bg-image", key).integers(len(part)))], bg_class


def pairing_by_split(metadata_csv: Path) -> dict[str, dict[str, str]]:
    """{split: {foreground wnid: background wnid}} as the R rows of a finished metadata.csv show it."""
    seen: dict[str, dict[str, set]] = {}
    with open(metadata_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("background") == "random":
                seen.setdefault(row["split"], {}).setdefault(row["wnid"], set()).add(row["bg_class"])
    # per_sample gives a class a set of background classes: show them all, comma-separated
    return {split: {w: ",".join(sorted(b)) for w, b in sorted(classes.items())} for split, classes in seen.items()}
