"""`--retry-errors`: rebuild the committed shards whose commit marker records failed samples.

A shard is a pure function of its plan entry, so rebuilding a failed sample means rebuilding its
shard whole: once the cause is gone (a fixed file, a freed disk, a model now available) the new
shard is byte-identical to a clean run's. The old tar stays until the new one commits (the shard
writer renames its temporary over it, then the marker is replaced), so a killed retry leaves the
shard pending or committed, never torn. Finalize then rewrites errors.jsonl, metadata and the card.

Samples dropped while planning (`plan.skipped`: a bad box, an unreadable annotation) are not in
any shard and are not retried: their inputs are read when planning, so a fixed input needs a new
plan (`--overwrite`).

A fixed file has a new size or modification time, which changes the plan's input fingerprint; a
plain resume refuses that. With --retry-errors the same file names (and every shard entry, byte
for byte) are accepted and plan.json records the new fingerprint. A file that changed under a
shard without failures is not noticed: rebuild with --overwrite when more than the failed
inputs changed.
"""

from __future__ import annotations

from pathlib import Path

from . import commit as commitmod
from . import plan as planmod
from .plan_diff import plan_changes

SAME_NAMES = "input set: same count"


def accept_fixed_inputs(out: Path, plan: planmod.Plan) -> bool:
    """Record the new input fingerprint in OUT/plan.json when the only change is the files' stamps
    (same names, same entries); True when plan.json was rewritten. Any other change is left to the
    usual check, which refuses it naming each field."""
    path = planmod.plan_path(out)
    if not path.exists():
        return False
    changes = plan_changes(planmod.read_header(out), plan.header())
    if not changes or not all(line.startswith(SAME_NAMES) for line in changes):
        return False
    planmod._check_entries(out, plan)  # every entry byte for byte: the same samples from the same names
    planmod.write_plan(path, plan)
    return True


def failed_shards(out: Path, names, layout: str) -> dict[str, int]:
    """{shard: failed samples} of the committed shards among `names` (plan order kept) whose marker
    (its first line: the counts) records failed samples."""
    found = {}
    for name in names:
        head = commitmod.committed_stats(out, name, layout)
        if head is not None and int(head.get("errors") or 0) > 0:
            found[name] = int(head["errors"])
    return found


def retry_line(out: Path, shards: int, samples: int, failed: int, skipped: int) -> str:
    """What a --retry-errors run says before it works: the shards it rebuilds, or that there is nothing."""
    planning = (f"; {skipped} input(s) skipped while planning are not retried (fix them, then rebuild "
                "with --overwrite)" if skipped else "")
    if not shards:
        return f"--retry-errors: no failed samples recorded in the shards of {out}; nothing to rebuild{planning}"
    return (f"--retry-errors: rebuilding {shards} shard(s) ({samples} samples) that recorded {failed} failed "
            f"sample(s){planning}")

