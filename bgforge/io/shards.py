"""WebDataset tar shards, written deterministically and atomically.

Members are `<key>.<ext>` with fixed mtime/uid/mode, so the same samples give the same bytes.
A shard is written under a hidden temporary name and renamed when complete: a killed run
never leaves a truncated `.tar` behind.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..errors import SampleError


def json_bytes(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


class ShardWriter:
    def __init__(self, final_path: str | Path):
        self.final = Path(final_path)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp{os.getpid()}")
        self._fh = open(self.tmp, "wb")
        self._tar = tarfile.open(fileobj=self._fh, mode="w", format=tarfile.USTAR_FORMAT)

    def write(self, key: str, files: dict) -> None:
        for ext, data in files.items():
            if isinstance(data, (dict, list)):
                data = json_bytes(data)
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))

    def commit(self) -> Path:
        self._tar.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self._tar.close()
            self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write through a hidden temporary file that replaces `path` only when the block succeeds;
    a killed or failed writer leaves the old file (or none), never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def iter_shard(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield (key, {ext: bytes}) from a shard in order; our shards keep a sample's members together."""
    current, files = None, {}
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            base = os.path.basename(member.name)
            key, ext = base.split(".", 1)
            if key != current and current is not None:
                yield current, files
                files = {}
            current = key
            files[ext] = tar.extractfile(member).read()
    if current is not None:
        yield current, files


def read_member(inputs: dict, ext: str, stage: str = "read") -> bytes:
    """The bytes of member `.ext` of a shard record, read by its byte offset (no tar scan)."""
    try:
        off, size = inputs["members"][ext]
    except KeyError:
        raise SampleError(stage, f"shard member .{ext} missing in {inputs.get('shard')}") from None
    with open(inputs["shard"], "rb") as fh:
        fh.seek(off)
        return fh.read(size)
