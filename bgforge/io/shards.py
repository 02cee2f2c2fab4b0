"""WebDataset tar shards, written deterministically and atomically.

Members are `<key>.<ext>` with fixed mtime/uid/mode, so the same samples give the same bytes.
A shard is written under a hidden temporary name and renamed when complete: a killed run
never leaves a truncated `.tar` behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Iterator

from ..errors import BgforgeError, SampleError
from .atomic import create_exclusive, safe_dir


def json_bytes(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _tarfile_header(name: str, size: int) -> bytes:
    """What tarfile writes before a member of ours: a regular file, mode 0644, ids, names and mtime 0."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")


def _ustar_header(name: bytes, size: int) -> bytes:
    """The same header built in one join: tarfile's own takes ~70 us a member, a third of the
    parent's time on a Waterbirds build. Only for names of <= 100 bytes (longer ones get a prefix)."""
    block = b"".join((name.ljust(100, b"\0"), b"0000644\0", b"0000000\0", b"0000000\0", b"%011o\0" % size,
                      b"00000000000\0", b"        ", tarfile.REGTYPE, b"\0" * 100, tarfile.POSIX_MAGIC,
                      b"\0" * 64)).ljust(tarfile.BLOCKSIZE, b"\0")  # device numbers: empty for a file
    # tarfile's checksum: the byte sum with the field read as spaces, written as 6 octal digits, NUL, space
    return block[:148] + b"%06o\0" % sum(block) + block[155:]


# Checked once against tarfile (whose header layout could change with Python): never a byte of difference
_FAST_HEADERS = _ustar_header(b"k_0.jpg", 12345) == _tarfile_header("k_0.jpg", 12345)


class ShardWriter:
    """Writes a USTAR tar byte for byte as tarfile would, hashing it on the way (the commit
    marker's sha256 then needs no second read of the tar)."""

    def __init__(self, final_path: str | Path, root: str | Path | None = None):
        """root: the output folder the tar lies in (no link on the way to it; io.atomic)."""
        self.final = Path(final_path)
        safe_dir(self.final.parent, root)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp{os.getpid()}")
        self._fh = os.fdopen(create_exclusive(self.tmp), "wb")
        self._hash, self._offset = hashlib.sha256(), 0

    @property
    def sha256(self) -> str:
        """The hex sha256 of the bytes written so far (of the whole tar once committed)."""
        return self._hash.hexdigest()

    def _emit(self, *parts: bytes) -> None:
        for part in parts:
            self._hash.update(part)
            self._fh.write(part)
            self._offset += len(part)

    def write(self, key: str, files: dict) -> None:
        for ext, data in files.items():
            if isinstance(data, (dict, list)):
                data = json_bytes(data)
            name = f"{key}.{ext}"
            encoded = name.encode(tarfile.ENCODING, "surrogateescape")
            header = (_ustar_header(encoded, len(data)) if _FAST_HEADERS and len(encoded) <= 100
                      else _tarfile_header(name, len(data)))
            self._emit(header, data, b"\0" * (-len(data) % tarfile.BLOCKSIZE))

    def _close_archive(self) -> None:
        """tarfile's end of archive: two zero blocks, then zeros up to a whole record."""
        self._emit(b"\0" * (2 * tarfile.BLOCKSIZE))
        self._emit(b"\0" * (-self._offset % tarfile.RECORDSIZE))

    def commit(self) -> Path:
        self._close_archive()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


# bgforge reads tars two ways, both here: `shard_members` (headers only: where each member lies,
# for random access by offset) and `iter_shard` (every member's bytes, in order).
def member_key(tar_path: str | Path, name: str) -> tuple[str, str]:
    """(key, ext) of a member named `<dir>/<key>.<ext>`, WebDataset's rule; anything else is one line."""
    base = name.rsplit("/", 1)[-1]
    key, dot, ext = base.partition(".")
    if not key or not dot or not ext:
        raise BgforgeError(f"{tar_path}: member {name[:80]!r} has no '<key>.<ext>' name (WebDataset's rule); "
                           "this is not a shard bgforge can read")
    return key, ext


def shard_members(path: str | Path) -> dict[str, dict[str, list[int]]]:
    """{key: {ext: [offset, size]}} of every file member, in the tar's order, read from the headers
    alone (no member data): the index behind random access by byte offset (`read_member`)."""
    members: dict[str, dict[str, list[int]]] = {}
    with tarfile.open(path, "r:") as tar:
        for m in tar:
            if m.isfile():
                key, ext = member_key(path, m.name)
                members.setdefault(key, {})[ext] = [m.offset_data, m.size]
    return members


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
