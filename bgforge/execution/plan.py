"""The plan (OUT/plan.json) and the shard commit protocol.

A run first writes the deterministic list of shards derived from recipe, inputs and seed.
Executing a shard is a pure function of its plan entry. A shard is committed when
`shards/<name>.stats.json` exists: it is written (atomically) only after the tar was renamed
into place, so a resumed run skips committed shards and redoes everything else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import BgforgeError
from ..io.shards import atomic_file, json_bytes, write_atomic
from ..records import Sample

PLAN_FORMAT = 1


@dataclass
class ShardEntry:
    name: str
    split: str
    samples: list  # list[Sample]; empty when only the shard's identity was loaded
    size: int = -1  # number of samples, known even when they are not loaded

    def __post_init__(self):
        if self.size < 0:
            self.size = len(self.samples)

    def to_dict(self):
        return {"name": self.name, "split": self.split, "size": self.size,
                "samples": [s.to_dict() for s in self.samples]}

    @classmethod
    def from_dict(cls, d, with_samples: bool = True):
        samples = [Sample.from_dict(x) for x in d["samples"]] if with_samples else []
        return cls(d["name"], d["split"], samples, d.get("size", len(d["samples"])))


@dataclass
class Plan:
    recipe: dict
    recipe_sha: str
    seed: int
    inputs: dict
    inputs_sha: str
    layout: str
    shards: list  # list[ShardEntry]
    skipped: list = field(default_factory=list)  # error records from planning (e.g. bad boxes)

    def header(self) -> dict:
        return {"format": PLAN_FORMAT, "bgforge_version": __version__, "recipe": self.recipe,
                "recipe_sha": self.recipe_sha, "seed": self.seed, "inputs": self.inputs,
                "inputs_sha": self.inputs_sha, "layout": self.layout, "skipped": self.skipped,
                "num_shards": len(self.shards)}

    @classmethod
    def from_header(cls, d, shards):
        return cls(d["recipe"], d["recipe_sha"], d["seed"], d["inputs"], d["inputs_sha"], d.get("layout", "shards"), shards,
                   d.get("skipped", []))

    @property
    def num_samples(self) -> int:
        return sum(s.size for s in self.shards)


def inputs_fingerprint(planned) -> str:
    """Changes when the raw input set changes (files scanned, or the samples' keys), not with the seed."""
    h = hashlib.sha256()
    h.update(json.dumps(planned.inputs, sort_keys=True).encode())
    for name in sorted(planned.source_files) or sorted(s.key for s in planned.samples):
        h.update(name.encode() + b"\n")
    return h.hexdigest()[:16]


def make_plan(recipe, planned, seed: int, shard_size: int, layout: str) -> Plan:
    # Runs of samples that must share a shard (BAP: one foreground's K + M composites) round
    # the shard size down to whole runs, at least one run.
    multiple = max(1, int(planned.shard_multiple))
    shard_size = max(multiple, shard_size // multiple * multiple)
    shards, by_split = [], {}
    for s in planned.samples:
        by_split.setdefault(s.split, []).append(s)
    for split, items in by_split.items():
        for n, start in enumerate(range(0, len(items), shard_size)):
            shards.append(ShardEntry(f"{split}-{n:05d}", split, items[start:start + shard_size]))
    return Plan(recipe.to_dict(), recipe.sha(), seed, planned.inputs, inputs_fingerprint(planned), layout, shards)


def plan_path(out) -> Path:
    return Path(out) / "plan.json"


# plan.json is one JSON document laid out one shard entry per line, so the header and any
# shard can be read without parsing (or holding) a million-sample plan.
_SHARDS_OPEN = b',"shards":['


def read_header(out) -> dict:
    path = plan_path(out)
    if not path.exists():
        raise BgforgeError(f"{path} not found: {out} is not a bgforge output folder (run `bgforge build` first)")
    with open(path, "rb") as fh:
        first = fh.readline().rstrip(b"\n")
    if not first.endswith(_SHARDS_OPEN):
        raise BgforgeError(f"{path} was written by another bgforge version; re-run with --overwrite")
    return json.loads(first[: -len(_SHARDS_OPEN)] + b"}")


def iter_entries(out, names=None, with_samples: bool = True):
    """Shard entries in plan order, one line at a time; `names` restricts to those shards."""
    with open(plan_path(out), "rb") as fh:
        fh.readline()
        for line in fh:
            line = line.strip().rstrip(b",")
            if not line.startswith(b'{"name":"'):
                continue
            # keys are sorted, so the name comes first: skip other slices' shards without parsing them
            if names is not None and line[9:line.index(b'"', 9)].decode() not in names:
                continue
            yield ShardEntry.from_dict(json.loads(line), with_samples)


def load_plan(out, with_samples: bool = False) -> Plan:
    """The plan; by default only each shard's name, split and size (not its samples)."""
    return Plan.from_header(read_header(out), list(iter_entries(out, with_samples=with_samples)))


def save_or_check_plan(out, plan: Plan, overwrite: bool) -> Plan:
    """Write plan.json, or refuse one line if an existing plan was made differently."""
    path = plan_path(out)
    if path.exists() and not overwrite:
        old = read_header(out)
        compared = (("recipe", old["recipe_sha"], plan.recipe_sha), ("seed", old["seed"], plan.seed),
                    ("input set", old["inputs_sha"], plan.inputs_sha), ("layout", old.get("layout"), plan.layout))
        changed = [what for what, was, now in compared if was != now]
        if changed:
            raise BgforgeError(f"{out} holds a run with a different {', '.join(changed)}; "
                               "use another --out, or --overwrite to start fresh")
        if old["num_shards"] != len(plan.shards):
            raise BgforgeError(f"{out} was planned with a different --shard-size; use the same value or --overwrite")
        return plan
    write_plan(path, plan)
    return plan


def write_plan(path: Path, plan: Plan) -> None:
    """plan.json, written one shard entry at a time (no full copy of a million-sample plan in memory)."""
    with atomic_file(path) as fh:
        fh.write(json_bytes(plan.header())[:-1] + _SHARDS_OPEN + b"\n")
        for i, entry in enumerate(plan.shards):
            fh.write((b",\n" if i else b"") + json_bytes(entry.to_dict()))
        fh.write(b"\n]}\n")


def shard_tar(out, name: str) -> Path:
    return Path(out) / "shards" / f"{name}.tar"


def shard_stats(out, name: str) -> Path:
    return Path(out) / "shards" / f"{name}.stats.json"


def is_committed(out, name: str) -> bool:
    return shard_stats(out, name).exists() and shard_tar(out, name).exists()


def commit(out, name: str, stats: dict) -> None:
    write_atomic(shard_stats(out, name), json_bytes(stats))


def _shard_of_tmp(path: Path) -> str:
    """`.train-00003.tar.tmp123` or `.train-00003.stats.json.tmp123` -> `train-00003`."""
    base = path.name[1:].rsplit(".tmp", 1)[0]
    return base.removesuffix(".tar").removesuffix(".stats.json")


def clean_partial(out, names) -> int:
    """Remove temporary files that killed runs left for these shards; returns how many.

    Only the given shards: other slices of an array job may be writing theirs right now.
    """
    n = 0
    for p in (Path(out) / "shards").glob(".*.tmp*"):
        if _shard_of_tmp(p) in names:
            p.unlink(missing_ok=True)
            n += 1
    return n


def select_slice(plan: Plan, index: int, count: int) -> list:
    if count < 1 or not 0 <= index < count:
        raise BgforgeError(f"--shard-index must be in [0, --num-shards), got {index} of {count}")
    return [s for i, s in enumerate(plan.shards) if i % count == index]
