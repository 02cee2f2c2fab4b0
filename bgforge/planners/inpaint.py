"""`bgforge inpaint`: every input image with its objects removed (planning: planners/stage.py)."""

from __future__ import annotations

from pathlib import Path

from ..chain import Chain, WorkerContext
from ..recipe_params import InpaintParams
from .stage import StagePlanner, backend_options


class InpaintPlanner(StagePlanner):
    def make_chain(self, params: dict, ctx: WorkerContext) -> Chain:
        from ..backends import get_inpainter, get_segmenter
        from ..stages.inpaint import inpaint_stage
        from ..stages.pipeline import pipelined

        t = InpaintParams.from_plan(params)
        opts = backend_options(params, ctx.device, ctx.batch_size)
        inpainter = get_inpainter(t.inpainter, **opts)
        segmenter = get_segmenter(t.segmenter, **opts) if t.segmenter else None
        return pipelined(inpaint_stage(inpainter, segmenter, params), ctx)

    def on_finalize(self, out: Path, params: dict) -> None:
        """Store the key index once, beside the shards: later phases (HSI composites, AutoBackSwap) load it per worker."""
        from ..sources.key_index import write_key_index

        write_key_index(out)
