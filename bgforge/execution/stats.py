"""RunStats: what an executor hands back to the build (execution/executors.py, the contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .failstreak import FailureStreak


@dataclass
class RunStats:
    """Totals over the shards this run committed (not the ones resumed from earlier runs)."""

    shards: int = 0
    samples: int = 0
    errors: int = 0
    errors_by_stage: dict = field(default_factory=dict)   # "stage/ErrorType" -> failed samples
    streak: FailureStreak = field(default_factory=FailureStreak)  # every sample failing stops the run early

    def add(self, shard_stats: dict) -> None:
        """Count one committed shard (its commit marker's fields: samples, errors, errors_by_stage)."""
        self.shards += 1
        self.samples += shard_stats["samples"]
        self.errors += shard_stats["errors"]
        for stage, types in shard_stats["errors_by_stage"].items():
            for t, n in types.items():
                key = f"{stage}/{t}"
                self.errors_by_stage[key] = self.errors_by_stage.get(key, 0) + n
