"""The shards of an earlier bgforge stage as input records.

Each record points at its members by byte offset inside the tar, so a worker reads exactly
the bytes it needs without scanning the shard.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ..errors import BgforgeError
from ..records import Sample


def is_shard_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "shards").is_dir() and any((p / "shards").glob("*.tar"))


def load_shards(folder: str | Path) -> list[Sample]:
    folder = Path(folder)
    tars = sorted((folder / "shards").glob("*.tar"))
    if not tars:
        raise BgforgeError(f"{folder / 'shards'} holds no .tar shards")
    samples = []
    for tar_path in tars:
        members: dict[str, dict] = {}
        order = []
        with tarfile.open(tar_path, "r") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                key, ext = m.name.rsplit("/", 1)[-1].split(".", 1)
                if key not in members:
                    members[key] = {}
                    order.append(key)
                members[key][ext] = [m.offset_data, m.size]
            metas = {}
            for key in order:
                if "json" in members[key]:
                    off, size = members[key]["json"]
                    tar.fileobj.seek(off)
                    metas[key] = json.loads(tar.fileobj.read(size))
        for key in order:
            meta = dict(metas.get(key, {}))
            split = str(meta.get("split_name", meta.get("split", "all")))
            samples.append(Sample(key=key, split=split, inputs={"shard": str(tar_path), "members": members[key]},
                                  meta=meta))
    return samples

