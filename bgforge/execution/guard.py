"""What a build may write and delete: the --out folder checks, --overwrite's removal list, the lock.

A batch tool on a shared cluster must never touch data it did not write: --out may not overlap
an input, a non-empty folder that is not an earlier bgforge run is refused, --overwrite deletes
only the files an earlier run names (plan, manifest, dataset card, shards, folder/imagefolder
images and their per-split metadata.csv, reports, OUT/.bgforge/) and only once the new plan
succeeded, and two non-sliced runs on one --out cannot race.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from ..errors import BgforgeError
from ..io import strict_json
from ..io.atomic import open_nofollow, safe_dir
from ..io.layout import BOOKKEEPING, REPORT_HTML
from ..io.layout_urbancars import row_files
from ..io.paths import check_relative, check_splits, inside, relation
from . import commit as commitmod
from . import plan as planmod

F = TypeVar("F", bound=Callable[..., Any])

LOCK_NAME = "lock"
# Files a finished run writes at the top of --out (finalize and the planners' reports); the rest of
# bgforge's own files (markers, previews, the HSI background index) live in OUT/.bgforge/.
TOP_FILES = ("plan.json", "manifest.json", "metadata.csv", "groups.json", "errors.jsonl", "croissant.json",
             "RELEASE_v1.0.txt", "spurious.json", "spurious.md", "README.md", REPORT_HTML,
             "classes.json")


def input_roots(inputs: dict) -> list[Path]:
    """The existing files and folders a plan's `inputs` name (roots, --input, manifests)."""
    found = []
    for value in inputs.values():
        if isinstance(value, (str, Path)) and value and Path(value).exists():
            found.append(Path(value))
    return found


def is_bgforge_output(out: Path) -> bool:
    return planmod.plan_path(out).exists() or (out / BOOKKEEPING).is_dir()


# Folders bgforge writes, empties (--overwrite) and locks in: a symlink at any of them would send those
# writes and deletions outside --out, so each is refused when it is a link (lstat, never followed).
OWN_FOLDERS = (BOOKKEEPING, "shards", f"{BOOKKEEPING}/shards", f"{BOOKKEEPING}/preview")


def check_bookkeeping(out: Path) -> None:
    """Refuse a symlinked OUT/.bgforge, OUT/shards (or the folders inside .bgforge) before any use."""
    for rel in OWN_FOLDERS:
        path = Path(out) / rel
        if path.is_symlink():
            raise BgforgeError(f"{path} is a symbolic link; bgforge writes, locks and deletes there, so it must be "
                               f"a real folder inside --out: remove the link (or pass another --out)")


def check_out(out: Path, inputs: dict) -> None:
    """Refuse an --out that overlaps an input, or a foreign non-empty folder (before anything is written)."""
    check_bookkeeping(out)
    for root in input_roots(inputs):
        rel = relation(out, root)
        if rel is not None:
            how = {"equal": "is", "inside": "lies inside", "contains": "contains"}[rel]
            raise BgforgeError(f"--out {out} {how} the input {root}; write the output to a separate folder")
    if out.is_dir() and not is_bgforge_output(out) and any(out.iterdir()):
        raise BgforgeError(f"--out {out} is a non-empty folder that no bgforge run wrote; pass a new or empty folder")


@contextlib.contextmanager
def locked(out: Path, sliced: bool) -> Iterator[None]:
    """An advisory flock on OUT/.bgforge/lock for the whole run: exclusive for a non-sliced run,
    shared for array slices (they run side by side, but never beside a non-sliced run)."""
    path = out / BOOKKEEPING / LOCK_NAME
    safe_dir(path.parent, out)
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if sliced else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BgforgeError(f"another bgforge run is writing {out} right now; wait for it to end "
                               "(or use --slice-index/--slice-count for concurrent slices)") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def lock_held(out: Path) -> bool:
    """Whether a live process holds OUT/.bgforge/lock (a build or finalize is running): a flock ends
    with its holder, so a held lock means a living holder. Read from /proc/locks, which takes no
    lock itself; elsewhere a non-blocking probe that lets go at once."""
    path = Path(out) / BOOKKEEPING / LOCK_NAME
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        with open("/proc/locks") as fh:
            table = fh.read()
    except OSError:
        table = None
    if table is not None:
        for line in table.splitlines():
            fields = line.split()
            if "FLOCK" in fields and "->" not in fields:  # "->": a waiter, not a holder
                where = next((f for f in fields if f.count(":") == 2), "")
                if where.rsplit(":", 1)[-1] == str(st.st_ino):
                    return True
        return False
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _unlink(out: Path, rel: str) -> Path | None:
    """Remove out/rel when it is a file (or a link: the link itself, never its target) in a folder
    inside --out; returns that folder when something was removed."""
    try:
        rel = check_relative(rel, "recorded path")
        head, _, name = rel.rpartition("/")
        folder = inside(out, head) if head else Path(out).resolve()
    except BgforgeError:
        return None  # a recorded path that would lead outside --out is never deleted
    path = folder / name
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return None
        path.unlink()
    except OSError:
        return None
    return folder


