"""The Hard-Spurious-ImageNet reference's own draws, replayed (`pairing_draws: reference`).

Mishalfatima/Corner_Cases `create_dataset.py` (and `create_dataset_preserve_AR.py`) is
deterministic given its inputs, so its class pairing can be replayed from the per-class image
counts of a run. Line numbers are those of `create_dataset.py` (the -ar script's in brackets):

- `:60` (`:63`) classes = the box pickle's keys (bgforge: sorted wnids, the pickle's order);
- `:62-67` (`:66-71`) ten jobs of `len(classes) // 10` classes, the last one takes the rest;
  each job is its own process, seeded by `random.seed(1)` (`:20`, `:38`; `:20`, `:41`);
- `:145-150` (`:200-205`) for the job-local index c: `random.choice` over
  `[x for x in range(1000) if x != c]`, then `classes[other_id % len(classes)]` of the job;
- `:151-155` (`:206-210`) a paired class without images: `random.randint(0, len(classes) - 1)`
  of the job, unchecked;
- `:157` (`:212`) `random.choices(range(n_other), k=n)` when the paired class has fewer images
  than the class (n), else `random.sample(range(n_other), n)`;
- `:102-104`, `:182-193` (`:128-131`, `:240-251`) with `--random`: one `random.choice` of the
  four corners per `utils()` call, six per image: own background at 56, 84, 112, then the
  paired background at 56, 84, 112.

The counts are what the run globs: the test run every inpainted ImageNet val image of the class,
the train run every inpainted (boxed) ImageNet train image. Which image of a run is the c-th
comes from an unsorted `glob` in the reference; bgforge takes the images in key order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..errors import BgforgeError
from ..recipe_params import HsiParams

JOBS = 10            # create_dataset.py:63
CHOICE_RANGE = 1000  # create_dataset.py:149: range(1000), hard-coded
SEED = 1             # create_dataset.py:19-20, :38
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")  # create_dataset.py:103
SIZES = (56, 84, 112)  # create_dataset.py:59: the order of the utils() calls per background
REFERENCE_CLASSES = 1000  # the scale the replay is the default at


def job_slices(n_classes: int) -> list[tuple[int, int]]:
    """[start, end) of each job's classes (create_dataset.py:63-67)."""
    per_job = n_classes // JOBS
    return [(j * per_job, n_classes if j == JOBS - 1 else j * per_job + per_job) for j in range(JOBS)]


def replay_run(classes: Sequence[str], counts: dict[str, int], random_corners: bool = False
               ) -> tuple[dict[str, str], dict[str, list[tuple[str, ...]]]]:
    """One run of the reference: ({class: paired class}, {class: per image the six corners drawn}).

    `classes` in the reference's order, `counts` the run's images per class. The corners are
    drawn only with `random_corners` (the reference's `--random`), one tuple per image in the
    order the run processes them, assuming every image is processed (an image whose processing
    raised in the reference consumed no corner draw)."""
    pairing: dict[str, str] = {}
    corners: dict[str, list[tuple[str, ...]]] = {}
    for start, end in job_slices(len(classes)):
        members = list(classes[start:end])
        rng = random.Random(SEED)  # each job is its own process: random.seed(1)
        for c, wnid in enumerate(members):
            # random.choice over range(1000) without c: choice(seq) is seq[_randbelow(len(seq))]
            skip = 1 if c < CHOICE_RANGE else 0
            x = rng.choice(range(CHOICE_RANGE - skip))
            other = members[(x + (1 if skip and x >= c else 0)) % len(members)]
            if not counts.get(other, 0):
                other = members[rng.randint(0, len(members) - 1)]
            n, n_other = int(counts.get(wnid, 0)), int(counts.get(other, 0))
            if n_other < n:
                if not n_other:
                    raise BgforgeError(f"the reference's pairing gives class {wnid} the class {other}, which has no "
                                       "images in this run (the reference's job stops here): use "
                                       "--set pairing_draws=keyed")
                rng.choices(range(n_other), k=n)
            else:
                rng.sample(range(n_other), n)
            pairing[wnid] = other
            if random_corners:
                corners[wnid] = [tuple(rng.choice(CORNERS) for _ in range(2 * len(SIZES))) for _ in range(n)]
    return pairing, corners


def corner_slot(background: str, size: int) -> int:
    """Which of an image's six corner draws a corner composite uses (background "O" or "R")."""
    return (0 if background == "O" else len(SIZES)) + SIZES.index(size)


class ReferenceDraws:
    """The replayed runs of one build: train/val share the train run, test has its own.

    runs: {run name: (classes in order, {class: sorted image keys of the run})}."""

    def __init__(self, runs: dict[str, tuple[list[str], dict[str, list[str]]]], random_corners: bool):
        self.corners = random_corners
        self.pairings: dict[str, dict[str, str]] = {}
        self._corners: dict[str, dict[str, list]] = {}
        self._index: dict[str, dict[str, int]] = {}
        for run, (classes, keys) in runs.items():
            pairing, corners = replay_run(classes, {w: len(k) for w, k in keys.items()}, random_corners)
            self.pairings[run], self._corners[run] = pairing, corners
            if random_corners:  # (1.28 M train keys: the index only when corners are read)
                self._index[run] = {key: i for w in classes for i, key in enumerate(keys.get(w, []))}

    def corner(self, run: str, wnid: str, key: str, background: str, size: int) -> str:
        """The corner the reference's `--random` draws gave the image `key` in this group."""
        return self._corners[run][wnid][self._index[run][key]][corner_slot(background, size)]


def replay_blocker(params: dict, n_classes: int) -> str | None:
    """Why the replay does not apply to this build (None: it does). An absent key is HsiParams' default,
    as the planner reads it (pairing_scope all, self_pairing false, pairing shared: each blocks the replay)."""
    t = HsiParams.from_plan(params)
    if t.pairing_draws != "reference":
        return "pairing_draws: keyed"
    if t.random_background != "per_class":
        return "random_background: per_sample"
    for key, want in (("pairing_scope", "block"), ("self_pairing", True), ("pairing", "per_run")):
        if getattr(t, key) != want:
            return f"{key}: {getattr(t, key)}"
    if n_classes != REFERENCE_CLASSES:
        return f"{n_classes} classes (the replay is the reference's run over the {REFERENCE_CLASSES} ImageNet classes)"
    if int(t.pairing_block) != n_classes // JOBS:
        return f"pairing_block: {t.pairing_block} (the reference's jobs hold {n_classes // JOBS} classes)"
    return None
