"""Hard-Spurious-ImageNet background rules (Corner Cases (Fatima et al.)): which object is pasted, which class and
which image an R ("random") group draws its background from.

Reference (`random_background: per_class`): one background class per foreground class; each
source image gets one background image of that class, drawn without replacement, and keeps it
in CeR and CoR at every size. The alternative `per_sample` draws a new class and image for every
composite (bgforge's earlier rule).

Which class (Corner_Cases `create_dataset.py`): `random.choice` over the job's own slice of 100
classes, in the order the reference iterates them (sorted wnids: the box pickle's keys), so a
class pairs inside its block of 100 and may pair with itself; train/val and test are separate
runs. At the reference's scale (1000 classes) the reference's own draws are replayed
(hsi_replay.py, `pairing_draws: reference`); a subset, or `pairing_draws: keyed`, draws the same
rule from bgforge's keyed generators (`pair_classes`). Defaults `pairing_scope: block`,
`self_pairing: true`, `pairing: per_run`; `all` / `false` / `shared` give the earlier rule (any
other class, one pairing in every split).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import BgforgeError
from ..recipe_params import HsiParams
from ..rng import rng_for
from ..stages.paste import object_index

RUNS = {"train": "trainval", "val": "trainval", "test": "test"}  # the reference's two runs


def object_box(boxes: list, rule: str = "last") -> list:
    """The box [x0, y0, x1, y1] a composite pastes (rule: choices.OBJECT_BOX, applied by stages/paste.object_index)."""
    return list(boxes[object_index(boxes, rule)])


def _others(wnids: list[str], own: str) -> list[str]:
    others = [w for w in wnids if w != own]
    if not others:
        raise BgforgeError("random backgrounds need at least two classes")
    return others


def pair_classes(fg_wnids: list[str], explicit: dict[str, str], seed: int, scope: str = "all", block: int = 100,
                 self_pairing: bool = False, run: str | None = None) -> dict[str, str]:
    """Foreground class -> its one background class: the recipe's `background_class` where it names
    one, else a class drawn from the seed among the candidates: the class's own block of `block`
    classes in sorted order (`scope` "block") or every class ("all"), itself included only with
    `self_pairing`. `run` (None: one pairing for every split) draws the run's own pairing."""
    order = sorted(fg_wnids)
    out = {}
    for w in fg_wnids:
        rng = rng_for(seed, *(("bg-class-of", w) if run is None else ("bg-class-of", run, w)))
        if explicit.get(w):
            out[w] = explicit[w]
        elif scope == "block":
            out[w] = _block_pick(order, order.index(w), block, self_pairing, rng)
        else:
            out[w] = _pick(list(fg_wnids) if self_pairing else _others(list(fg_wnids), w), rng)
    return out


def _block_pick(order: list[str], i: int, block: int, self_pairing: bool, rng) -> str:
    """create_dataset.py: `other_id = random.choice([x for x in range(1000) if x != c])` with c the
    class's index in its job's slice, then `classes[other_id % len(classes)]`: a class of the own
    block, itself with probability 9/999 at ImageNet's 1000 classes in blocks of 100."""
    start = i // block * block
    members, local = order[start:start + block], i - start
    if not self_pairing:
        return _pick(_others(members, order[i]), rng)
    x = int(rng.integers(len(order) - 1))
    x += x >= local  # uniform over range(len(order)) without the class's own index
    return members[x % len(members)]


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

    def __init__(self, mode: str, pools: dict, fg_wnids: list[str], explicit: dict[str, str], seed: int,
                 params: dict | None = None, replayed: dict[str, dict[str, str]] | None = None):
        p = HsiParams.from_plan(params or {})
        self.per_class, self.pools, self.fg_wnids, self.seed = mode == "per_class", pools, fg_wnids, seed
        self.per_run = p.pairing == "per_run"
        rule = dict(scope=p.pairing_scope, block=int(p.pairing_block), self_pairing=bool(p.self_pairing))
        runs = sorted(set(RUNS.values())) if self.per_run else [None]
        self.pairings = {run: pair_classes(fg_wnids, explicit, seed, run=run, **rule) if self.per_class
                         else dict(explicit) for run in runs}
        for run, pairing in (replayed or {}).items():  # the reference's draws (hsi_replay), explicit entries win
            self.pairings[run] = {w: explicit.get(w) or pairing[w] for w in fg_wnids}
        self.assigned: dict = {}

    def pairing(self, split: str) -> dict[str, str]:
        """The class pairing of the run that makes `split` (train and val share one, test has its own)."""
        return self.pairings[RUNS.get(split, split) if self.per_run else None]

    def start_class(self, split: str, wnid: str, r_images: list) -> str | None:
        """Give each of a class's R-group images (in one split) its background; a note when some must share one."""
        if not self.per_class:
            return None
        bg_class = self.pairing(split)[wnid]
        self.assigned, reused = assign_backgrounds(r_images, self.pools[bg_class][split], self.seed, split, wnid)
        if reused:
            return f"{split} {wnid}: {reused} of {len(self.assigned)} images share a background of {bg_class} " \
                   f"(its {split} pool is smaller)"
        return None

    def pick(self, split: str, wnid: str, img, key: str) -> tuple:
        """(background image, its class) for the composite `key` of source image `img`."""
        if self.per_class:
            return self.assigned[img.key], self.pairing(split)[wnid]
        bg_class = self.pairing(split).get(wnid) or other_class_per_sample(self.fg_wnids, wnid, self.seed, key)
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
