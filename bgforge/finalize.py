"""Finalize a build once every shard is committed: the dataset-level files every client reads.

metadata.csv (plus one per split folder for --layout imagefolder), groups.json, errors.jsonl,
manifest.json (with, per split, the shard list, a brace pattern and sample counts), the previews
in OUT/.bgforge/preview/ and README.md, the Hugging Face dataset card. Streams one shard's stats
at a time: memory does not grow with the number of samples.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from . import __version__, planners
from .errors import BgforgeError
from .execution import commit as commitmod
from .execution import guard
from .execution import plan as planmod
from .io import metadata
from .io.card import dataset_card
from .io.layout import REFERENCE_PATH_LAYOUTS, writes_tars
from .io.preview import FilePicks, write_previews
from .io.shards import atomic_file, write_atomic


def shard_pattern(split: str, count: int) -> str:
    """`shards/train-{00000..00007}.tar`: the brace pattern WebDataset and braceexpand expand, relative to OUT."""
    if count == 1:
        return f"shards/{split}-00000.tar"
    return f"shards/{split}-{{00000..{count - 1:05d}}}.tar"


def _split_entry(split: str, layout: str, shard_samples: list[int]) -> dict:
    entry = {"samples": sum(shard_samples), "shard_samples": shard_samples}
    if writes_tars(layout):
        entry.update(pattern=shard_pattern(split, len(shard_samples)),
                     shards=[f"shards/{split}-{n:05d}.tar" for n in range(len(shard_samples))])
    if layout == "imagefolder":
        entry.update(folder=split, metadata=f"{split}/metadata.csv")
    return entry


def finalize(out, wall_seconds: float | None = None, plan=None, verify: bool = False) -> dict:
    """Write the dataset-level files from the committed shards; returns the groups.json content.

    verify: hash every tar against its marker first (`bgforge finalize`; a build has already hashed
    the shards it wrote as it wrote them, and the ones it resumed before it skipped them).
    """
    out = Path(out)
    guard.check_bookkeeping(out)
    plan = plan or planmod.load_plan(out)
    missing = [s.name for s in plan.shards if not commitmod.is_committed(out, s.name, plan.layout, verify=verify)]
    if missing:
        raise BgforgeError(f"{len(missing)} shard(s) of {out} are not committed yet or fail their recorded "
                           f"size or sha256 (e.g. {missing[0]}); run the remaining slices, or re-run the build "
                           "to redo them")
    planner = planners.get(plan.recipe["planner"])
    n_errors, shard_seconds, shards_by_split, samples_by_split = 0, 0.0, {}, {}
    picks = None if writes_tars(plan.layout) else FilePicks(out)
    with ExitStack() as stack:
        table_fh = stack.enter_context(atomic_file(out / "metadata.csv", "w"))
        errors = stack.enter_context(atomic_file(out / "errors.jsonl", "w"))
        table = metadata.MetadataWriter(table_fh, planner.METADATA_COLUMNS, planner.LABEL_FIELD, planner.ATTR_FIELD,
                                        tars=writes_tars(plan.layout), files=plan.layout != "shards")
        split_tables = metadata.SplitTables(out, table.columns, stack) if plan.layout == "imagefolder" else None

        def log_errors(records):
            for e in records:
                errors.write(json.dumps(e, sort_keys=True) + "\n")
            return len(records)

        n_errors += log_errors(plan.skipped)
        for entry in plan.shards:
            st = commitmod.read_marker(out, entry.name)  # the one parse of its rows in a build
            table.add(st["rows"])
            if split_tables is not None:
                split_tables.add(entry.split, st["rows"])
            if picks is not None:
                picks.add(entry.split, st["rows"])
            n_errors += log_errors(st["error_records"])
            shard_seconds += st["seconds"]
            samples_by_split.setdefault(entry.split, []).append(st["samples"])
            if writes_tars(plan.layout):
                shards_by_split.setdefault(entry.split, []).append(commitmod.shard_tar(out, entry.name))
    groups = table.summary()
    metadata.write_json(out / "groups.json", groups)
    if plan.layout in REFERENCE_PATH_LAYOUTS:
        # WILDS treats <root>/waterbirds_v1.0 as present only when this file exists.
        (out / "RELEASE_v1.0.txt").write_text(f"built by bgforge {__version__} from recipe {plan.recipe['name']}\n")
    previews = write_previews(out, shards_by_split, groups=groups, file_picks=picks,  # groups: stop reading early
                              order=planner.preview_rows(plan.recipe["params"]))
    # recipe-specific reports (e.g. edit flips per class) and construction facts for the manifest
    construction = planner.on_finalize(out, plan.recipe["params"]) or {}
    manifest = {**({"construction": construction} if construction else {}),
                "bgforge_version": __version__, "recipe": plan.recipe, "recipe_sha": plan.recipe_sha, "seed": plan.seed,
                "inputs": plan.inputs, "layout": plan.layout,
                "counts": {split: g["total"] for split, g in groups.items()}, "samples": table.rows, "errors": n_errors,
                "splits": {split: _split_entry(split, plan.layout, counts) for split, counts in samples_by_split.items()},
                "shards": [f"shards/{s.name}.tar" for s in plan.shards] if writes_tars(plan.layout) else [],
                "previews": [str(p.relative_to(out)) for p in previews],
                "timings": {"shard_seconds": round(shard_seconds, 3),
                            "last_run_wall_seconds": None if wall_seconds is None else round(wall_seconds, 3)}}
    metadata.write_json(out / "manifest.json", manifest)
    image_ext = plan.recipe["params"].get("image_format", "jpg")
    write_atomic(out / "README.md", dataset_card(manifest, groups, image_ext).encode())
    return groups
