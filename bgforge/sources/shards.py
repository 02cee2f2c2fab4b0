"""The shards of an earlier bgforge stage as input records.

Each record points at its members by byte offset inside the tar, so a worker reads exactly
the bytes it needs without scanning the shard.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from ..errors import BgforgeError
from ..io import strict_json
from ..io.shards import shard_members
from ..records import Sample
from ..sample_meta import split_of


def is_shard_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "shards").is_dir() and any((p / "shards").glob("*.tar"))


MAX_JSON_MEMBER = 1 << 20  # a sample's json member; bgforge's own are a few hundred bytes


def load_shards(folder: str | Path) -> list[Sample]:
    """Records of every sample in `folder`/shards/*.tar. The tars are untrusted input: a tar that
    is not one, a symlink leading out of the folder, a member without a key, a json member that is
    not a JSON object (or nests past any real record) is one line and exit 2, never a traceback."""
    folder = Path(folder)
    tars = sorted((folder / "shards").glob("*.tar"))
    if not tars:
        raise BgforgeError(f"{folder / 'shards'} holds no .tar shards")
    samples = []
    for tar_path in tars:
        _check_inside(folder, tar_path)
        try:
            samples += _shard_samples(tar_path)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BgforgeError(f"{tar_path} is not a readable tar ({exc}); remove it or rebuild its stage") from None
    return samples


def _check_inside(folder: Path, tar_path: Path) -> None:
    if not tar_path.resolve().is_relative_to(folder.resolve()) or not tar_path.resolve().is_file():
        raise BgforgeError(f"{tar_path} is a link to {tar_path.resolve()}, outside {folder}, or not a file; "
                           "input shards must be regular files inside the input folder")


def _shard_samples(tar_path: Path) -> list[Sample]:
    members = shard_members(tar_path)
    samples = []
    with open(tar_path, "rb") as fh:
        for key, files in members.items():
            meta = _json_member(fh, tar_path, key, files["json"]) if "json" in files else {}
            split = str(split_of(meta, "all"))
            samples.append(Sample(key=key, split=split, inputs={"shard": str(tar_path), "members": files}, meta=meta))
    return samples


def _json_member(fh, tar_path: Path, key: str, where: list[int]) -> dict:
    off, size = where
    if size > MAX_JSON_MEMBER:
        raise BgforgeError(f"{tar_path}: member {key}.json is {size:,} bytes; a sample's json "
                           f"must be under {MAX_JSON_MEMBER:,}")
    fh.seek(off)
    try:
        meta = strict_json.loads(fh.read(size))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BgforgeError(f"{tar_path}: member {key}.json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise BgforgeError(f"{tar_path}: member {key}.json is a JSON {type(meta).__name__}, not an object")
    return meta
