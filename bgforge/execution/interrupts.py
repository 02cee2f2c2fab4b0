"""Ctrl-C and SIGTERM: the run ends at once, with one line and exit 130 / 143; a re-run resumes.

The parent turns SIGTERM into an exception like Ctrl-C's KeyboardInterrupt (`handled`), so the
same cleanup runs for both: open shards are aborted (no temporary left), every worker process is
killed without waiting on the pool's queue locks (local.py), and the build reports how many
shards are committed. Worker processes never see either signal as an exception: they start with
both blocked (`blocked` around the pool's start), ignore SIGINT (a terminal sends Ctrl-C to the
whole process group) and keep SIGTERM's default (a quiet end), so no worker prints a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM. A KeyboardInterrupt, so that no `except Exception`
    (a sample's error handling) swallows it; `line` is what the CLI prints."""

    def __init__(self, signum: int = signal.SIGINT, line: str = ""):
        super().__init__(line)
        self.signum, self.line = int(signum), line

    @property
    def exit_code(self) -> int:
        return 128 + self.signum   # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def signum_of(exc: BaseException) -> int:
    return exc.signum if isinstance(exc, Interrupted) else signal.SIGINT


def summary_line(committed: int, total: int) -> str:
    return f"interrupted: {committed}/{total} shards committed; re-run the same command to resume"


def _raise_interrupted(signum, frame):  # noqa: ARG001 - the signal module's handler signature
    raise Interrupted(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGTERM raises Interrupted in the main thread for the duration (Ctrl-C already raises
    KeyboardInterrupt); elsewhere (a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    """Neither signal interrupts the block (the cleanup after the first one): a second Ctrl-C cannot
    leave workers running. Only in the main thread (the only one that may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """Both signals held back while worker processes start: a child inherits the mask (forked or
    spawned) and unblocks only once `quiet_worker` set its handlers. Delivered here on exit."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def quiet_worker() -> None:
    """A worker process's first step: ignore SIGINT, die quietly on SIGTERM, then accept signals."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
