"""`bgforge build --dry-run` estimates against the real build, on every recipe with a --demo.

Each recipe: the dry run's estimate (calibrated on a few samples after a warm-up shard), then the
build's own seconds (planning + every phase's shards), both with the same workers. Target: the
estimate within 2x of the build (docs/performance.md). Run alone on a quiet machine: `make bench`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bgforge import recipe as recipemod
from bgforge.building import build
from bgforge.dry_run import dry_run
from bgforge.execution.context import RunConfig
from bgforge.planners import BuildContext

DEMOS = ("waterbirds-100", "waterbirds-95", "hard-spurious-imagenet-10", "hard-spurious-imagenet-ar",
         "bap-waterbirds", "bap-coco-person", "urbancars")


def main(names=DEMOS, workers: int = 2) -> int:
    run = RunConfig(workers=workers, progress=False)
    worst = 1.0
    print(f"{'recipe':28s} {'estimate s':>10s} {'build s':>8s} {'ratio':>6s}")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = BuildContext(demo=True)
            estimate = dry_run(recipemod.load(name), ctx, Path(tmp) / "dry", run)["estimate_seconds"]
            t0 = time.monotonic()
            build(recipemod.load(name), ctx, Path(tmp) / "real", run)
            real = time.monotonic() - t0
        ratio = estimate / real
        worst = max(worst, ratio, 1 / ratio)
        print(f"{name:28s} {estimate:10.1f} {real:8.1f} {ratio:6.2f}", flush=True)
    print(f"worst factor {worst:.2f} (target <= 2)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEMOS))
