"""Random access to the samples of a bgforge output (e.g. inpainted backgrounds) by key."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.images import sample_image
from ..sources.shards import is_shard_dir, load_shards, read_member


class ShardStore:
    """key -> members of a shard folder; the index is built once per worker."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.records = {s.key: s for s in load_shards(self.folder)}

    def __contains__(self, key) -> bool:
        return key in self.records

    def meta(self, key) -> dict:
        return self.records[key].meta

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes:
        if key not in self.records:
            raise SampleError(stage, f"no sample {key!r} in {self.folder}")
        return read_member(self.records[key].inputs, ext, stage)

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray:
        members = self.records[key].inputs["members"] if key in self.records else {}
        ext = next((e for e in ("png", "jpg") if e in members), "png")
        with Image.open(io.BytesIO(self.read(key, ext, stage))) as im:
            return np.asarray(im.convert(mode))


class FolderStore:
    """The same interface over a plain image folder (+ manifest): key -> image file."""

    def __init__(self, folder, manifest=None):
        from ..sources.folder import load_folder

        self.folder = Path(folder)
        self.records = {s.key: s for s in load_folder(folder, manifest)}

    def __contains__(self, key) -> bool:
        return key in self.records

    def meta(self, key) -> dict:
        return self.records[key].meta

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes:
        raise SampleError(stage, f"{self.folder} is an image folder: it has no .{ext} members (use a bgforge output)")

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray:
        if key not in self.records:
            raise SampleError(stage, f"no image with key {key!r} in {self.folder}")
        return sample_image(self.records[key].inputs, stage)[0]


def open_store(path, manifest=None):
    return ShardStore(path) if is_shard_dir(path) else FolderStore(path, manifest)
