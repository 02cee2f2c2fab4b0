"""The one path rule: every output path is built from checked parts and proven to lie inside --out.

User data (manifest splits, images.txt file names, input shards' json) ends up in shard names
and folder-layout paths; a `..`, an absolute path or a slash there must never reach the disk.
Sample keys stay readable for any Unicode name: letters are kept, and a short hash is added
only where two names would otherwise collapse to the same key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..errors import BgforgeError

SPLIT_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Unicode letters and digits, '_' and '-': no dots (WebDataset splits member names at the first
# dot), no slashes, no spaces. Longer keys are cut and hashed: a USTAR member name holds 100 bytes.
_NOT_KEY = re.compile(r"[^\w-]+")
KEY_MAX_BYTES = 64


def check_split(split: str, where: str = "") -> str:
    """A split name that is safe inside a shard name, else a one-line BgforgeError."""
    if not isinstance(split, str) or not SPLIT_RE.fullmatch(split):
        raise BgforgeError(f"split name {split!r}{f' ({where})' if where else ''} must be 1-32 characters of "
                           "A-Z a-z 0-9 _ -; fix the manifest's or input's split values")
    return split


def check_splits(samples: Iterable) -> None:
    """Every sample's split is a safe name (checked while planning, before anything is written)."""
    seen: set[str] = set()
    for s in samples:
        if s.split not in seen:
            check_split(s.split, f"sample {s.key}")
            seen.add(s.split)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def readable_key(name: str) -> str:
    """`n01440764/n01440764_10026.JPEG` -> `n01440764_n01440764_10026`; `日本.jpg` -> `日本`.

    Runs of anything but letters, digits, '_' and '-' become one '_'; an over-long key is cut
    and given a hash of the whole name, so it stays unique.
    """
    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    key = _NOT_KEY.sub("_", unicodedata.normalize("NFC", stem)).strip("_") or "sample"
    if len(key.encode()) > KEY_MAX_BYTES:
        cut = key.encode()[:KEY_MAX_BYTES - 9].decode(errors="ignore")
        key = f"{cut}_{_short_hash(name)}"
    return key


def unique_key(name: str, taken: set[str]) -> str:
    """`readable_key(name)`, with a short hash of `name` appended only when that key is taken."""
    key = readable_key(name)
    if key in taken:
        key = f"{key[:KEY_MAX_BYTES - 9]}_{_short_hash(name)}"
    if key in taken:
        raise BgforgeError(f"two inputs are both named {name!r}; give them distinct names or keys")
    taken.add(key)
    return key


def check_relative(rel: str, what: str) -> str:
    """A relative POSIX path with no `..`, no empty parts and no absolute start, else BgforgeError."""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith(("/", "\\")) or "\\" in rel or ":" in rel or not parts or \
            any(p in ("..", ".", "") for p in parts) or rel.endswith("/"):
        raise BgforgeError(f"{what} {rel!r} is not a plain relative path (no '..', no absolute path, no '\\' or ':')")
    return rel


def inside(out: str | Path, rel: str) -> Path:
    """out/rel, proven to resolve inside `out` (symlinks included), else BgforgeError."""
    root = Path(out).resolve()
    target = (root / check_relative(rel, "output path")).resolve()
    if root != target and root not in target.parents:
        raise BgforgeError(f"output path {rel!r} resolves to {target}, outside --out {root}")
    return target


def relation(a: Path, b: Path) -> str | None:
    """'equal', 'inside' (a in b), 'contains' (b in a) or None, compared as resolved paths."""
    a, b = Path(a).resolve(), Path(b).resolve()
    if a == b:
        return "equal"
    if b in a.parents:
        return "inside"
    if a in b.parents:
        return "contains"
    return None
