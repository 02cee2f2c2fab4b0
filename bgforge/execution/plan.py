"""The plan (OUT/plan.json) and the shard commit protocol.

A run first writes the deterministic list of shards derived from recipe, inputs and seed.
Executing a shard is a pure function of its plan entry. A shard is committed when
`.bgforge/shards/<name>.stats.json` exists: it is written (atomically) only after the tar (or the
layout's image files) is in place, so a resumed run skips committed shards and redoes everything
else. The markers live outside shards/, which holds only the tars a client globs. A layout that
writes image files records each one in the shard's journal before writing it, so a resume can
remove the temporaries a killed run left beside them and --overwrite can find every image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import BgforgeError
from ..io import strict_json
from ..io.atomic import atomic_file, pid_alive
from ..io.paths import SPLIT_RE
from ..io.shards import json_bytes
from ..records import LazySamples, Sample
from .plan_diff import plan_changes, refusal

PLAN_FORMAT = 1
SHARD_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}-[0-9]{5}")  # `<split>-NNNNN`: make_plan's names
MIN_SHARDS = 8  # per split by default: a DataLoader with up to 8 workers gets a shard each


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
        """An entry read back from plan.json (untrusted): its name must be `<split>-NNNNN` with a safe
        split, as make_plan names it, before it is ever joined into a path."""
        name, split = d.get("name"), d.get("split")
        if not (isinstance(name, str) and isinstance(split, str) and SPLIT_RE.fullmatch(split)
                and SHARD_NAME_RE.fullmatch(name) and name.rsplit("-", 1)[0] == split
                and isinstance(d.get("samples"), list)):
            raise ValueError(f"shard entry {str(name)[:80]!r} is not a plan entry bgforge writes")
        samples = [Sample.from_dict(x) for x in d["samples"]] if with_samples else []
        return cls(name, split, samples, d.get("size", len(d["samples"])))


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
    input_files: int = 0   # raw files considered; with shard_size, lets a refused resume say what changed
    shard_size: int = 0
    limit: int | None = None   # --limit N: a partial trial build (planners/limit.py); recorded only when set

    def header(self) -> dict:
        return {"format": PLAN_FORMAT, "bgforge_version": __version__, "recipe": self.recipe,
                "recipe_sha": self.recipe_sha, "seed": self.seed, "inputs": self.inputs,
                "inputs_sha": self.inputs_sha, "layout": self.layout, "skipped": self.skipped,
                "num_shards": len(self.shards), "input_files": self.input_files, "shard_size": self.shard_size,
                **({"limit": self.limit} if self.limit is not None else {})}

    @classmethod
    def from_header(cls, d, shards):
        limit = d.get("limit")
        return cls(d["recipe"], d["recipe_sha"], d["seed"], d["inputs"], d["inputs_sha"], d.get("layout", "shards"), shards,
                   d.get("skipped", []), d.get("input_files", 0), d.get("shard_size", 0),
                   limit if isinstance(limit, int) and not isinstance(limit, bool) else None)

    @property
    def num_samples(self) -> int:
        return sum(s.size for s in self.shards)


def inputs_fingerprint(planned) -> str:
    """Changes when the raw input set changes (files scanned, or the samples' keys), not with the seed."""
    h = hashlib.sha256()
    h.update(json.dumps(planned.inputs, sort_keys=True).encode())
    for name in sorted(planned.source_files) or sorted(s.key for s in planned.samples):
        h.update(name.encode("utf-8", "surrogatepass") + b"\n" + _file_stamp(name))
    return h.hexdigest()[:16]


def _file_stamp(name: str) -> bytes:
    """Size and mtime of an input file (a cheap content fingerprint: a replaced image changes it);
    empty for names that are not files (sample keys; `shard#key` members use their shard's)."""
    try:
        st = os.stat(name.split("#", 1)[0])
    except (OSError, ValueError):
        return b""
    return f"{st.st_size} {st.st_mtime_ns}\n".encode()


def shard_sizes(n: int, shard_size: int, min_shards: int = MIN_SHARDS, multiple: int = 1) -> list[int]:
    """Samples per shard of a split of n: at most `shard_size` each, at least `min_shards` shards
    (fewer only when the split has fewer runs), sizes as even as whole runs allow, bigger first.

    A run is `multiple` consecutive samples that must share a shard (BAP: one foreground's
    K + M composites); `shard_size` is rounded down to whole runs, at least one run.
    """
    runs = -(-n // multiple)
    per_shard = max(1, shard_size // multiple)
    count = max(1, -(-runs // per_shard), min(max(1, min_shards), runs))
    base, extra = divmod(runs, count)
    sizes = [(base + (i < extra)) * multiple for i in range(count)]
    sizes[-1] -= sum(sizes) - n  # an incomplete last run
    return sizes


def make_plan(recipe, planned, seed: int, shard_size: int, layout: str, min_shards: int = MIN_SHARDS) -> Plan:
    multiple = max(1, int(planned.shard_multiple))
    shards, by_split = [], {}
    if isinstance(planned.samples, LazySamples):  # rows stay rows: Samples are built per shard as it is written
        by_split = planned.samples.by_split()
    else:
        for s in planned.samples:
            by_split.setdefault(s.split, []).append(s)
    for split, items in by_split.items():
        start = 0
        for n, size in enumerate(shard_sizes(len(items), shard_size, min_shards, multiple)):
            shards.append(ShardEntry(f"{split}-{n:05d}", split, items[start:start + size]))
            start += size
    return Plan(recipe.to_dict(), recipe.sha(), seed, planned.inputs, inputs_fingerprint(planned), layout, shards,
                input_files=len(planned.source_files) or len(planned.samples), shard_size=shard_size)


def plan_path(out) -> Path:
    return Path(out) / "plan.json"


# plan.json is one JSON document laid out one shard entry per line, so the header and any
# shard can be read without parsing (or holding) a million-sample plan.
_SHARDS_OPEN = b',"shards":['


def _damaged(out, what: str) -> BgforgeError:
    return BgforgeError(f"{plan_path(out)} is damaged ({what}); re-run the build with --overwrite to plan it anew")


def read_header(out) -> dict:
    path = plan_path(out)
    if not path.exists():
        raise BgforgeError(f"{path} not found: {out} is not a bgforge output folder (run `bgforge build` first)")
    with open(path, "rb") as fh:
        first = fh.readline().rstrip(b"\n")
    if not first.endswith(_SHARDS_OPEN):
        raise BgforgeError(f"{path} was not written by this bgforge version (or is damaged); re-run with --overwrite")
    try:
        header = strict_json.loads(first[: -len(_SHARDS_OPEN)] + b"}")
    except ValueError as exc:
        raise _damaged(out, f"its header is not bgforge's JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("num_shards"), int) or \
            not isinstance(header.get("recipe"), dict):
        raise _damaged(out, "its header lacks the recipe or the shard count")
    return header


def _entry_lines(out):
    """Each shard entry's line (its JSON, as written) in plan order; raises BgforgeError, once read to
    the end, when the file does not close as write_plan closes it (a plan cut short)."""
    closed = False
    with open(plan_path(out), "rb") as fh:
        fh.readline()
        for n, line in enumerate(fh, 2):
            line = line.strip()
            if closed and line:
                raise _damaged(out, f"text after its end, line {n}")
            if line == b"]}":
                closed = True
            elif line:
                yield line.removesuffix(b",")
    if not closed:
        raise _damaged(out, "it is cut short: its last line is not ']}'")


def _parse_entry(out, line: bytes, with_samples: bool) -> ShardEntry:
    try:
        return ShardEntry.from_dict(strict_json.loads(line, max_depth=None), with_samples)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _damaged(out, f"{exc}") from None


def iter_entries(out, names=None, with_samples: bool = True):
    """Shard entries in plan order, one line at a time; `names` restricts to those shards."""
    for line in _entry_lines(out):
        # keys are sorted, so the name comes first: skip other slices' shards without parsing them
        if names is not None and line.startswith(b'{"name":"') and \
                line[9:line.find(b'"', 9)].decode(errors="replace") not in names:
            continue
        yield _parse_entry(out, line, with_samples)


def load_plan(out, with_samples: bool = False) -> Plan:
    """The plan; by default only each shard's name, split and size (not its samples). A plan whose
    shard count is not its header's, or with a name twice, is refused (exit 2), never finalized."""
    header = read_header(out)
    shards = list(iter_entries(out, with_samples=with_samples))
    if len(shards) != header["num_shards"]:
        raise _damaged(out, f"it lists {len(shards)} shards, its header says {header['num_shards']}")
    if len({s.name for s in shards}) != len(shards):
        raise _damaged(out, "a shard is listed twice")
    return Plan.from_header(header, shards)


def save_or_check_plan(out, plan: Plan, overwrite: bool) -> Plan:
    """Write plan.json, or refuse one line if an existing plan was made differently.

    An existing plan.json is untrusted: besides its header, every shard entry must be, byte for
    byte, the entry recomputed from the recipe and inputs (an edited entry could name any file to
    read, or a path outside --out); a difference names the shard and is exit 2.
    """
    path = plan_path(out)
    remove_dead_temporaries(path)
    if path.exists() and not overwrite:
        changed = plan_changes(read_header(out), plan.header())
        if changed:
            raise BgforgeError(refusal(out, changed))
        _check_entries(out, plan)
        return plan
    write_plan(path, plan)
    return plan


def _check_entries(out, plan: Plan) -> None:
    lines = _entry_lines(out)
    for entry in plan.shards:
        line = next(lines, None)
        if line != json_bytes(entry.to_dict()):
            what = "is missing" if line is None else "differs from the plan recomputed from the recipe and inputs"
            raise BgforgeError(f"{plan_path(out)}: shard {entry.name} {what} (the file was edited or damaged); "
                               "re-run with --overwrite to rebuild, or restore plan.json")
    extra = next(lines, None)
    if extra is not None:
        raise BgforgeError(f"{plan_path(out)} lists more shards than the recipe and inputs give; "
                           "re-run with --overwrite to rebuild")


def remove_dead_temporaries(path: Path) -> None:
    """`.plan.json.tmp<pid>` files of writers that no longer run (a run killed while writing its plan)."""
    for tmp in path.parent.glob(f".{path.name}.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def write_plan(path: Path, plan: Plan) -> None:
    """plan.json, written one shard entry at a time (no full copy of a million-sample plan in memory)."""
    with atomic_file(path, root=path.parent) as fh:
        fh.write(json_bytes(plan.header())[:-1] + _SHARDS_OPEN + b"\n")
        for i, entry in enumerate(plan.shards):
            fh.write((b",\n" if i else b"") + json_bytes(entry.to_dict()))
        fh.write(b"\n]}\n")


def check_slice(index: int, count: int) -> None:
    """--slice-index/--slice-count name a real slice (checked before planning: 0 slices is a usage error)."""
    if count < 1:
        raise BgforgeError(f"--slice-count must be >= 1, got {count}")
    if not 0 <= index < count:
        raise BgforgeError(f"--slice-index must be in [0, --slice-count), got {index} of {count}")


def select_slice(plan: Plan, index: int, count: int) -> list:
    check_slice(index, count)
    return [s for i, s in enumerate(plan.shards) if i % count == index]