def _stats_rows(out: Path, name: str) -> list:
    try:
        rows = strict_json.loads(commitmod.shard_stats(out, name).read_bytes(), max_depth=None).get("rows", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _written_by(out: Path) -> list[str]:
    """Paths (relative to `out`) an earlier run in `out` wrote, as its plan and outputs name them."""
    names = list(TOP_FILES)
    try:
        plan = planmod.load_plan(out)
    except (BgforgeError, OSError, ValueError, KeyError):
        return names + _unplanned(out, set())
    if plan.layout == "imagefolder":  # finalize's metadata.SplitTables
        names += sorted({f"{entry.split}/metadata.csv" for entry in plan.shards})
    for entry in plan.shards:
        names.append(str(commitmod.shard_tar(out, entry.name).relative_to(out)))
        names += [f for r in _stats_rows(out, entry.name) for f in row_files(r)]  # image + files beside it
        images = commitmod.journaled_images(out, entry.name)  # a shard that did not commit
        names += images + [str(p.relative_to(out.resolve())) for p in commitmod.image_temporaries(out, images)]
    names += [f"shards/{p.name}" for p in (out / "shards").glob(".*.tmp*")]
    return names + _unplanned(out, {entry.name for entry in plan.shards})


def _unplanned(out: Path, planned: set) -> list[str]:
    """Shards bgforge wrote that the plan does not name (a plan lost or replaced by an earlier, killed
    --overwrite): each marker's or journal's shard (its tar, its images) and each `<split>-NNNNN.tar`
    in OUT/shards, a folder that holds only bgforge's tars."""
    names, shards = [], set()
    for p in commitmod.stats_dir(out).glob("*"):
        shard = p.name.removesuffix(".stats.json").removesuffix(".images")
        if shard != p.name and planmod.SHARD_NAME_RE.fullmatch(shard):
            shards.add(shard)
    for p in (out / "shards").glob("*.tar"):
        if planmod.SHARD_NAME_RE.fullmatch(p.stem) and not p.is_symlink():
            shards.add(p.stem)
    for name in sorted(shards - planned):
        names.append(f"shards/{name}.tar")
        names += [f for r in _stats_rows(out, name) for f in row_files(r)]
        names += commitmod.journaled_images(out, name)
    return names


def previous_files(out: Path, phase_folders: Iterable[str] = ()) -> list[str]:
    """What --overwrite removes, relative to `out`: the files the old plan, its markers and journals
    name, and the same for each of the recipe's phase folders (e.g. `backgrounds`: earlier runs of
    their own). Any other dataset nested in `out` (e.g. OUT/seed1 built by another command) is not named."""
    out = Path(out)
    if not is_bgforge_output(out):
        return []
    check_bookkeeping(out)
    names = _written_by(out)
    for folder in phase_folders:
        child = out / check_relative(folder, "phase folder")
        if child.is_dir() and not child.is_symlink() and is_bgforge_output(child):
            check_bookkeeping(child)
            names += [f"{folder}/{rel}" for rel in _written_by(child)]
    return names


def remove_files(out: Path, names: Iterable[str], phase_folders: Iterable[str] = (), keep: Iterable[str] = (),
                 progress: Callable[[int], None] | None = None) -> None:
    """Remove `names` (previous_files) and everything in OUT/.bgforge (and the phase folders' .bgforge)
    but the lock and `keep`; then the folders those removals emptied, and only those.
    `progress(i)` is called after each removal (a test hook stops a run half way)."""
    out = Path(out)
    if out.is_symlink():
        out = out.resolve()
    keep = set(keep)
    emptied = {out / "shards"}
    for i, rel in enumerate(names):
        parent = None if rel in keep else _unlink(out, rel)
        if parent is not None:
            emptied.add(parent)
        if progress is not None:
            progress(i)
    for folder in ("", *phase_folders):
        base = out / check_relative(folder, "phase folder") if folder else out
        if base.is_symlink():
            continue
        book = base / BOOKKEEPING
        for p in book.iterdir() if book.is_dir() and not book.is_symlink() else ():
            if p.name == LOCK_NAME or f"{folder}/{BOOKKEEPING}/{p.name}".lstrip("/") in keep:
                continue  # the lock is held by this run
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        emptied.add(base / "shards")
    _remove_emptied(out.resolve(), emptied)


def clear_previous(out: Path, phase_folders: Iterable[str] = ()) -> None:
    """Remove what an earlier bgforge run wrote in `out` (previous_files), nothing else, at once.
    A build's --overwrite goes through execution/overwrite.py instead: a transaction a kill cannot split."""
    phase_folders = list(phase_folders)
    remove_files(out, previous_files(out, phase_folders), phase_folders)


def _remove_emptied(out: Path, folders: set[Path]) -> None:
    """Remove each folder (and its parents up to `out`) that is now empty: only folders bgforge's
    removals emptied, never an empty folder the user made elsewhere in `out`."""
    for folder in sorted({f.resolve() for f in folders}, key=lambda p: -len(p.parts)):
        while folder != out and out in folder.parents and not folder.is_symlink():
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                break
            folder = folder.parent


# The locks a build holds, released when its call ends (one ExitStack per nested build call:
# a multi-phase build locks each phase folder as it runs).
_held: list[contextlib.ExitStack] = []


def releases_locks(build_fn: F) -> F:
    """Decorate `build` so the lock `start` takes is released when the call returns or raises."""

    @functools.wraps(build_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            _held.append(stack)
            try:
                return build_fn(*args, **kwargs)
            finally:
                _held.pop()

    return wrapper  # type: ignore[return-value]


def start(out: Path, planned: Any, *, sliced: bool) -> None:
    """Called once the new plan succeeded, before anything is written: check the split names and
    --out, create it and take the lock. --overwrite's removal comes next, with the new plan
    (execution/overwrite.record_plan)."""
    check_splits(planned.samples)
    for phase in planned.prerequisites:
        check_splits(phase.samples)
    check_out(out, planned.inputs)
    out.mkdir(parents=True, exist_ok=True)
    _held[-1].enter_context(locked(out, sliced))
