"""--fail-fast: the run stops at the first failed sample and prints its traceback (exit 1).

By default a failed sample is data (a Failure record, one line of errors.jsonl) and the run goes
on: webdataset's `handler=` idea. With `RunConfig.fail_fast` the executor stops at the first
Failure a chain returns instead: the worker formatted the traceback when the exception was caught
(`records.Failure.of`; tracebacks do not pickle) and the parent prints it. The shard that held the
sample is not committed (its committer is aborted, its temporaries removed), the shards committed
before stay, and the failure is added to OUT/errors.jsonl (`record`), which finalize rewrites whole
once every shard is committed. A re-run without --fail-fast resumes and records the failure as
usual. Nothing of it reaches plan.json or the output bytes.

Executors use it in one of two ways: `check(outputs, shard)` in the process that collects a
chain's results before they are added to a shard (local.py), or `stopping(chain, shard)` around
the chain that `commit.run_shard` calls (ray.py: the shard aborts, the actor returns `as_result`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..chain import Chain
from ..errors import WorkerDied
from ..io import readback
from ..io.atomic import atomic_file
from ..records import Failure

_ERRORS_LIMIT = 1 << 30   # errors.jsonl bytes read back to append the stopping failure

ERRORS_FILE = "errors.jsonl"


class FailedFast(WorkerDied):
    """The first failed sample of a --fail-fast run: exit 1; the message holds its traceback.

    `failure`: the Failure's errors.jsonl record plus its "traceback" text; `shard`: the shard it
    belonged to (not committed)."""

    def __init__(self, failure: dict, shard: str):
        super().__init__(failure, shard)
        self.failure, self.shard = dict(failure), shard
        self.recorded: Path | None = None   # errors.jsonl once `record` added the failure to it

    @classmethod
    def of(cls, failure: Failure, shard: str) -> "FailedFast":
        return cls({**failure.to_dict(), "traceback": failure.traceback}, shard)

    @property
    def record_line(self) -> str:
        """The failure as finalize writes it into errors.jsonl (no traceback: paths differ between machines)."""
        return json.dumps({k: v for k, v in self.failure.items() if k != "traceback"}, sort_keys=True)

    def __str__(self) -> str:
        f = self.failure
        message = str(f.get("message", ""))
        head = (f"stopped at the first failed sample (--fail-fast): {f.get('key', '?')} in shard {self.shard}, "
                f"step {f.get('stage', '?')}: {f.get('error_type', '?')}: "
                f"{message.splitlines()[0] if message else ''}")
        trace = str(f.get("traceback") or "").rstrip("\n") or \
            f"(no traceback: step {f.get('stage', '?')} reported the failure without an exception)"
        where = f"recorded in {self.recorded}" if self.recorded else "not recorded"
        return (f"{head}\n{trace}\n"
                f"the failure is {where}; shard {self.shard} was not committed, the shards committed before it "
                "are kept: fix the cause and re-run (without --fail-fast a failed sample is recorded and the run "
                "goes on)")


def first_failure(outputs) -> Failure | None:
    return next((o for o in outputs if isinstance(o, Failure)), None)


def check(outputs, shard: str) -> None:
    """Raise FailedFast for the first Failure among `outputs` (one chain call's results, in plan order)."""
    failure = first_failure(outputs)
    if failure is not None:
        raise FailedFast.of(failure, shard)


def stopping(chain: Chain, shard: str) -> Chain:
    """`chain`, raising FailedFast as soon as a call returns a Failure (so `commit.run_shard` aborts the shard)."""

    def run(samples):
        outputs = chain(samples)
        check(outputs, shard)
        return outputs

    return run


def as_result(stop: FailedFast) -> dict:
    """A FailedFast as plain data, for an executor whose workers return results (Ray's tasks)."""
    return {"fail_fast": stop.failure, "shard": stop.shard}


def from_result(result: dict) -> FailedFast | None:
    """The FailedFast that `as_result` described, or None for any other result."""
    return FailedFast(result["fail_fast"], result["shard"]) if "fail_fast" in result else None


def record(out, stop: FailedFast) -> None:
    """Add the failure to OUT/errors.jsonl (atomically; not twice) and remember where it went.

    The lines already there stay (a finalized output's, or an earlier stop's); finalize replaces the
    whole file with every committed shard's failures once the build completes."""
    path = Path(out) / ERRORS_FILE
    lines = listed(out)
    if stop.record_line not in lines:
        with atomic_file(path, "w", root=out) as fh:
            for line in [*lines, stop.record_line]:
                fh.write(line + "\n")
    stop.recorded = path


def listed(out, limit: int = _ERRORS_LIMIT) -> list[str]:
    """OUT/errors.jsonl's non-empty lines (none when it is missing, a link, not a regular file, over `limit`
    bytes or not UTF-8). Before a build's first finalize they are the --fail-fast stops (`bgforge status`)."""
    try:
        data = readback.read_regular(Path(out) / ERRORS_FILE, limit=limit, links=False)
    except (FileNotFoundError, readback.Refused):   # atomic_file replaces a link itself
        return []
    try:
        return [line for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return []
