"""What a worker is handed besides the recipe's parameters, and the shape of a stage chain.

The executor makes the context (it alone knows the output folder as the workers see it, and
which device a worker was pinned to); the planner's `make_chain(params, ctx)` reads it. Nothing
of it is recorded in plan.json: the same plan runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..records import Failure, Output, Sample

Chain = Callable[[list[Sample]], list[Output | Failure]]


@dataclass(frozen=True)
class WorkerContext:
    out: Path                   # this build's output folder; earlier phases are folders inside it
    device: str | None = None   # "cuda" once the executor pinned a GPU (CUDA_VISIBLE_DEVICES); None: backend default

    def phase_dir(self, folder: str) -> Path:
        """Where an earlier phase (e.g. `backgrounds`) of this build wrote its shards."""
        return self.out / folder


ChainFactory = Callable[[dict, WorkerContext], Chain]
