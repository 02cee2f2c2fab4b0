"""The shard commit protocol: what makes a shard committed, and the writer that commits it.

A shard is committed when `.bgforge/shards/<name>.stats.json` exists: `ShardCommitter` writes it
(atomically) only after the tar (or the layout's image files) is in place, so a resumed run skips
committed shards and redoes everything else. The markers live outside shards/, which holds only
the tars a client globs. A layout that writes image files records each one in the shard's journal
before writing it, so a resume can remove the temporaries a killed run left beside them and
--overwrite can find every image. plan.py holds the plan these shards come from.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..chain import Chain
from ..errors import BgforgeError
from ..io import strict_json
from ..io.atomic import atomic_file, open_nofollow, safe_dir, write_atomic
from ..io.layout import OutputLayout, as_layout, bookkeeping_dir, writes_tars
from ..io.paths import check_relative, inside
from ..io.shards import ShardWriter, json_bytes
from ..records import Failure


def shard_tar(out, name: str) -> Path:
    return Path(out) / "shards" / f"{name}.tar"


def stats_dir(out) -> Path:
    """Where the commit markers (with each shard's metadata rows) live: out of shards/, which holds only tars."""
    return bookkeeping_dir(out) / "shards"


def shard_stats(out, name: str) -> Path:
    return stats_dir(out) / f"{name}.stats.json"


# A commit marker is one JSON document laid out in two parts: a first line with every field but
# the rows and error records (shard, split, samples, errors, seconds, tar size and sha256), then
# those. "Is it committed?" and `bgforge status` read the first line (and the last bytes, to tell a
# complete marker), so a build end parses each marker's rows once: in finalize (`read_marker`).
_MARKER_END = b"]}\n"  # the rows list closes the document


def commit(out, name: str, stats: dict) -> None:
    """Write the shard's commit marker (atomically): `stats`, "rows" included, head line first."""
    body = {k: stats[k] for k in ("error_records", "rows") if k in stats}  # sorted: rows last
    head = {k: v for k, v in stats.items() if k not in body}
    with atomic_file(shard_stats(out, name), root=out) as fh:
        fh.write(json_bytes(head)[:-1] + b",\n")
        fh.write(memoryview(json_bytes(body))[1:])
        fh.write(b"\n")


def _marker_head(path: Path) -> dict | None:
    """The marker without its rows and error records; None when it is cut short or not a marker.
    Raises OSError (no marker) or ValueError (garbage) like json.loads."""
    with open(path, "rb") as fh:
        first = fh.readline()
        if not first.endswith(b",\n"):  # written before the head line existed: one line, rows inside
            head = strict_json.loads(first, max_depth=None)
            if not isinstance(head, dict) or not isinstance(head.pop("rows", None), list):
                return None
            head.pop("error_records", None)
            return head
        fh.seek(-len(_MARKER_END), os.SEEK_END)
        if fh.read() != _MARKER_END:
            return None
    head = strict_json.loads(first[:-2] + b"}")
    return head if isinstance(head, dict) else None


def committed_stats(out, name: str, layout: str = "shards", verify: bool = False) -> dict | None:
    """The shard's commit marker without its rows (samples, errors, seconds, tar size and sha256)
    when the shard is committed; None when it is pending.

    Committed: the marker is complete and its head line parses, and the tar (when the layout writes
    one) has the recorded size (`verify`: sha256). A shard damaged after its commit (truncated tar,
    garbage or cut-short marker) counts as pending: it is rebuilt.
    """
    try:
        stats = _marker_head(shard_stats(out, name))
        size = shard_tar(out, name).stat().st_size if writes_tars(layout) else None
    except (OSError, ValueError):
        return None
    if stats is None or stats.get("shard", name) != name:  # a marker copied from another shard is not this one's
        return None
    if size is None:
        return stats
    if stats.get("tar_size", size) != size:  # markers from before sizes were recorded carry none
        return None
    if verify and stats.get("tar_sha256") is not None:
        from ..io.hashing import sha256_file

        if stats["tar_sha256"] != sha256_file(shard_tar(out, name)):
            return None
    return stats


def is_committed(out, name: str, layout: str = "shards", verify: bool = False) -> bool:
    """Whether the shard is committed (see `committed_stats`)."""
    return committed_stats(out, name, layout, verify) is not None


def read_marker(out, name: str) -> dict:
    """A committed shard's whole marker, rows and error records included: finalize's one read of it."""
    path = shard_stats(out, name)
    try:
        marker = strict_json.loads(path.read_bytes(), max_depth=None)
        if not isinstance(marker, dict) or not isinstance(marker.get("rows"), list) or \
                not all(isinstance(r, dict) for r in marker["rows"]):
            raise ValueError("not a commit marker")
        return marker
    except ValueError:  # its head line and end are intact (it counted as committed), its middle is not
        raise BgforgeError(f"the commit marker {path} is damaged; delete it and re-run the build "
                           f"to redo shard {name}") from None


def _shard_of_tmp(path: Path) -> str:
    """`.train-00003.tar.tmp123` or `.train-00003.stats.json.tmp123` -> `train-00003`."""
    base = path.name[1:].rsplit(".tmp", 1)[0]
    return base.removesuffix(".tar").removesuffix(".stats.json")


def image_journal(out, name: str) -> Path:
    """`.bgforge/shards/<name>.images`: the image files (relative to OUT) a run of this shard wrote or
    was writing, one a line, each recorded before it is written; removed once the shard commits."""
    return stats_dir(out) / f"{name}.images"


def journaled_images(out, name: str) -> list[str]:
    try:
        return [line for line in image_journal(out, name).read_text().splitlines() if line]
    except (OSError, UnicodeDecodeError):
        return []


def image_temporaries(out, images: list[str]) -> list[Path]:
    """The `.<file>.tmp<pid>` files (io.atomic.atomic_file) that killed writers of these images left;
    each folder is listed once, however many images it holds."""
    by_folder: dict[Path, set[str]] = {}
    for rel in images:
        try:
            path = inside(out, rel)
        except BgforgeError:
            continue  # a journal line that would lead outside --out is never acted on
        by_folder.setdefault(path.parent, set()).add(path.name)
    found = []
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            image, _, pid = e.name[1:].rpartition(".tmp")
            if e.name.startswith(".") and pid.isdigit() and image in names:
                found.append(Path(e.path))
    return found


def clean_partial(out, names) -> int:
    """Remove temporary files that killed runs left for these shards (tars, markers, layout images);
    returns how many. Only the given shards: other slices of an array job may be writing theirs right now.
    """
    n = 0
    for p in [*(Path(out) / "shards").glob(".*.tmp*"), *stats_dir(out).glob(".*.tmp*")]:
        if _shard_of_tmp(p) in names:
            p.unlink(missing_ok=True)
            n += 1
    for name in names:
        for p in image_temporaries(out, journaled_images(out, name)):
            p.unlink(missing_ok=True)
            n += 1
    return n


class ShardCommitter:
    """Collects one shard's outputs in plan order and commits it (tar rename or image files, then
    the stats marker). The layout decides whether a tar is written and where image files go."""

    def __init__(self, out, entry, layout: str | OutputLayout = "shards"):
        self.out, self.entry, self.layout = Path(out), entry, as_layout(layout)
        self.writer = ShardWriter(shard_tar(out, entry.name), root=out) if self.layout.tars else None
        self.rows, self.errors, self.seconds = [], [], 0.0
        self.journal = None  # image_journal(out, name), opened on the first image file this layout writes

    def add(self, outputs, seconds: float = 0.0) -> None:
        self.seconds += seconds
        for o in outputs:
            if isinstance(o, Failure):
                self.errors.append(o.to_dict())
                continue
            row = {**o.meta, "key": o.key, "shard": ""}
            if self.writer is not None:
                self.writer.write(o.key, {**o.files, "json": o.meta})
                row["shard"] = f"shards/{self.entry.name}.tar"
            rel = self.layout.image_path(self.entry.split, o.key, o.image_ext, o.meta, o.folder_path)
            if rel is not None:
                self._record(rel)
                write_atomic(self.out / check_relative(rel, "output path"), o.files[o.image_ext], root=self.out)
                row["file_name"] = rel
                beside = self.layout.side_files(rel, o.files)   # whac-a-mole: the per-image mask files
                for member, side in beside.items():
                    self._record(side)
                    write_atomic(self.out / check_relative(side, "output path"), o.files[member], root=self.out)
                if beside:
                    row["side_files"] = list(beside.values())
            self.rows.append(row)

    def commit(self) -> dict:
        if self.writer is not None:
            self.writer.commit()
        by_stage = {}
        for e in self.errors:
            by_stage.setdefault(e["stage"], {}).setdefault(e["error_type"], 0)
            by_stage[e["stage"]][e["error_type"]] += 1
        stats = {"shard": self.entry.name, "split": self.entry.split, "samples": len(self.rows),
                 "errors": len(self.errors), "errors_by_stage": by_stage, "seconds": round(self.seconds, 3),
                 "rows": self.rows, "error_records": self.errors}
        if self.writer is not None:  # what resume (size) and `status --verify` (sha256) check the tar against
            tar = shard_tar(self.out, self.entry.name)
            stats.update(tar_size=tar.stat().st_size, tar_sha256=self.writer.sha256)  # hashed as written
        commit(self.out, self.entry.name, stats)
        if self.journal is not None:  # the marker's rows name the images now
            self.journal.close()
            image_journal(self.out, self.entry.name).unlink(missing_ok=True)
        return stats

    def _record(self, rel: str) -> None:
        """Journal an image before writing it: a resume after a kill finds its temporary file by it."""
        if self.journal is None:
            path = image_journal(self.out, self.entry.name)
            safe_dir(path.parent, self.out)
            fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            self.journal = open(fd, "w", buffering=1)  # line-buffered: each line reaches the file at once
        self.journal.write(rel + "\n")

    def abort(self) -> None:
        if self.journal is not None:
            self.journal.close()  # kept: --overwrite removes the images it names
        if self.writer is not None:
            self.writer.abort()


def run_shard(out, entry, chain: Chain, layout: str | OutputLayout, chunk: int) -> dict:
    """Execute and commit one plan entry in this process, `chunk` samples per chain call (the unit a Ray task runs)."""
    committer = ShardCommitter(out, entry, layout)
    try:
        for j in range(0, len(entry.samples), chunk):
            t0 = time.perf_counter()
            outputs = chain(entry.samples[j:j + chunk])
            committer.add(outputs, time.perf_counter() - t0)
        return committer.commit()
    except BaseException:
        committer.abort()
        raise
