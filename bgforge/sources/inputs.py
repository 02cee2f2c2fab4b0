"""The input of a stage command: a folder of images (with an optional manifest) or the shards
of an earlier bgforge stage."""

from __future__ import annotations

from ..errors import BgforgeError
from ..records import Sample
from .folder import load_folder
from .shards import is_shard_dir, load_shards


def load_input(params: dict, skipped: list | None = None) -> list[Sample]:
    """Samples of `params["input"]` (and `params["manifest"]` for an image folder), in input order;
    `skipped` collects the error records of manifest boxes that were dropped."""
    src = params.get("input")
    if not src:
        raise BgforgeError("no input given: pass --input DIR (a folder of images, or an earlier bgforge stage's output)")
    if is_shard_dir(src):
        if params.get("manifest"):
            raise BgforgeError(f"--manifest applies to image folders, but {src} holds bgforge shards")
        return load_shards(src)
    return load_folder(src, params.get("manifest"), skipped=skipped)


def input_names(samples: list[Sample]) -> list[str]:
    """One name per input sample, for the plan's input fingerprint: its image file or `shard#key`."""
    return [s.inputs.get("image") or f"{s.inputs['shard']}#{s.key}" for s in samples]
