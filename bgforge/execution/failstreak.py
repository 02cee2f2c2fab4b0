"""A run in which every sample fails stops early, naming the first cause.

A wrong --input, a missing checkpoint a backend loads lazily or a broken model would otherwise
write one errors.jsonl line per sample (a million lines) and exit 3 hours later. The executor
passes every result to `FailureStreak.see` in the parent, where results arrive in plan order
(local pools per chunk, Ray per committed shard); after MAX_CONSECUTIVE_FAILURES failures in a
row with no sample written the run ends with exit 1 and one line. Committed shards stay: a
re-run after the cause is fixed resumes.
"""

from __future__ import annotations

import os

from ..errors import WorkerDied
from ..records import Failure

MAX_CONSECUTIVE_FAILURES = 1000
LIMIT_ENV = "BGFORGE_MAX_CONSECUTIVE_FAILURES"   # 0 turns the stop off


class TooManyFailures(WorkerDied):
    """Every one of the last N samples failed: the run stops (exit 1, one line), as when a worker dies."""


def limit() -> int:
    env = os.environ.get(LIMIT_ENV, "").strip()
    return int(env) if env.isdigit() else MAX_CONSECUTIVE_FAILURES


class FailureStreak:
    """Counts failed samples in a row; `see` raises TooManyFailures once `limit` is reached."""

    def __init__(self, most: int | None = None):
        self.most = limit() if most is None else most
        self.count = 0
        self.first: dict | None = None   # the first failure of the streak (its cause is the one named)

    def see(self, outputs) -> None:
        """Results in plan order: Failure records and written outputs."""
        for o in outputs:
            if isinstance(o, Failure):
                self._failed(o.to_dict(), 1)
            else:
                self.count, self.first = 0, None

    def see_shard(self, stats: dict) -> None:
        """A committed shard's stats (Ray: results arrive a shard at a time)."""
        if stats.get("samples"):  # something was written: the streak (if any) is broken
            self.count, self.first = 0, None
        elif stats.get("errors"):
            records = stats.get("error_records") or [{}]
            self._failed(records[0], int(stats["errors"]))

    def _failed(self, record: dict, n: int) -> None:
        if self.first is None:
            self.first = record
        self.count += n
        if self.most and self.count >= self.most:
            f = self.first
            raise TooManyFailures(
                f"stopped: the last {self.count:,} samples all failed (limit {self.most:,}, {LIMIT_ENV}); the first: "
                f"{f.get('key', '?')} at {f.get('stage', '?')}: {f.get('error_type', '?')}: "
                f"{str(f.get('message', '')).splitlines()[0] if f.get('message') else ''} "
                "(fix the cause and re-run: committed shards are kept)")
