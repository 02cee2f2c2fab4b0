"""Random access to the samples of a bgforge output (e.g. inpainted backgrounds) by key."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..sources.shards import load_shards, read_member


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
