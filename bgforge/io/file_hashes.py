"""sha256 of the dataset-level files finalize writes, recorded in OUT/.bgforge/ and checked by `status --verify`.

manifest.json cannot hold its own hash (nor metadata.csv's, written before it is known to be final:
a recipe's finalize hook may rewrite groups.json), so the record is a bookkeeping file of its own,
written last: a finalize killed before it leaves no record (removed when finalize starts), never a
stale one.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BgforgeError
from . import strict_json
from .atomic import write_atomic
from .hashing import sha256_file
from .layout import bookkeeping_dir
from .paths import check_relative
from .shards import json_bytes

HASHES_NAME = "finalized.sha256.json"


def hashes_path(out) -> Path:
    return bookkeeping_dir(out) / HASHES_NAME


def forget(out) -> None:
    """Drop the record before finalize rewrites the files (a killed finalize leaves none, not a wrong one)."""
    hashes_path(out).unlink(missing_ok=True)


def record(out, names: list[str]) -> dict:
    """Hash each existing file `names` lists (relative to OUT) and record them; returns {name: sha256}."""
    out = Path(out)
    hashes = {name: sha256_file(out / name) for name in names if (out / name).is_file()}
    write_atomic(hashes_path(out), json_bytes({"sha256": hashes}) + b"\n", root=out)
    return hashes


def recorded(out) -> dict | None:
    """{name: sha256} as finalize recorded it; None when there is no record (not finalized, or by an older bgforge)."""
    path = hashes_path(out)
    try:
        doc = strict_json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BgforgeError(f"{path} is damaged ({exc}); run `bgforge finalize {out}` to record the hashes anew") from None
    hashes = doc.get("sha256") if isinstance(doc, dict) else None
    if not isinstance(hashes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()):
        raise BgforgeError(f"{path} is damaged (not a name -> sha256 mapping); run `bgforge finalize {out}` "
                           "to record the hashes anew")
    for name in hashes:
        check_relative(name, f"{path}: file name")
    return hashes


def changed_files(out) -> list[str]:
    """One 'name: what' line per recorded file that is missing or whose sha256 differs from finalize's."""
    out = Path(out)
    lines = []
    for name, sha in sorted((recorded(out) or {}).items()):
        path = out / name
        if path.is_symlink() or not path.is_file():
            lines.append(f"{name}: missing (or not a regular file)")
        elif sha256_file(path) != sha:
            lines.append(f"{name}: changed since finalize (sha256 differs)")
    return lines
