"""Random access to the samples of a bgforge output (e.g. inpainted backgrounds) by key.

Three stores, one interface (`Store`): ShardStore scans a shard folder's tar headers once,
IndexedStore (key_index.py) reads the key index a phase stored, FolderStore serves a plain
image folder. Stages take any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import SampleError
from ..io.images import decode, sample_image
from ..io.shards import read_member
from ..records import Sample
from .folder import load_folder
from .shards import is_shard_dir, load_shards


class Store(Protocol):
    def __contains__(self, key: str) -> bool: ...

    def has_member(self, key: str, ext: str) -> bool: ...

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes: ...

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray: ...


class _Store:
    """key -> record of one folder; the index is built once per worker."""

    def __init__(self, folder: str | Path, records: list[Sample]):
        self.folder = Path(folder)
        self.records = {s.key: s for s in records}

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def meta(self, key: str) -> dict:
        return self.records[key].meta

    def has_member(self, key: str, ext: str) -> bool:
        return key in self.records and ext in self.records[key].inputs.get("members", {})


class ShardStore(_Store):
    """The members of a shard folder (an earlier bgforge output), by key."""

    def __init__(self, folder: str | Path):
        super().__init__(folder, load_shards(folder))

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes:
        if key not in self.records:
            raise SampleError(stage, f"no sample {key!r} in {self.folder}")
        return read_member(self.records[key].inputs, ext, stage)

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray:
        members = self.records[key].inputs["members"] if key in self.records else {}
        ext = next((e for e in ("png", "jpg") if e in members), "png")
        return decode(self.read(key, ext, stage), mode)


class FolderStore(_Store):
    """The same interface over a plain image folder (+ manifest): key -> image file."""

    def __init__(self, folder: str | Path, manifest: str | Path | None = None):
        super().__init__(folder, load_folder(folder, manifest))

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes:
        raise SampleError(stage, f"{self.folder} is an image folder: it has no .{ext} members (use a bgforge output)")

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray:
        if key not in self.records:
            raise SampleError(stage, f"no image with key {key!r} in {self.folder}")
        arr, raw, _ = sample_image(self.records[key].inputs, stage)
        return arr if mode == "RGB" else decode(raw, mode)


def open_store(path: str | Path, manifest: str | Path | None = None) -> ShardStore | FolderStore:
    """A shard folder's store when `path` holds shards, else an image folder's."""
    return ShardStore(path) if is_shard_dir(path) else FolderStore(path, manifest)
