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

from . import __version__, planners, provenance
from .errors import BgforgeError
from .execution import commit as commitmod
from .execution import guard
from .execution import plan as planmod
from .io import file_hashes, metadata
from .io.atomic import atomic_file, stale_temporaries, write_atomic, write_text_atomic
from .io.card import dataset_card
from .io.class_folders import ClassFolders
from .io.croissant import CROISSANT, write_croissant
from .io.layout import PEER_LAYOUTS, REFERENCE_PATH_LAYOUTS, bookkeeping_dir, preview_dir, writes_tars
from .io.peer_layouts import write_peer_files
from .io.preview import FilePicks, write_previews
from .report import finalize_reports


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
    if layout in PEER_LAYOUTS:
        entry.update(folder=split)
    return entry


def finalize_locked(out) -> dict:
    """`bgforge finalize`: the build's own lock (exclusive) around `finalize`, every tar hashed first."""
    out = Path(out)
    guard.check_bookkeeping(out)
    planmod.read_header(out)  # "not a bgforge output folder" before a lock file is created in it
    with guard.locked(out, sliced=False):
        return finalize(out, verify=True)


def remove_stale_temporaries(out, splits=()) -> int:
    """The `.<name>.tmp<pid>` files that a killed finalize (or report writer) left where finalize writes;
    returns how many were removed."""
    out = Path(out)
    stale = [p for folder in (out, bookkeeping_dir(out), preview_dir(out), *(out / s for s in splits))
             for p in stale_temporaries(folder)]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


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
    split_names = sorted({s.split for s in plan.shards})
    remove_stale_temporaries(out, split_names if plan.layout in ("imagefolder", "hsi") else ())  # hsi: class_map.txt
    file_hashes.forget(out)
    n_errors, shard_seconds, shards_by_split, samples_by_split, tar_sha256 = 0, 0.0, {}, {}, {}
    picks = None if writes_tars(plan.layout) else FilePicks(out)
    with ExitStack() as stack:
        table_fh = stack.enter_context(atomic_file(out / "metadata.csv", "w", root=out))
        errors = stack.enter_context(atomic_file(out / "errors.jsonl", "w", root=out))
        table = metadata.MetadataWriter(table_fh, planner.METADATA_COLUMNS, planner.LABEL_FIELD, planner.ATTR_FIELDS,
                                        tars=writes_tars(plan.layout), files=plan.layout != "shards")
        split_tables = metadata.SplitTables(out, table.columns, stack) if plan.layout == "imagefolder" else None
        classes = (ClassFolders(planner.TARGET_FIELD or planner.LABEL_FIELD, planner.label_name)
                   if plan.layout == "imagefolder" else None)   # OUT/classes.json: ImageFolder's class order

        def log_errors(records):
            for e in records:
                errors.write(json.dumps(e, sort_keys=True) + "\n")
            return sum(not e.get("sample_kept") for e in records)  # a dropped box of a written sample: a note

        n_errors += log_errors(plan.skipped)
        for entry in plan.shards:
            st = commitmod.read_marker(out, entry.name)  # the one parse of its rows in a build
            table.add(st["rows"])
            if split_tables is not None:
                split_tables.add(entry.split, st["rows"])
            if classes is not None:
                classes.add(entry.split, st["rows"])
            if picks is not None:
                picks.add(entry.split, st["rows"])
            n_errors += log_errors(st["error_records"])
            shard_seconds += st["seconds"]
            samples_by_split.setdefault(entry.split, []).append(st["samples"])
            if writes_tars(plan.layout):
                shards_by_split.setdefault(entry.split, []).append(commitmod.shard_tar(out, entry.name))
                tar_sha256[f"shards/{entry.name}.tar"] = st.get("tar_sha256")
    groups = table.summary()
    if classes is not None:
        classes.write(out)
    metadata.write_json(out / "groups.json", groups, root=out, sort_keys=False)  # splits and groups in ordering.py's order
    write_peer_files(out, plan.layout)   # hsi: each split's class_map.txt for timm's --class-map
    if plan.layout in REFERENCE_PATH_LAYOUTS:
        # WILDS treats <root>/waterbirds_v1.0 as present only when this file exists.
        write_text_atomic(out / "RELEASE_v1.0.txt", f"built by bgforge {__version__} from recipe {plan.recipe['name']}\n",
                          root=out)
    previews = write_previews(out, shards_by_split, groups=groups, file_picks=picks,  # groups: stop reading early
                              order=planner.preview_rows(plan.recipe["params"]))
    # recipe-specific reports (e.g. edit flips per class) and construction facts for the manifest
    construction = planner.on_finalize(out, plan.recipe["params"]) or {}
    finalize_reports.write(plan.recipe["planner"], out, plan.recipe["params"])
    manifest = {**({"construction": construction} if construction else {}),
                **({"partial": {"limit": plan.limit}} if plan.limit else {}),   # --limit: a trial subset
                "bgforge_version": __version__, "recipe": plan.recipe, "recipe_sha": plan.recipe_sha, "seed": plan.seed,
                "inputs": plan.inputs, "layout": plan.layout,
                "counts": {split: g["total"] for split, g in groups.items()}, "samples": table.rows, "errors": n_errors,
                "splits": {split: _split_entry(split, plan.layout, counts) for split, counts in samples_by_split.items()},
                "shards": [f"shards/{s.name}.tar" for s in plan.shards] if writes_tars(plan.layout) else [],
                "previews": [str(p.relative_to(out)) for p in previews],
                "versions": provenance.build_versions(out, plan.recipe["params"],
                                                      planner.loads_models(plan.recipe["params"]),
                                                      planner.backends(plan.recipe["params"])),
                "demo": provenance.is_demo(plan.inputs),
                "substitutions": provenance.substitutions(plan.recipe, out, provenance.is_demo(plan.inputs)),
                "timings": {"shard_seconds": round(shard_seconds, 3),
                            "last_run_wall_seconds": None if wall_seconds is None else round(wall_seconds, 3)}}
    metadata.write_json(out / "manifest.json", manifest, root=out)
    image_ext = plan.recipe["params"].get("image_format", "jpg")
    write_atomic(out / "README.md", dataset_card(manifest, groups, image_ext).encode(), root=out)
    write_croissant(out, manifest, planner.LABEL_FIELD, shard_sha256=tar_sha256, image_ext=image_ext)
    # last: what `status --verify` checks these files against (manifest.json cannot hold its own hash)
    file_hashes.record(out, ["groups.json", "metadata.csv", "manifest.json", "errors.jsonl", "README.md", CROISSANT,
                             *(f"{s}/metadata.csv" for s in split_names if plan.layout == "imagefolder")])
    return groups
