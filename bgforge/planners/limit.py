"""`--limit N`: a trial build on real data, from a deterministic subset of the plan.

Each split keeps N samples (all of them when it has fewer) spread over its groups in proportion to
their sizes, with at least one per group where N allows (with more groups than N, the N groups whose
seeded rank comes first get one each). Within a group the samples kept are
the first by a rank drawn by `rng.derive_seed` from (seed, "limit", key), and they stay in plan order, so
the subset depends only on the plan and the seed: never on the worker count or the slicing (planning
happens once, before either). Samples a recipe keeps together in one shard (BAP's runs of
`shard_multiple`) are kept or dropped together.

An earlier phase (HSI backgrounds, AutoBackSwap / BAP foregrounds) keeps the samples whose keys the
kept samples name (in their inputs or fields), as `bgforge build --dry-run` calibrates; a phase none
of whose samples are named that way is built whole, and a note says so.

The limit is recorded in plan.json (a full build into the same --out is refused: `limit: 100 ->
none`), and manifest.json and the dataset card mark the output partial.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import BgforgeError
from ..io.metadata import group_label
from ..records import LazySamples
from ..rng import derive_seed
from .base import Phase, Planned


def _rank(seed: int, key: str) -> int:
    """A sample's place in the draw: bgforge.rng's hash of (seed, "limit", key), cheap at 1.24 M samples."""
    return derive_seed(seed, "limit", key)


def check_limit(n) -> int:
    """--limit's value: a whole number of samples per split, at least 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BgforgeError(f"--limit must be a whole number of samples per split, at least 1; got {n!r}")
    return n


def quotas(sizes: dict, n: int, seed: int) -> dict:
    """{group: how many to keep} for groups of `sizes`: n in all (or every sample), proportional to the
    sizes by largest remainder, at least one per group where n allows."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    if n < len(sizes):  # fewer than one per group: the n groups ranked first get one each
        chosen = sorted(sizes, key=lambda g: (_rank(seed, f"group:{g}"), str(g)))[:n]
        return {g: int(g in chosen) for g in sizes}
    take = {g: 1 for g in sizes}
    rest, spare = n - len(sizes), {g: sizes[g] - 1 for g in sizes}
    pool = sum(spare.values())
    shares = {g: rest * spare[g] / pool for g in sizes} if pool else {g: 0.0 for g in sizes}
    for g in sizes:
        take[g] += min(spare[g], int(shares[g]))
    left = n - sum(take.values())
    for g in sorted(sizes, key=lambda g: (-(shares[g] - int(shares[g])), str(g))):
        if left <= 0:
            break
        if take[g] < sizes[g]:
            take[g] += 1
            left -= 1
    while left > 0:  # a group's cap met: the others absorb what is left, biggest room first
        g = max(sizes, key=lambda g: (sizes[g] - take[g], str(g)))
        take[g] += 1
        left -= 1
    return take


def limit_samples(samples, n: int, seed: int, multiple: int = 1):
    """The subset of `samples` (a list or LazySamples) that --limit n keeps, in plan order."""
    multiple = max(1, int(multiple))
    units: dict[str, dict[str, list]] = {}   # split -> group -> [(rank, first index of the run)]
    for i, s in enumerate(samples):
        if i % multiple:
            continue
        units.setdefault(s.split, {}).setdefault(group_label(s.meta), []).append((_rank(seed, s.key), i))
    keep: list[int] = []
    want = -(-n // multiple)
    for groups in units.values():
        take = quotas({g: len(v) for g, v in groups.items()}, want, seed)
        for g, ranked in groups.items():
            for _, i in sorted(ranked)[:take[g]]:
                keep.extend(range(i, min(i + multiple, len(samples))))
    keep.sort()
    if isinstance(samples, LazySamples):
        return LazySamples([samples.rows[i] for i in keep], samples.build, samples.split_of)
    return [samples[i] for i in keep]


def needed_by(samples, phase: Phase) -> tuple[list, bool]:
    """The phase's samples that `samples` read (their keys among the samples' inputs and fields), and
    whether any matched; when none does, every phase sample."""
    wanted = {v for s in samples for v in (*s.inputs.values(), *s.meta.values()) if isinstance(v, str)}
    picked = [s for s in phase.samples if s.key in wanted]
    return (picked, True) if picked else (list(phase.samples), False)


def apply_limit(planned: Planned, n: int, seed: int) -> Planned:
    """`planned` cut to --limit n (see the module docstring): samples, then each earlier phase's."""
    samples = limit_samples(planned.samples, n, seed, planned.shard_multiple)
    phases, notes = [], list(planned.notes)
    for phase in planned.prerequisites:
        kept, matched = needed_by(samples, phase)
        if not matched:
            notes.append(f"--limit: phase {phase.folder} is built whole ({len(kept)} samples): its samples "
                         "are not named by the limited ones")
        phases.append(replace(phase, samples=kept))
    notes.append(f"--limit {n}: a partial build of {len(samples)} of {len(planned.samples)} samples "
                 "(per split, spread over the groups)")
    return replace(planned, samples=samples, prerequisites=phases, notes=notes)
