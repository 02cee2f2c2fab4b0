"""The one way bgforge writes a file: a temporary in the real directory, then a rename.

Every writer (metadata, cards, previews, reports, eval files, markers) goes through
`atomic_file` / `write_atomic`, so that
  - a killed or failed writer (or a full disk) leaves the old file or none, never a truncated one;
  - nothing is written through a symbolic link: the folders between `root` (the output folder)
    and the file may not be links (an output downloaded from someone else may contain
    `eval -> /home/you/.ssh`), the temporary is created with O_EXCL | O_NOFOLLOW, and the rename
    replaces a link that sits at the target's name instead of writing where it points.
Temporaries are named `.<name>.tmp<pid>`; `stale_temporaries` finds those of dead writers.
"""

from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..errors import BgforgeError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")


def safe_dir(folder: str | Path, root: str | Path | None = None) -> Path:
    """Create `folder` (and its parents) and return it, refusing a symbolic link or a non-folder on
    the way from `root` down (lstat, never following). Without `root` only `folder` itself is checked."""
    folder = Path(folder)
    if root is None:
        chain = [folder]
    else:
        root = Path(root)
        try:
            rel = folder.relative_to(root)
        except ValueError:
            raise BgforgeError(f"{folder} is outside the output folder {root}; bgforge writes only inside it") from None
        if ".." in rel.parts:
            raise BgforgeError(f"{folder}: '..' in a path bgforge writes; expected a folder inside {root}")
        # the output folder itself is the user's to name (it may be a link to a bigger disk): followed
        root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise BgforgeError(f"{root} is not a folder; pass a folder as the output")
        chain = [root.joinpath(*rel.parts[: i + 1]) for i in range(len(rel.parts))]
    for part in chain:
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            part.mkdir(parents=True, exist_ok=True)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise BgforgeError(f"{part} is a symbolic link; bgforge does not write through links "
                               f"(remove it, or choose another output folder)")
        if not stat.S_ISDIR(st.st_mode):
            raise BgforgeError(f"{part} is not a folder; remove it or choose another output folder")
    return folder


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", root: str | Path | None = None) -> Iterator[IO]:
    """Write through a hidden temporary beside `path` that replaces it only when the block succeeds.

    `root`: the output folder the file must lie in (no link on the way); None for a path the user
    named directly (its parent folder is still created for real, and the target is never followed)."""
    path = Path(path)
    safe_dir(path.parent, root)
    tmp = temporary_name(path)
    fd = create_exclusive(tmp)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)   # rename never follows a link at `path`: the link itself is replaced
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_exclusive(path: Path, mode: int = 0o644) -> int:
    """A new file's descriptor (O_EXCL | O_NOFOLLOW: never an existing file, never through a link). A
    leftover of the same name (a dead writer whose pid this process now has, or a planted link) is
    removed first: unlink removes a link itself, never what it points to."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, mode)


def open_nofollow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """os.open that refuses a symbolic link at `path` (O_NOFOLLOW): the lock and the journals,
    files bgforge opens in place rather than replaces."""
    try:
        return os.open(path, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if Path(path).is_symlink():
            raise BgforgeError(f"{path} is a symbolic link; bgforge does not write through links "
                               "(remove it, or choose another output folder)") from None
        raise exc


def write_atomic(path: str | Path, data: bytes, root: str | Path | None = None) -> None:
    with atomic_file(path, "wb", root) as fh:
        fh.write(data)


def write_text_atomic(path: str | Path, text: str, root: str | Path | None = None) -> None:
    write_atomic(path, text.encode("utf-8"), root)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (ours always does; another user's counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temporaries(folder: str | Path) -> list[Path]:
    """`.<name>.tmp<pid>` files in `folder` whose writer no longer runs (a killed writer's leftovers)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        m = _TMP_NAME.match(entry.name)
        if m and entry.is_file(follow_symlinks=False) and not pid_alive(int(m["pid"])):
            found.append(Path(entry.path))
    return sorted(found)
