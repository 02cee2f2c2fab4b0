"""Read a bgforge output in a training loop: samples as (image, label, group, meta), plus the group
counts and inverse-frequency weights that group-DRO and reweighting samplers need.

    from bgforge.data import load, group_weights
    train = load("out/wb95", "train", transform=T.ToTensor())          # WebDataset pipeline
    train = load("out/wb95", "train", kind="map", transform=T.ToTensor())  # map-style Dataset

`group` is an index into `group_names(out)` (every group of every split, sorted), the same in
every split; `meta` is the sample's json (docs/format.md) with its `key`, the name
`bgforge.eval.score` takes predictions by. Shards are found through
manifest.json, so no file pattern is ever guessed; a manifest is untrusted input (an output may come
from someone else): only plain `shards/<split>-NNNNN.tar` names of regular files inside OUT are
opened (io/readback.shard_paths), never a webdataset `pipe:` command, a URL or a path outside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PIL import Image

from .errors import BgforgeError
from .io import readback, strict_json
from .io.shards import read_member, shard_members
from .records import IMAGE_EXTS

Transform = Callable[[Image.Image], Any]


def manifest(out: str | Path) -> dict:
    """manifest.json, its fields type-checked (a damaged or hostile one is a one-line BgforgeError)."""
    return readback.manifest(out)


def _groups_json(out: str | Path) -> dict:
    return readback.groups(out)


def group_of(meta: dict) -> str:
    """A sample's group name, as groups.json counts it."""
    from .io.metadata import group_label

    return group_label(meta)


def group_names(out: str | Path) -> list[str]:
    """Every group of every split, sorted: the yielded `group` indexes this list."""
    return sorted({g for entry in _groups_json(out).values() for g in entry["groups"]})


def group_counts(out: str | Path, split: str) -> dict[str, int]:
    """Samples per group name in one split (from groups.json)."""
    groups = _groups_json(out)
    if split not in groups:
        raise BgforgeError(f"{out} has no split {split!r}; it has {', '.join(groups)}")
    return dict(groups[split]["groups"])


def group_weights(out: str | Path, split: str) -> dict[str, float]:
    """Inverse-frequency weight per group, n / (groups * n_g): every group weighs the same in total
    and the mean weight over the split's samples is 1."""
    counts = group_counts(out, split)
    total = sum(counts.values())
    return {g: total / (len(counts) * n) for g, n in counts.items() if n}


def _split_shards(out: Path, split: str) -> list[str]:
    m = manifest(out)
    entry = m.get("splits", {}).get(split)
    if entry is None:
        raise BgforgeError(f"{out} has no split {split!r}; it has {', '.join(m.get('splits', {}))}")
    if "shards" not in entry:
        raise BgforgeError(f"{out} was built with --layout {m['layout']} (no tars): read it with torchvision "
                           "ImageFolder / WILDS (docs/format.md), or rebuild with --layout shards")
    return readback.shard_paths(out, entry["shards"])


class _Decode:
    """A WebDataset sample -> (image, label, group, meta); a class, so DataLoader workers can pickle it."""

    def __init__(self, names: list[str], transform: Transform | None):
        self.index, self.transform = {n: i for i, n in enumerate(names)}, transform

    def __call__(self, files: dict) -> tuple:
        from .io.images import pil_open  # the header's pixel count is checked before any decoding

        where = files.get("__url__", files.get("__key__", "a sample"))
        ext = next((e for e in IMAGE_EXTS if e in files), None)
        try:
            meta = strict_json.loads(bytes(files["json"]).decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError(f"a JSON {type(meta).__name__}, not an object")
            if ext is None:
                raise ValueError(f"no image member ({'/'.join(IMAGE_EXTS)})")
            with pil_open(bytes(files[ext]), where) as im:
                image = im.convert("RGB")
            if "cls" not in files:
                raise ValueError("no cls member (a class label): this output has no labels to train on")
            label = int(bytes(files["cls"]).decode("ascii"))
            group = self.index[group_of(meta)]
        except Exception as exc:  # a damaged member of someone else's shard: one line, never a traceback
            raise BgforgeError(f"sample {files.get('__key__')} of {where} is damaged: {exc}") from None
        if "__key__" in files:  # the sample's key, as metadata.csv and `bgforge.eval.score` name it
            meta.setdefault("key", Path(str(files["__key__"])).name)
        return (self.transform(image) if self.transform else image, label, group, meta)


def load(out: str | Path, split: str, kind: str = "webdataset", transform: Transform | None = None,
         shuffle: int = 0):
    """The split as a WebDataset pipeline (kind="webdataset"; `shuffle`: a sample buffer size) or as a
    map-style `GroupDataset` (kind="map"), yielding (image, label, group, meta)."""
    out = Path(out)
    decode = _Decode(group_names(out), transform)
    if kind == "map":
        return GroupDataset(_split_shards(out, split), decode)
    if kind != "webdataset":
        raise BgforgeError(f"kind must be webdataset or map, got {kind!r}")
    import webdataset as wds

    # every DataLoader worker reads whole shards of its own (bgforge writes >= 8 per split)
    pipeline = wds.WebDataset(_split_shards(out, split), shardshuffle=False, empty_check=False)
    if shuffle:
        pipeline = pipeline.shuffle(shuffle)
    return pipeline.map(decode)


class GroupDataset:
    """Map-style dataset over a split's tars: a member index (read from the tar headers, no image
    decoded) gives random access by byte offset. `sample_weights()` feeds WeightedRandomSampler."""

    def __init__(self, shard_paths: list[str], decode: _Decode):
        self.decode = decode
        self.items: list[dict] = []   # {"shard": path, "members": {ext: (offset, size)}} per sample
        for path in shard_paths:
            self.items += [{"shard": path, "members": files, "key": key} for key, files in shard_members(path).items()]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple:
        item = self.items[i]
        return self.decode({"__key__": item["key"], **{ext: read_member(item, ext) for ext in item["members"]}})

    def sample_weights(self, weights: dict[str, float]) -> list[float]:
        """Each sample's weight from `group_weights(out, split)` (reads only the json members)."""
        return [weights[group_of(strict_json.loads(read_member(item, "json")))] for item in self.items]
