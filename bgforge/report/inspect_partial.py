"""`bgforge inspect` on a build that is still running or was stopped: the committed shards only.

A build commits each shard with a marker holding its samples' metadata rows (execution/commit.py);
until finalize has written metadata.csv and manifest.json those markers are the only tables there
are. The report built from them is marked partial (shards committed / planned, running or
stopped: a stopped build is resumed by re-running the same build command; finalize would refuse
the missing shards), and its contact sheets are made in memory from the committed tars.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ..errors import BgforgeError
from ..execution import commit as commitmod
from ..execution import plan as planmod


def _cell(value) -> str:
    """A marker's typed value as metadata.csv writes it."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def is_partial(out: Path) -> bool:
    """No metadata.csv/manifest.json yet, but a plan: a build running, stopped, or not finalized."""
    return not ((out / "metadata.csv").exists() and (out / "manifest.json").exists()) and \
        planmod.plan_path(out).exists()


def read_partial(out: Path) -> tuple[dict, list[dict], dict]:
    """(manifest-like dict, the committed shards' rows as strings, what is partial about it)."""
    from .status import output_status

    status = output_status(out)
    plan = planmod.load_plan(out)
    rows: list[dict] = []
    committed: dict = {}   # split -> committed tar paths, in plan order
    for entry in plan.shards:
        if commitmod.committed_stats(out, entry.name, plan.layout) is None:
            continue
        marker = commitmod.read_marker(out, entry.name)
        # group names as groups.json gives them (a marker's `group` may be an id: UrbanCars' 0..7)
        rows += [{**{k: _cell(v) for k, v in r.items()}, **({"group": str(r["group_name"])} if "group_name" in r else {})}
                 for r in marker["rows"]]
        tar = commitmod.shard_tar(out, entry.name)
        if tar.is_file():
            committed.setdefault(entry.split, []).append(tar)
    stopped = not status["running"]
    partial = {"state": status["state"], "running": status["running"],
               "shards_committed": status.get("shards_committed", 0), "shards_total": len(plan.shards),
               "samples_written": len(rows), "samples_planned": plan.num_samples,
               "next": ("re-run the same build command to resume it (it finalizes at its end)" if stopped
                        else "the build is still running: inspect again later"),
               "shards_by_split": {s: [str(p) for p in ps] for s, ps in committed.items()}}
    manifest = {"recipe": plan.recipe, "errors": status.get("errors", 0), "partial": True}
    return manifest, rows, partial


def partial_line(partial: dict) -> str:
    return (f"PARTIAL: {partial['state']}; {partial['shards_committed']}/{partial['shards_total']} shards committed, "
            f"{partial['samples_written']}/{partial['samples_planned']} samples; these tables and previews show the "
            f"committed shards only; {partial['next']}")


def partial_previews(partial: dict, order: dict | None) -> dict:
    """split -> PNG bytes of a contact sheet of its committed shards (made in memory, nothing written)."""
    from ..io.preview import contact_sheet

    sheets = {}
    for split, paths in partial.get("shards_by_split", {}).items():
        sheet = contact_sheet(paths, order=order)
        if sheet is not None:
            buf = io.BytesIO()
            sheet.save(buf, format="PNG", compress_level=1)
            sheets[split] = buf.getvalue()
    return sheets


def not_an_output(out: Path) -> BgforgeError:
    phases = sorted(p.name for p in out.iterdir() if p.is_dir() and planmod.plan_path(p).exists()) \
        if out.is_dir() else []
    if phases:   # a multi-phase build (HSI: backgrounds first) whose main phase is not planned yet
        return BgforgeError(f"{out}: the build is still in its {phases[-1]} phase; its samples have no committed "
                            f"shard yet (`bgforge status {out}` shows the progress; `bgforge inspect "
                            f"{out / phases[-1]}` shows that phase)")
    return BgforgeError(f"{out} has no metadata.csv/manifest.json and no plan.json: not a bgforge output "
                        "(build one with `bgforge build RECIPE --out OUT`)")
