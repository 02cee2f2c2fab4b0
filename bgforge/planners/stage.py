"""The planner base of the stand-alone stage commands (`bgforge segment`, `bgforge inpaint`).

Their "recipe" is made from command-line options; the input is a folder of images (with an
optional manifest) or the shards of an earlier stage. Samples keep their manifest split
(default `all`) and input order.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..backends import registry
from ..errors import BgforgeError
from ..recipe import Recipe
from ..sources.inputs import input_names, load_input
from ..stages.common import one_image_format
from .base import BuildContext, Planned, Planner

log = logging.getLogger(__name__)


def backend_options(params: dict, device: str | None, batch_size: int | None = None) -> dict:
    """The `backend_options` that are set, plus the worker's device when the executor gave it one and,
    unless the recipe sets it, each backend row's batch option from --batch-size (LaMa's `lama_batch`)."""
    return registry.worker_options([params.get("segmenter"), params.get("inpainter")],
                                   params.get("backend_options"), device, batch_size)


def check_weights(params: dict) -> None:
    """Missing checkpoints fail here, all named in one message, before a worker starts or an image is read."""
    registry.check_weights([params.get("segmenter"), params.get("inpainter")], params.get("backend_options") or {})


def _prompted(sample) -> bool:
    return bool(sample.meta.get("boxes")) or "mask" in sample.inputs or "mask.png" in sample.inputs.get("members", {})


def check_prompts(segmenter: str | None, samples: list) -> None:
    """A box-prompted segmenter on images with no boxes and no masks would write empty masks for
    every image (and inpainting would change nothing): refuse at planning, naming the manifest option."""
    if segmenter not in registry.box_prompted() or not samples:
        return
    unprompted = sum(not _prompted(s) for s in samples)
    if unprompted == len(samples):
        raise BgforgeError(
            f"the {segmenter} segmenter is prompted by boxes, but none of the {len(samples)} images has boxes or "
            "a mask: pass --manifest (-m) with a 'boxes' column (JSONL/CSV, see docs/stages.md), or a text-prompted "
            "segmenter (grounded-sam with --prompt)")
    if unprompted:
        log.warning("%d of %d images have no boxes and no mask: the %s segmenter finds nothing in them",
                    unprompted, len(samples), segmenter)


class StagePlanner(Planner):
    """One sample per input image; subclasses supply the model chain."""

    METADATA_COLUMNS = ["key", "source_path", "label", "num_objects", "area_frac", "hole_frac"]

    def plan(self, recipe: Recipe, ctx: BuildContext) -> Planned:
        skipped: list = []
        samples = load_input(recipe.params, skipped)
        one_image_format(samples)  # segment passes source images through: mixed .jpg/.png are stored as PNG
        check_prompts(recipe.params.get("segmenter"), samples)  # box prompts without boxes: a silent no-op
        src = Path(recipe.params["input"]).resolve()
        return Planned(samples=samples, inputs={"input": str(src), "manifest": recipe.params.get("manifest")},
                       source_files=input_names(samples), skipped=skipped)

    def loads_models(self, params: dict) -> bool:
        return registry.uses_torch(params.get("segmenter"), params.get("inpainter"))

    def validate(self, params: dict) -> None:
        """Fail before any work: unknown backends, missing or corrupt checkpoints."""
        for kind in ("segmenter", "inpainter"):
            if params.get(kind):
                registry.check_known(params[kind], kind)
        check_weights(params)
