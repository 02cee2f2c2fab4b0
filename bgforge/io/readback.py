"""A finished output's dataset files read back as untrusted input: manifest.json, groups.json,
metadata.csv, previews and the shard paths a manifest names.

An output folder may come from someone else (a download, a shared drive). Everything here is
read the one careful way: a regular file (opened O_NONBLOCK, so a FIFO cannot hang the reader;
`links=False`: O_NOFOLLOW, no symbolic link), under a size limit, UTF-8, strict JSON
(io/strict_json.py), and only the fields a reader uses are checked for their JSON type. Every
problem is one BgforgeError line naming the file (exit 2), never a traceback.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from pathlib import Path

from ..errors import BgforgeError
from . import strict_json

MAX_JSON_BYTES = 256 << 20    # manifest.json / groups.json: a million-sample manifest is a few MB
MAX_PREVIEW_BYTES = 20 << 20  # one contact sheet inlined into report.html
MAX_CSV_BYTES = 4 << 30       # metadata.csv: streamed, but a device or a 1 TB file is not a table
# what finalize writes into manifest.json: shards/<split>-NNNNN.tar (execution/plan.SHARD_NAME_RE)
SHARD_PATH_RE = re.compile(r"shards/[A-Za-z0-9_-]{1,32}-[0-9]{5}\.tar")
NOT_FINISHED = ("not a finished bgforge output (run `bgforge build`, or `bgforge finalize` once every "
                "slice finished)")


class Refused(BgforgeError):
    """A file that is not a regular file inside the output (a link, a FIFO, a device) or is too large."""


def _kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file")


def read_regular(path: str | Path, limit: int, links: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, opened non-blocking (`links=False`: a
    symbolic link is refused too). FileNotFoundError passes through; anything else is `Refused`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if not links and os.path.islink(path):
            raise Refused(f"{path} is a symbolic link; bgforge reads only regular files inside the output") from None
        raise Refused(f"cannot read {path}: {exc.strerror or exc}") from None
    with open(fd, "rb", buffering=0) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is {_kind(st.st_mode)}; expected a regular file")
        if st.st_size > limit:
            raise Refused(f"{path} is {st.st_size:,} bytes, over the {limit:,}-byte limit")
        data = fh.read(st.st_size + 1)  # the buffer is the file's size, never the limit's
    if len(data) > st.st_size:
        raise Refused(f"{path} grew while it was read; re-run once nothing writes it")
    return data


def load_json(path: Path, what: str, limit: int = MAX_JSON_BYTES):
    """Strict JSON from a regular file: one BgforgeError line for a missing, oversized, non-UTF-8,
    duplicate-keyed, NaN or too deeply nested document."""
    try:
        data = read_regular(path, limit)
    except FileNotFoundError:
        raise BgforgeError(f"{path} not found: {path.parent} is {NOT_FINISHED}") from None
    try:
        return strict_json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BgforgeError(f"{path} is damaged: byte {exc.start} is not UTF-8 ({what} is UTF-8 JSON)") from None
    except ValueError as exc:
        raise BgforgeError(f"{path} is damaged: {getattr(exc, 'msg', exc)} ({what} must be strict JSON; "
                           "re-run `bgforge finalize`)") from None


def damaged(path: Path, field: str, expected: str, got: object) -> BgforgeError:
    shown = type(got).__name__ if not isinstance(got, (str, int, float)) or isinstance(got, bool) else repr(got)[:60]
    return BgforgeError(f"{path} is damaged: {field} must be {expected}, got {shown} (re-run `bgforge finalize`)")


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _opt(d: dict, key: str, default):
    """d[key], or `default` when it is missing or null (an empty list where a mapping belongs is damage)."""
    value = d.get(key)
    return default if value is None else value


def _typed(path: Path, value, field: str, kind: type, expected: str):
    if not isinstance(value, kind) or (kind is int and not _is_count(value)):
        raise damaged(path, field, expected, value)
    return value


def manifest(out: str | Path) -> dict:
    """manifest.json with the fields bgforge reads type-checked: recipe {name, planner, params},
    layout, errors, splits {split: {shards: [...]}}, construction, inputs, previews."""
    path = Path(out) / "manifest.json"
    m = _typed(path, load_json(path, "manifest.json"), "the document", dict, "a JSON object")
    recipe = _typed(path, m.get("recipe"), "recipe", dict, "an object")
    for key in ("name", "planner"):
        _typed(path, recipe.get(key), f"recipe.{key}", str, "a string")
    _typed(path, _opt(recipe, "params", {}), "recipe.params", dict, "an object")
    _typed(path, m.get("layout", "shards"), "layout", str, "a string")
    _typed(path, m.get("errors", 0), "errors", int, "a count (a non-negative integer)")
    for key in ("construction", "inputs"):
        _typed(path, _opt(m, key, {}), key, dict, "an object")
    _typed(path, m.get("previews", []), "previews", list, "a list")
    splits = _typed(path, m.get("splits", {}), "splits", dict, "an object")
    for split, entry in splits.items():
        _typed(path, entry, f"splits.{split}", dict, "an object")
        if "shards" in entry:
            for s in _typed(path, entry["shards"], f"splits.{split}.shards", list, "a list"):
                _typed(path, s, f"splits.{split}.shards[]", str, "a string")
    construction = _opt(m, "construction", {})
    for note in _typed(path, construction.get("notes", []), "construction.notes", list, "a list"):
        _typed(path, note, "construction.notes[]", str, "a string")
    pairing = _typed(path, _opt(construction, "background_pairing", {}), "construction.background_pairing", dict,
                     "an object")
    for split, pairs in pairing.items():
        for fg, bg in _typed(path, pairs, f"construction.background_pairing.{split}", dict, "an object").items():
            _typed(path, bg, f"construction.background_pairing.{split}.{fg}", str, "a string")
    return m


def groups(out: str | Path) -> dict:
    """groups.json: {split: {"groups": {name: count}, ...}} with every count a non-negative integer."""
    path = Path(out) / "groups.json"
    g = _typed(path, load_json(path, "groups.json"), "the document", dict, "a JSON object")
    for split, entry in g.items():
        counts = _typed(path, _typed(path, entry, split, dict, "an object").get("groups"), f"{split}.groups", dict,
                        "an object of group -> count")
        for name, n in counts.items():
            _typed(path, n, f"{split}.groups.{name}", int, "a count (a non-negative integer)")
        if "total" in entry:
            _typed(path, entry["total"], f"{split}.total", int, "a count (a non-negative integer)")
    return g


def metadata_rows(out: str | Path) -> list[dict]:
    """metadata.csv as a list of rows (csv's 128 KB field limit, UTF-8): one BgforgeError line otherwise."""
    path = Path(out) / "metadata.csv"
    try:
        data = read_regular(path, MAX_CSV_BYTES)
    except FileNotFoundError:
        raise BgforgeError(f"{path} not found: {path.parent} is {NOT_FINISHED}") from None
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        rows = list(reader)
    except UnicodeDecodeError as exc:
        raise BgforgeError(f"{path} is damaged: byte {exc.start} is not UTF-8 (re-run `bgforge finalize`)") from None
    except csv.Error as exc:
        raise BgforgeError(f"{path} is damaged: line {reader.line_num}: {exc} (re-run `bgforge finalize`)") from None
    for n, r in enumerate(rows, 2):
        if None in r or None in r.values():  # more (or fewer) fields than the header
            raise BgforgeError(f"{path} is damaged: row {n} has {'more' if None in r else 'fewer'} fields than the "
                               "header (re-run `bgforge finalize`)")
    return rows


def shard_paths(out: str | Path, shards: list[str]) -> list[str]:
    """The absolute paths of a manifest's shards, each a plain `shards/<split>-NNNNN.tar` name of a
    regular file (no link, no FIFO) inside `out`: a `pipe:` command, a URL, `../` or an absolute path
    is refused, so nothing but the output's own tars is ever opened."""
    root = Path(out).resolve()
    folder = root / "shards"
    if folder.is_symlink() or not folder.is_dir():
        raise BgforgeError(f"{folder} is not a folder of the output (a symbolic link or missing); {NOT_FINISHED}")
    paths = []
    for s in shards:
        if not isinstance(s, str) or not SHARD_PATH_RE.fullmatch(s):
            raise BgforgeError(f"{root / 'manifest.json'} names the shard {str(s)[:80]!r}; a shard must be a plain "
                               "name shards/<split>-NNNNN.tar inside the output (no command, URL, '..' or absolute "
                               "path): the manifest was edited, re-run `bgforge finalize`")
        path = root / s
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise BgforgeError(f"shard {path} named by the manifest is missing; re-run the build to resume") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else _kind(st.st_mode)
            raise BgforgeError(f"shard {path} is {kind}; bgforge reads only regular files inside the output")
        paths.append(str(path))
    return paths
