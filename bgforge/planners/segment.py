"""`bgforge segment`: masks and boxes of every input image (planning: planners/stage.py)."""

from __future__ import annotations

from ..chain import Chain, WorkerContext
from .stage import StagePlanner, backend_options


class SegmentPlanner(StagePlanner):
    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..backends import get_segmenter
        from ..stages.pipeline import pipelined
        from ..stages.segment import segment_stage

        segmenter = get_segmenter(params["segmenter"], **backend_options(params, ctx.device))  # once per worker
        return pipelined(segment_stage(segmenter, params), ctx)
