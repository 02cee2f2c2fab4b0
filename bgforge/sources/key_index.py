"""A shard folder's key index, built once and stored in its bookkeeping folder, and a cached store on it.

Composites look their background up by key among every background of the build (~411k at
ImageNet scale). Scanning every tar header and json in each worker took ~60 s and ~1.8 GB of
Python objects per worker; instead the phase that wrote the shards stores
`.bgforge/key-index.npz` (beside the commit markers: sorted keys, shard number, byte offset
and size of each member) once, and every worker loads those few flat arrays (~35 MB at
ImageNet scale) in well under a second.

Every phase that a later phase reads by key stores it when it finalizes (the `inpaint` stage:
HSI and AutoBackSwap backgrounds; BAP's foregrounds), and those later phases read it through
`IndexedStore`. The index records each tar's name, size and mtime: an index that no longer
matches the shards (a rebuilt or resumed phase) is rebuilt instead of trusted.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import BgforgeError, SampleError
from ..io import strict_json
from ..io.atomic import atomic_file
from ..io.images import decode
from ..io.layout import bookkeeping_dir
from ..io.shards import shard_members

INDEX_NAME = "key-index.npz"
INDEX_FORMAT = 1


def _tars(folder: Path) -> list[Path]:
    tars = sorted((folder / "shards").glob("*.tar"))
    if not tars:
        raise BgforgeError(f"{folder / 'shards'} holds no .tar shards")
    return tars


def _fingerprint(tars: list[Path]) -> list:
    return [[t.name, st.st_size, st.st_mtime_ns] for t in tars for st in (t.stat(),)]


class KeyIndex:
    """key -> (tar, {ext: (offset, size)}) over flat numpy arrays; keys sorted for binary search."""

    def __init__(self, folder: Path, tars: list[str], exts: list[str], keys: np.ndarray, shard: np.ndarray,
                 members: np.ndarray):
        self.folder, self.tars, self.exts = folder, tars, exts
        self.keys, self.shard, self.members = keys, shard, members   # members: (N, len(exts), 2), -1 = absent

    def __len__(self) -> int:
        return len(self.keys)

    def _row(self, key: str) -> int:
        k = key.encode()
        i = int(np.searchsorted(self.keys, k))
        return i if i < len(self.keys) and self.keys[i] == k else -1

    def __contains__(self, key: str) -> bool:
        return self._row(key) >= 0

    def member(self, key: str, ext: str) -> tuple[Path, int, int] | None:
        """(tar path, offset, size) of member `.ext` of `key`, or None."""
        i = self._row(key)
        if i < 0 or ext not in self.exts:
            return None
        off, size = (int(v) for v in self.members[i, self.exts.index(ext)])
        return None if off < 0 else (self.folder / "shards" / self.tars[int(self.shard[i])], off, size)

    @classmethod
    def scan(cls, folder: str | Path) -> KeyIndex:
        """Read every tar header of the folder (no member data)."""
        folder = Path(folder)
        rows: dict[str, tuple[int, dict]] = {}
        tars = _tars(folder)
        for n, tar_path in enumerate(tars):
            for key, files in shard_members(tar_path).items():
                rows.setdefault(key, (n, {}))[1].update(files)
        exts = sorted({e for _, members in rows.values() for e in members})
        keys = sorted(rows)
        members = np.full((len(keys), len(exts), 2), -1, dtype=np.int64)
        for i, key in enumerate(keys):
            for ext, pair in rows[key][1].items():
                members[i, exts.index(ext)] = pair
        key_arr = np.array([k.encode() for k in keys], dtype=f"S{max((len(k) for k in keys), default=1)}")
        shard = np.array([rows[k][0] for k in keys], dtype=np.int32)
        return cls(folder, [t.name for t in tars], exts, key_arr, shard, members)

    def save(self, fingerprint: list) -> None:
        header = {"format": INDEX_FORMAT, "tars": self.tars, "exts": self.exts, "fingerprint": fingerprint}
        with atomic_file(index_path(self.folder), root=self.folder) as fh:
            np.savez(fh, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), keys=self.keys,
                     shard=self.shard, members=self.members)


def index_path(folder: str | Path) -> Path:
    return bookkeeping_dir(folder) / INDEX_NAME


def write_key_index(folder: str | Path) -> KeyIndex | None:
    """Scan the shards and store the index, unless a current one is stored already; None for an
    output without tars (a folder layout), which no later phase reads by key."""
    if not any((Path(folder) / "shards").glob("*.tar")):
        return None
    return load_key_index(folder, save=True)


def load_key_index(folder: str | Path, save: bool = False) -> KeyIndex:
    """The stored index when it matches the shards; else a fresh scan (stored too when `save`)."""
    folder = Path(folder)
    fingerprint = _fingerprint(_tars(folder))
    path = index_path(folder)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                header = strict_json.loads(z["header"].tobytes())
                if header.get("format") == INDEX_FORMAT and header["fingerprint"] == fingerprint:
                    index = KeyIndex(folder, header["tars"], header["exts"], z["keys"], z["shard"], z["members"])
                    if _consistent(index, fingerprint):
                        return index
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # unreadable, from another version or not self-consistent: rebuilt below
    index = KeyIndex.scan(folder)
    if save:
        index.save(fingerprint)
    return index


def _consistent(index: KeyIndex, fingerprint: list) -> bool:
    """A stored index is untrusted input: its tar names must be the folder's own tars, its shard
    numbers name one of them and every member lie inside its tar; else it is rebuilt, not used."""
    n_tars = len(fingerprint)
    if index.tars != [name for name, _, _ in fingerprint] or not all(isinstance(e, str) and e for e in index.exts):
        return False
    if index.keys.dtype.kind != "S" or index.shard.dtype.kind != "i" or index.members.dtype.kind != "i":
        return False
    if index.members.shape != (len(index.keys), len(index.exts), 2) or index.shard.shape != (len(index.keys),):
        return False
    if len(index.keys) and (index.shard.min() < 0 or index.shard.max() >= n_tars):
        return False
    sizes = np.array([size for _, size, _ in fingerprint], dtype=np.int64)[index.shard.astype(np.int64)]
    off, length = index.members[..., 0], index.members[..., 1]
    present = off >= 0
    return bool(np.all(~present | ((length >= 0) & (off + length <= sizes[:, None]))))


class IndexedStore:
    """ShardStore's `read`/`image` by key over a stored KeyIndex, with an LRU of decoded images.

    Composites of one foreground image share its background (the O groups; a plan's samples
    are ordered by key, so an image's groups are neighbours): each is decoded once per worker.
    """

    def __init__(self, folder: str | Path, cache_size: int = 256):
        self.folder = Path(folder)
        self.index = load_key_index(folder)
        self.cache_size = cache_size
        self._images: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def has_member(self, key: str, ext: str) -> bool:
        """Whether `key` has a member `.ext` (e.g. the object.png an inpaint phase stores only when it found one)."""
        return self.index.member(key, ext) is not None

    def read(self, key: str, ext: str, stage: str = "read_background") -> bytes:
        where = self.index.member(key, ext)
        if where is None:
            what = f"no sample {key!r}" if key not in self.index else f"shard member .{ext} missing for {key!r}"
            raise SampleError(stage, f"{what} in {self.folder}")
        path, off, size = where
        with open(path, "rb") as fh:
            fh.seek(off)
            return fh.read(size)

    def image(self, key: str, stage: str = "read_background", mode: str = "RGB") -> np.ndarray:
        """The decoded image (read-only: it is shared by every composite that uses it)."""
        cached = self._images.get((key, mode))
        if cached is not None:
            self._images.move_to_end((key, mode))
            self.hits += 1
            return cached
        self.misses += 1
        ext = next((e for e in ("png", "jpg") if self.has_member(key, e)), "png")
        arr = decode(self.read(key, ext, stage), mode)
        arr.setflags(write=False)
        self._images[(key, mode)] = arr
        if len(self._images) > self.cache_size:
            self._images.popitem(last=False)
        return arr
