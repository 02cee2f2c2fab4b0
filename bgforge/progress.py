"""Progress: a tqdm bar on a terminal, periodic log lines otherwise (cron, batch logs)."""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime

log = logging.getLogger(__name__)

# When bgforge's output goes to a log file (cron, a batch system) every line it prints carries an
# ISO date and time, so a log read the next morning says when each thing happened.
# BGFORGE_LOG_TIME: auto (default: when stderr is not a terminal), always, never.
LOG_TIME_ENV = "BGFORGE_LOG_TIME"


def timestamps_on() -> bool:
    mode = os.environ.get(LOG_TIME_ENV, "auto").strip().lower()
    if mode in ("always", "1", "yes"):
        return True
    if mode in ("never", "0", "no"):
        return False
    return not sys.stderr.isatty()


def iso_now() -> str:
    """Local time with its UTC offset, to the second: 2026-12-06T19:40:01+00:00."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def stamp(line: str) -> str:
    """`line` with the ISO time in front when lines are being logged (see LOG_TIME_ENV)."""
    return f"{iso_now()} {line}" if timestamps_on() else line


def format_duration(seconds: float) -> str:
    """`42 s`, `7 min 5 s`, `2 h 3 min`: the time left in a log line a person reads."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class ProgressBar:
    """A tqdm bar on a terminal; elsewhere (cron, a log file) a timestamped line every `interval` seconds."""

    def __init__(self, total: int, desc: str, unit: str = "img", interval: float = 30.0, enabled: bool = True):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done, self.start, self._last = 0, time.monotonic(), time.monotonic()
        on_terminal = enabled and sys.stderr.isatty()
        if on_terminal:
            from tqdm import tqdm  # here: importing tqdm costs `bgforge --help` and completion ~0.1 s

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        else:
            self.bar = None
        self.enabled = enabled

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval or self.done == self.total):
            self._last = now
            rate = self.done / max(now - self.start, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
            eta = f", {format_duration(left)} left" if self.done < self.total else ""
            print(f"{iso_now()} {self.desc}: {self.done}/{self.total} {self.unit} "
                  f"({100 * self.done / max(self.total, 1):.0f}%, {rate:.1f} {self.unit}/s{eta})",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


NOTICES = {"show": True}   # the CLI's -q turns them off (set_notices)


def set_notices(show: bool) -> None:
    NOTICES["show"] = bool(show)


def notice(message: str) -> None:
    """A line that says what a run does, printed like the summary (`bgforge: ...` on stderr, no
    timestamp or logger name); with -v it is a log line among the others; -q hides it. Other INFO
    log lines show only with -v: by default a run prints these notices, warnings and its summary."""
    if log.isEnabledFor(logging.DEBUG):
        log.info(message)
    elif NOTICES["show"]:
        print(stamp(f"bgforge: {message}"), file=sys.stderr, flush=True)


def announce_run(out, plan, mine: list, pending: list, committed: int, slice_index: int, slice_count: int) -> None:
    """Say, before any work, what this run will do (`committed`: the plan's shards earlier runs committed).

    A resumed run names what it skips ("resuming: 2/12 shards committed, 320 samples to build"); a
    slice of an array job with no shards warns but is not an error, so oversized arrays do not fail.
    """
    to_build = sum(s.size for s in pending)
    if not mine:
        log.warning("slice %d of %d has no shards: the plan has only %d (nothing to do here)",
                    slice_index, slice_count, len(plan.shards))
    elif committed:
        notice(f"resuming {out}: {committed}/{len(plan.shards)} shards committed, {to_build} samples to build")
    else:
        notice(f"building {out}: {len(pending)} shards, {to_build} samples")
