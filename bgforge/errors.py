"""User-facing errors.

A BgforgeError carries one line that says what was expected and how to fix it. The CLI
prints it without a traceback and exits with code 2; anything else is a bug.
"""


class BgforgeError(Exception):
    """Bad input or configuration that the user can fix."""


class UnsafeInput(ValueError):
    """An input that must not be decoded or read whole: a decompression bomb, a device or FIFO named as
    an image, an oversized file, JSON nested past any real use. A bad sample in a worker; exit 2 at planning."""


class WorkerDied(Exception):
    """A worker process was killed (the OOM killer, a signal) mid-run: the run ends with exit 1 and one
    line; committed shards stay and a re-run resumes."""


class SampleError(Exception):
    """A single sample could not be produced; it is logged to errors.jsonl and the run goes on."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def os_error_message(exc: OSError) -> str:
    """One line for an OS error (permission, disk full, read-only folder): what failed and what to fix."""
    import errno

    hints = {errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
             errno.ENOSPC: "free some disk space (committed shards are kept; re-run to resume)",
             errno.EROFS: "the file system is read-only: pass a writable --out",
             errno.EDQUOT: "the disk quota is exceeded (committed shards are kept; re-run to resume)"}
    where = f" ({exc.filename})" if exc.filename else ""
    hint = hints.get(exc.errno, "check the path and re-run (committed shards are kept)")
    return f"{exc.strerror or exc}{where}: {hint}"
